"""A replaced calendar counts every running clock again; met clocks and extensions are kept."""
from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, select

from feedback_app.core.calendar import BUNDLED_CALENDAR, CalendarError, calendar_file, validate_calendar_text
from feedback_app.core.clocks import (
    deadlines_on_acceptance,
    deadlines_on_receipt,
    extend,
    local_today,
    mark_met,
    recount_open,
)
from feedback_app.core.models import AuditEntry, Deadline, Kind, Submission
from tests.auth.helpers import client_as, create_staff, csrf_of
from tests.conftest import make_settings
from tests.factories import create_web_submission


def d(text: str) -> date:
    return date.fromisoformat(text)


def official_2027() -> dict:
    """The bundled calendar with 2027 published: 2027-02-04 is now a holiday, the year not provisional."""
    data = json.loads(BUNDLED_CALENDAR.read_text(encoding="utf-8"))
    year = data["years"]["2027"]
    year["provisional"] = False
    year["source"] = "国务院办公厅关于2027年部分节假日安排的通知"
    year["holidays"] = sorted({*year["holidays"], "2027-02-04", "2027-02-11"})
    return data


def received(session, settings, bulletin, kind=Kind.suggestion):
    """A submission whose clocks have not started (they are started by each test, from a chosen day)."""
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, kind=kind, name="张三",
                                          phone="13800138000",
                                          received_at=datetime(2026, 11, 20, 2, tzinfo=UTC))
    session.execute(delete(Deadline).where(Deadline.submission_id == submission.id))
    submission.next_due_on = None
    session.commit()
    return submission


@pytest.fixture
def running(session, settings, bulletin):
    """Clocks of several kinds, some ending in 2027 under the provisional arrangement."""
    moving = received(session, settings, bulletin)
    [moving_inform] = deadlines_on_receipt(session, settings, moving, start_on=d("2027-01-20"))
    met = received(session, settings, bulletin)
    [met_inform] = deadlines_on_receipt(session, settings, met, start_on=d("2027-01-20"))
    mark_met(session, met, "inform", datetime(2027, 1, 25, 2, tzinfo=UTC))
    request = received(session, settings, bulletin, Kind.request)
    deadlines_on_acceptance(session, settings, request, d("2026-12-07"))
    leader = create_staff(session, username="ling.dao", role="reviewer", totp=True)
    extended = extend(session, settings, request, 3, "需要联合调查", leader)
    session.commit()
    return {"moving": moving_inform, "met": met_inform, "extended": extended, "submission": moving}


def fresh(database_url, tmp_path, session, bulletin, calendar: dict, start: date):
    """The inform clock a new submission would get under ``calendar``: what a recount must match."""
    path = tmp_path / "fresh.json"
    path.write_text(json.dumps(calendar, ensure_ascii=False), encoding="utf-8")
    settings = make_settings(database_url, tmp_path, calendar_path=path)
    [inform] = deadlines_on_receipt(session, settings, received(session, settings, bulletin), start_on=start)
    return inform


def test_a_running_clock_ends_where_the_new_calendar_says(session, settings, bulletin, running, database_url,
                                                           tmp_path):
    before = {k: (v.due_on, v.rule) for k, v in running.items() if isinstance(v, Deadline)}
    assert before["moving"][0] == d("2027-02-04") and "暂定" in before["moving"][1]
    new = official_2027()
    moved = recount_open(session, settings, validate_calendar_text(json.dumps(new, ensure_ascii=False)))
    session.commit()
    expected = fresh(database_url, tmp_path, session, bulletin, new, d("2027-01-20"))
    moving = session.get(Deadline, running["moving"].id)
    assert moved == 2 and moving.due_on == expected.due_on == d("2027-02-12")  # 02-04 and 02-11 now rest
    today = local_today(settings).isoformat()
    assert moving.rule == expected.rule + f"；{today} 按更新的工作日历重新计算，原到期日 2027-02-04"
    assert "暂定" not in moving.rule
    assert session.get(Submission, running["submission"].id).next_due_on == d("2027-02-12")
    met = session.get(Deadline, running["met"].id)
    assert (met.due_on, met.rule) == before["met"]  # a met clock is history
    extended = session.get(Deadline, running["extended"].id)  # 60 + 3 days from 12-07 ended on 02-11
    assert extended.extension_days == 3 and extended.due_on == d("2027-02-12")
    assert "经批准延长3日，延至 2027-02-12" in extended.rule and "原到期日 2027-02-11" in extended.rule


def test_counting_again_with_the_same_calendar_moves_nothing(session, settings, running):
    same = validate_calendar_text(calendar_file(settings).read_bytes())
    rules = {d.id: (d.due_on, d.rule) for d in session.scalars(select(Deadline))}
    assert recount_open(session, settings, same) == 0
    session.commit()
    assert {d.id: (d.due_on, d.rule) for d in session.scalars(select(Deadline))} == rules


def test_a_calendar_that_cannot_count_a_running_clock_is_refused(session, settings, running):
    short = official_2027()
    del short["years"]["2027"]
    with pytest.raises(CalendarError, match="2027"):
        recount_open(session, settings, validate_calendar_text(json.dumps(short, ensure_ascii=False)))


def upload(client, data: dict):
    token = csrf_of(client.get("/staff/admin/calendar").get_data(as_text=True))
    body = json.dumps(data, ensure_ascii=False).encode()
    return client.post("/staff/admin/calendar", data={**token, "calendar": (io.BytesIO(body), "2027.json")},
                       content_type="multipart/form-data")


def test_the_admin_page_recounts_and_records_how_many_moved(app, session, settings, running):
    admin = client_as(app, create_staff(session, username="guan.li", role="admin", totp=True))
    short = official_2027()
    del short["years"]["2027"]
    refused = upload(admin, short)
    assert refused.status_code == 400 and "2027" in refused.get_data(as_text=True)
    session.rollback()  # a new snapshot: see what the requests committed
    session.expire_all()
    assert session.get(Deadline, running["moving"].id).due_on == d("2027-02-04")  # nothing changed
    assert calendar_file(settings) == BUNDLED_CALENDAR  # and the file in force is the old one
    done = upload(admin, official_2027())
    assert done.status_code == 303
    page = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "尚未完成的时限已按新日历重新计算" in page
    session.rollback()  # a new snapshot: see what the requests committed
    session.expire_all()
    assert session.get(Deadline, running["moving"].id).due_on == d("2027-02-12")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "calendar_replaced")).one()
    assert json.loads(entry.details)["deadlines_moved"] >= 1
