"""Refused requests (403, 409, 429) are counted per minute, actor, status and route, after the response."""
from __future__ import annotations

import itertools
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select

from feedback_app.app import create_app
from feedback_app.audit.refusals import client_actor, count_refusal, minute_of
from feedback_app.core.database import make_engine
from feedback_app.core.models import RefusalCount
from feedback_app.intake.service import keyed
from feedback_app.migrations import alembic_config
from feedback_app.web import refusal_audit
from tests.auth.helpers import client_as, create_team
from tests.conftest import make_settings
from tests.dbstate import changes, snapshot
from tests.factories import FORM, create_web_submission, valid_data

ADMIN_PAGE = "/staff/admin/users"
EVIL = {"Origin": "https://evil.example"}
ADDRESS, OTHER_ADDRESS = "203.0.113.77", "198.51.100.23"  # documentation ranges
NOON = datetime(2026, 12, 8, 4, 0, 5, tzinfo=UTC)


@pytest.fixture
def team(app, session):
    return create_team(session)


def counts(session) -> list[tuple]:
    session.rollback()  # what the requests' jobs committed since
    return [(r.actor, r.status, r.route, r.count) for r in
            session.scalars(select(RefusalCount).order_by(RefusalCount.actor, RefusalCount.route))]


def client_of(settings, address: str) -> str:
    return client_actor(keyed(settings, refusal_audit.CLIENT_KEY, address))


def refused_comment(client, address: str = ADDRESS):
    """A comment posted from another site: the origin check refuses it before any other hook."""
    return client.post(FORM, data=valid_data(), content_type="multipart/form-data", headers=EVIL,
                       environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def at_noon(monkeypatch):
    """The refusals' clock: 04:00:05 UTC, one second later for each refusal."""
    times = (NOON + timedelta(seconds=n) for n in itertools.count())
    monkeypatch.setattr(refusal_audit, "utcnow", lambda: next(times))


# ---------- each kind of refusal ----------

def test_a_clerk_on_an_admin_page_is_counted_by_username(app, session, team):
    clerk = client_as(app, team["clerk"])
    assert clerk.get(ADMIN_PAGE).status_code == 403
    assert counts(session) == [("deng.ji", 403, ADMIN_PAGE, 1)]
    row = session.scalars(select(RefusalCount)).one()
    assert row.minute == minute_of(row.first_at) and row.first_at == row.last_at


def test_a_post_from_another_site_is_counted_by_a_keyed_hash_and_nothing_else_moves(app, session, settings, bulletin):
    engine = app.extensions["db_engine"]
    before = snapshot(engine)
    assert refused_comment(app.test_client()).status_code == 403
    assert changes(before, snapshot(engine)) == {"refusal_count": (0, 1)}  # the count, and only the count
    assert counts(session) == [(client_of(settings, ADDRESS), 403, "/bulletins/<slug>/feedback", 1)]


def test_a_stale_edit_is_counted(app, session, settings, bulletin, team):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    first, second = client_as(app, team["reviewer"]), client_as(app, team["admin"])
    page = second.get(f"/staff/submissions/{submission.reference}").get_data(as_text=True)
    stale = re.search(r'name="version" value="(\d+)"', page).group(1)
    page = first.get(f"/staff/submissions/{submission.reference}").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    assert first.post(f"/staff/submissions/{submission.reference}/accept",
                      data={"version": version, "kind": "suggestion"}).status_code == 303
    response = second.post(f"/staff/submissions/{submission.reference}/reject",
                           data={"version": stale, "reason": "no_substance", "note": "内容不具体"})
    assert response.status_code == 409
    assert counts(session) == [("guan.li", 409, "/staff/submissions/<reference>/<action>", 1)]


@pytest.fixture
def limited_app(database_url, tmp_path):
    app = create_app(make_settings(database_url, tmp_path, ratelimit_enabled=True, ratelimit_track="1 per minute"))
    yield app
    app.extensions["db_engine"].dispose()


def test_a_rate_limit_is_counted(limited_app, session):
    client = limited_app.test_client()
    data = {"reference": "HP2026-000001", "query_code": "0000-0000-0000-0000"}
    assert client.post("/track", data=data, environ_base={"REMOTE_ADDR": ADDRESS}).status_code == 400
    assert client.post("/track", data=data, environ_base={"REMOTE_ADDR": ADDRESS}).status_code == 429
    assert counts(session) == [(client_of(limited_app.extensions["settings"], ADDRESS), 429, "/track", 1)]


def test_what_is_not_a_refusal_is_not_counted(app, session, team):
    clerk = client_as(app, team["clerk"])
    assert clerk.get("/staff/").status_code == 200
    assert clerk.get("/staff/no-such-page").status_code == 404
    assert clerk.post("/staff/admin/units").status_code == 403  # (this one is)
    assert clerk.post("/staff/password").status_code == 400
    assert counts(session) == [("deng.ji", 403, "/staff/admin/units", 1)]


# ---------- a flood is one row a minute ----------

def test_fifty_refusals_in_a_minute_are_one_row(app, session, team, at_noon):
    clerk = client_as(app, team["clerk"])
    for _ in range(50):
        assert clerk.get(ADMIN_PAGE).status_code == 403
    row = session.scalars(select(RefusalCount)).one()
    assert (row.actor, row.status, row.route, row.count) == ("deng.ji", 403, ADMIN_PAGE, 50)
    assert (row.minute, row.first_at, row.last_at) == (
        NOON.replace(second=0), NOON, NOON + timedelta(seconds=49))


def test_two_actors_are_two_rows(app, session, settings, bulletin, team, at_noon):
    clerk, handler = client_as(app, team["clerk"]), client_as(app, team["handler"])
    citizen = app.test_client()
    for _ in range(3):
        assert clerk.get(ADMIN_PAGE).status_code == 403
        assert handler.get(ADMIN_PAGE).status_code == 403
        assert refused_comment(citizen, ADDRESS).status_code == 403
    assert refused_comment(citizen, OTHER_ADDRESS).status_code == 403
    feedback = "/bulletins/<slug>/feedback"
    assert counts(session) == sorted([
        ("cheng.ban", 403, ADMIN_PAGE, 3), ("deng.ji", 403, ADMIN_PAGE, 3),
        (client_of(settings, ADDRESS), 403, feedback, 3), (client_of(settings, OTHER_ADDRESS), 403, feedback, 1),
    ])


def test_the_next_minute_is_a_row_of_its_own(session):
    """And jobs that commit out of order still give the first and the last."""
    later, earlier, next_minute = NOON + timedelta(seconds=30), NOON, NOON + timedelta(minutes=1)
    for at in (later, earlier, next_minute):
        count_refusal(session, at=at, actor="deng.ji", status=403, route=ADMIN_PAGE)
    session.commit()
    rows = session.scalars(select(RefusalCount).order_by(RefusalCount.minute)).all()
    assert [(r.minute, r.count, r.first_at, r.last_at) for r in rows] == [
        (NOON.replace(second=0), 2, earlier, later), (next_minute.replace(second=0), 1, next_minute, next_minute)]


# ---------- no address, and never a 500 ----------

def test_no_address_is_stored(app, session, settings, bulletin, team):
    assert refused_comment(app.test_client(), ADDRESS).status_code == 403
    rows = snapshot(app.extensions["db_engine"])["refusal_count"]
    assert rows and ADDRESS not in repr(rows)
    actor = session.scalars(select(RefusalCount.actor)).one()
    assert actor.startswith("client:") and len(actor) == len("client:") + 64  # longer than any username


def test_a_count_that_fails_is_logged_and_the_refusal_stands(app, session, team, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the database is gone")

    clerk = client_as(app, team["clerk"])
    monkeypatch.setattr(refusal_audit, "count_refusal", broken)  # the job after the response fails
    with caplog.at_level(logging.ERROR):
        assert clerk.get(ADMIN_PAGE).status_code == 403
    assert "a job after a commit failed" in caplog.text
    monkeypatch.setattr(refusal_audit, "refusal_actor", broken)  # the hook itself fails
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert clerk.get(ADMIN_PAGE).status_code == 403
    assert "could not be counted" in caplog.text
    assert counts(session) == []


# ---------- reading the counts; the migration ----------

def test_the_operator_reads_the_counts_newest_minute_first(app, session, team):
    runner = app.test_cli_runner()
    assert "没有被拒绝的请求记录" in runner.invoke(args=["audit", "refusals"]).output
    for minute in range(3):
        count_refusal(session, at=NOON + timedelta(minutes=minute), actor="deng.ji", status=403, route=ADMIN_PAGE)
    session.commit()
    result = runner.invoke(args=["audit", "refusals", "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("2026-12-08 04:02 UTC  403") and "04:01" in lines[1]
    assert ADMIN_PAGE in lines[0] and "deng.ji" in lines[0] and "1 次" in lines[0]


def test_the_migration_goes_down_and_up(database_url):
    engine = make_engine(database_url)
    try:
        command.downgrade(alembic_config(engine), "0011")
        assert "refusal_count" not in inspect(engine).get_table_names()
        command.upgrade(alembic_config(engine), "head")
        assert "refusal_count" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
