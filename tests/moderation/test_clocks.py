"""Statutory clocks on receipt, acceptance and conclusion; extension; status; the overdue report."""
from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete, func, select

from feedback_app.core.calendar import BUNDLED_CALENDAR, CalendarError
from feedback_app.core.clocks import (
    ClockError,
    deadlines_of,
    deadlines_on_acceptance,
    deadlines_on_conclusion,
    deadlines_on_receipt,
    extend,
    mark_met,
    overdue,
    refresh_next_due,
    status_of,
)
from feedback_app.core.models import Channel, Deadline, Kind, StaffUser, Submission
from feedback_app.intake.service import Draft, create_submission
from tests.conftest import make_settings
from tests.factories import create_web_submission

CJK = re.compile(r"[\u4e00-\u9fff]")


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    """A UTC moment, e.g. "2026-01-30T02:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def without_clocks(session, submission):
    """The submission as if no clock had started yet (intake may already have started them)."""
    session.execute(delete(Deadline).where(Deadline.submission_id == submission.id))
    submission.next_due_on = None
    session.commit()
    return submission


def make(session, settings, bulletin, kind=Kind.suggestion, *, anonymous=False, received="2026-01-30T02:00"):
    fields = {} if anonymous else {"name": "张三", "phone": "13800138000"}
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, kind=kind, anonymous=anonymous,
                                          received_at=at(received), **fields)
    return without_clocks(session, submission)


def make_letter(session, settings, bulletin, *, received="2026-02-03T01:00", **fields):
    draft = Draft(bulletin_id=bulletin.id, item_number=5, channel=Channel.letter, kind=Kind.suggestion,
                  body="来信反映涉企会议过多的问题，建议精简。", name="李四", address="黄埔区某路1号",
                  privacy_consent=True, received_at=at(received), **fields)
    receipt = create_submission(session, settings, draft)
    session.commit()
    return session.scalars(select(Submission).filter_by(reference=receipt.reference)).one()


def kinds(deadlines):
    return sorted(x.kind for x in deadlines)


@pytest.fixture
def leader(session):
    user = StaffUser(username="leader", display_name="王主任", password_hash="x", role="reviewer")
    session.add(user)
    session.commit()
    return user


# receipt ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [Kind.suggestion, Kind.request, Kind.enquiry])
def test_every_kind_is_informed_within_15_days_of_receipt(session, settings, bulletin, kind):
    submission = make(session, settings, bulletin, kind)
    [inform] = deadlines_on_receipt(session, settings, submission)
    assert inform.kind == "inform" and inform.starts_on == d("2026-01-30")
    assert inform.due_on == d("2026-02-14")  # a make-up working Saturday: no roll forward
    assert inform.rule == ("信访工作条例第23条：收到之日起15日内告知（自然日，末日遇节假日顺延）；"
                           "起算日 2026-01-30（收到日）")
    assert submission.next_due_on == d("2026-02-14")


def test_a_real_name_accusation_also_gets_the_acceptance_notice(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.accusation)
    deadlines = {x.kind: x for x in deadlines_on_receipt(session, settings, submission)}
    assert sorted(deadlines) == ["acceptance_notice", "inform"]
    # 15 working days from 01-30: 02-02..06 (5), 02-09..13 (10), 02-14 Sat (11), 02-24..27 (15)
    assert deadlines["acceptance_notice"].due_on == d("2026-02-27")
    assert "15个工作日" in deadlines["acceptance_notice"].rule
    assert "纪检监察机关处理检举控告工作规则" in deadlines["acceptance_notice"].rule


def test_an_anonymous_accusation_gets_only_inform(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.accusation, anonymous=True)
    assert kinds(deadlines_on_receipt(session, settings, submission)) == ["inform"]


def test_the_local_date_of_receipt_counts(session, settings, bulletin):
    submission = make(session, settings, bulletin, received="2026-01-30T17:00")  # 01:00 on 01-31 in Shanghai
    [inform] = deadlines_on_receipt(session, settings, submission)
    assert inform.starts_on == d("2026-01-31") and inform.due_on == d("2026-02-24")  # 02-15 holiday


def test_a_letter_counts_from_the_day_it_arrived(session, settings, bulletin):
    letter = without_clocks(session, make_letter(session, settings, bulletin, received="2026-02-03T01:00"))
    [inform] = deadlines_on_receipt(session, settings, letter, start_on=d("2026-01-30"))
    assert inform.starts_on == d("2026-01-30") and inform.due_on == d("2026-02-14")
    assert inform.rule.endswith("起算日 2026-01-30（来信到达日）")
    other = without_clocks(session, make_letter(session, settings, bulletin, received="2026-02-03T01:00"))
    [logged] = deadlines_on_receipt(session, settings, other)
    assert logged.due_on == d("2026-02-24")  # 02-18 falls in the Spring Festival


def test_a_letter_logged_at_intake_counts_from_its_arrival(session, settings, bulletin):
    letter = make_letter(session, settings, bulletin, received="2026-02-03T01:00", counts_from=d("2026-01-30"))
    [inform] = deadlines_of(session, letter)
    assert inform.rule.endswith("起算日 2026-01-30（来信到达日）") and letter.next_due_on == d("2026-02-14")


def test_receipt_is_idempotent(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.accusation)
    deadlines_on_receipt(session, settings, submission)
    deadlines_on_receipt(session, settings, submission)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Deadline)) == 2


def test_a_date_outside_the_calendar_raises_and_stores_nothing(session, settings, bulletin):
    submission = make(session, settings, bulletin)
    with pytest.raises(CalendarError, match="工作日历未覆盖 2028 年"):
        deadlines_on_receipt(session, settings, submission, start_on=d("2027-12-25"))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Deadline)) == 0


def test_a_working_plain_day_rule_from_the_admin_calendar(session, database_url, tmp_path, bulletin):
    path = tmp_path / "working.json"
    data = json.loads(BUNDLED_CALENDAR.read_text(encoding="utf-8"))
    data["plain_days"] = "working"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    settings = make_settings(database_url, tmp_path, calendar_path=path)
    submission = make(session, settings, bulletin)
    [inform] = deadlines_on_receipt(session, settings, submission)
    assert inform.due_on == d("2026-02-27") and "（按工作日计算）" in inform.rule
    later = make(session, settings, bulletin, received="2026-02-09T02:00")
    [inform] = deadlines_on_receipt(session, settings, later)
    assert inform.due_on == d("2026-03-06")


def test_a_provisional_year_is_named_in_the_rule(session, settings, bulletin):
    submission = make(session, settings, bulletin)
    [inform] = deadlines_on_receipt(session, settings, submission, start_on=d("2027-01-20"))
    assert inform.due_on == d("2027-02-04")  # a Thursday
    assert "2027 年节假日为暂定安排" in inform.rule
    [in_2026] = deadlines_on_receipt(session, settings, make(session, settings, bulletin))
    assert "暂定" not in in_2026.rule


# acceptance ------------------------------------------------------------------------------------
def test_an_accepted_request_must_be_concluded_within_60_days(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.request)
    [conclude] = deadlines_on_acceptance(session, settings, submission, d("2026-03-02"))
    assert conclude.kind == "conclude" and conclude.starts_on == d("2026-03-02")
    assert conclude.due_on == d("2026-05-06")  # 05-01 falls in the Labour Day holiday
    assert conclude.rule.startswith("信访工作条例第34条：受理之日起60日内办结")
    assert conclude.rule.endswith("起算日 2026-03-02（受理日）")


def test_acceptance_reads_accepted_at_in_local_time(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.request)
    submission.accepted_at = at("2026-03-01T16:30")  # 00:30 on 03-02 in Shanghai
    [conclude] = deadlines_on_acceptance(session, settings, submission)
    assert conclude.starts_on == d("2026-03-02")


@pytest.mark.parametrize("kind", [Kind.suggestion, Kind.accusation, Kind.enquiry])
def test_other_kinds_get_no_clock_on_acceptance(session, settings, bulletin, kind):
    submission = make(session, settings, bulletin, kind)
    assert deadlines_on_acceptance(session, settings, submission, d("2026-03-02")) == []


def test_acceptance_without_a_date_is_refused(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.request)
    with pytest.raises(ClockError, match="受理日期未知"):
        deadlines_on_acceptance(session, settings, submission)


# conclusion ------------------------------------------------------------------------------------
def test_a_concluded_real_name_accusation_gets_feedback_in_15_working_days(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.accusation)
    [feedback] = deadlines_on_conclusion(session, settings, submission, d("2026-09-18"))
    assert feedback.kind == "feedback" and feedback.due_on == d("2026-10-15")  # across National Day
    assert feedback.rule.endswith("起算日 2026-09-18（办结日）") and "15个工作日" in feedback.rule


@pytest.mark.parametrize("kind, anonymous", [(Kind.accusation, True), (Kind.suggestion, False),
                                             (Kind.enquiry, False)])
def test_no_feedback_clock_otherwise(session, settings, bulletin, kind, anonymous):
    submission = make(session, settings, bulletin, kind, anonymous=anonymous)
    assert deadlines_on_conclusion(session, settings, submission, d("2026-09-18")) == []


def test_concluding_a_request_meets_its_conclude_clock(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.request)
    deadlines_on_receipt(session, settings, submission)
    [conclude] = deadlines_on_acceptance(session, settings, submission, d("2026-03-02"))
    submission.concluded_at = at("2026-04-10T03:00")
    assert deadlines_on_conclusion(session, settings, submission) == []
    assert conclude.met_at == at("2026-04-10T03:00")
    assert submission.next_due_on == d("2026-02-14")  # the inform clock still runs


# extension -------------------------------------------------------------------------------------
@pytest.fixture
def accepted_request(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.request)
    deadlines_on_acceptance(session, settings, submission, d("2026-03-02"))
    session.commit()
    return submission


def test_a_request_is_extended_once_with_approver_and_reason(session, settings, accepted_request, leader):
    deadline = extend(session, settings, accepted_request, 30, "涉及多个部门，需要联合调查", leader)
    session.commit()
    session.expire_all()
    deadline = session.get(Deadline, deadline.id)
    assert deadline.extension_days == 30
    assert deadline.extension_reason == "涉及多个部门，需要联合调查"
    assert deadline.extension_approved_by_id == leader.id
    assert deadline.due_on == d("2026-06-01")  # 03-02 + 90 = 05-31, a Sunday
    assert "经批准延长30日，延至 2026-06-01" in deadline.rule
    assert session.get(Submission, accepted_request.id).next_due_on == d("2026-06-01")
    with pytest.raises(ClockError, match="只能延长一次"):
        extend(session, settings, accepted_request, 5, "再延", leader)


def test_extension_approver_may_be_given_by_id(settings, session, accepted_request, leader):
    deadline = extend(session, settings, accepted_request, 10, "需补充材料", leader.id)
    assert deadline.due_on == d("2026-05-11")  # 03-02 + 70
    assert deadline.extension_approved_by_id == leader.id


@pytest.mark.parametrize("days", [0, 31, -1, True])
def test_extension_is_1_to_30_days(session, settings, accepted_request, leader, days):
    with pytest.raises(ClockError, match="1 至 30 日"):
        extend(session, settings, accepted_request, days, "理由", leader)


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_extension_needs_a_reason(session, settings, accepted_request, leader, reason):
    with pytest.raises(ClockError, match="理由"):
        extend(session, settings, accepted_request, 10, reason, leader)


def test_extension_needs_an_approver(session, settings, accepted_request):
    with pytest.raises(ClockError, match="批准"):
        extend(session, settings, accepted_request, 10, "理由", None)


def test_only_an_open_request_clock_can_be_extended(session, settings, bulletin, leader):
    suggestion = make(session, settings, bulletin)
    deadlines_on_receipt(session, settings, suggestion)
    with pytest.raises(ClockError, match="申诉求决") as info:
        extend(session, settings, suggestion, 10, "理由", leader)
    assert CJK.search(str(info.value)) and isinstance(info.value, ValueError)
    request = make(session, settings, bulletin, Kind.request)
    with pytest.raises(ClockError, match="尚未受理"):
        extend(session, settings, request, 10, "理由", leader)
    deadlines_on_acceptance(session, settings, request, d("2026-03-02"))
    mark_met(session, request, "conclude", at("2026-04-01T02:00"))
    with pytest.raises(ClockError, match="已办结"):
        extend(session, settings, request, 10, "理由", leader)


# status and next_due_on ------------------------------------------------------------------------
def test_status_of():
    due = d("2026-03-10")
    assert status_of(Deadline(due_on=due, met_at=at("2026-03-20T00:00")), d("2026-03-30")) == "met"
    assert status_of(Deadline(due_on=due), d("2026-03-11")) == "overdue"
    assert status_of(Deadline(due_on=due), d("2026-03-10")) == "due_soon"
    assert status_of(Deadline(due_on=due), d("2026-03-07")) == "due_soon"
    assert status_of(Deadline(due_on=due), d("2026-03-06")) == "open"


def test_next_due_on_follows_the_earliest_open_deadline(session, settings, bulletin):
    submission = make(session, settings, bulletin, Kind.accusation, received="2026-03-02T02:00")
    deadlines = {x.kind: x for x in deadlines_on_receipt(session, settings, submission)}
    assert deadlines["inform"].due_on == d("2026-03-17")
    assert deadlines["acceptance_notice"].due_on == d("2026-03-23")
    session.commit()
    assert session.get(Submission, submission.id).next_due_on == d("2026-03-17")
    assert mark_met(session, submission, "inform", at("2026-03-05T02:00")) is deadlines["inform"]
    session.commit()
    session.expire_all()
    assert session.get(Submission, submission.id).next_due_on == d("2026-03-23")
    mark_met(session, submission, "acceptance_notice", at("2026-03-06T02:00"))
    session.commit()
    session.expire_all()
    assert session.get(Submission, submission.id).next_due_on is None
    assert mark_met(session, submission, "inform", at("2026-03-07T02:00")) is None
    assert refresh_next_due(submission) is None
    assert [status_of(x, d("2026-04-30")) for x in deadlines_of(session, submission)] == ["met", "met"]


def test_mark_met_refuses_an_unknown_kind(session, settings, bulletin):
    submission = make(session, settings, bulletin)
    with pytest.raises(ClockError, match="未知的时限类型"):
        mark_met(session, submission, "reply", at("2026-03-07T02:00"))


def test_overdue_lists_open_deadlines_past_due(session, settings, bulletin):
    late = make(session, settings, bulletin, received="2026-03-02T02:00")
    met = make(session, settings, bulletin, received="2026-03-02T02:00")
    fresh = make(session, settings, bulletin, received="2026-03-20T02:00")
    for s in (late, met, fresh):
        deadlines_on_receipt(session, settings, s)
    mark_met(session, met, "inform", at("2026-03-10T02:00"))
    session.commit()
    rows = overdue(session, d("2026-03-20"))
    assert [(s.reference, x.kind, x.due_on) for s, x in rows] == [(late.reference, "inform", d("2026-03-17"))]
    assert overdue(session, d("2026-03-17")) == []


# the report command ----------------------------------------------------------------------------
def test_report_lists_an_overdue_deadline_and_not_a_met_one(app, session, settings, bulletin):
    late = make(session, settings, bulletin, Kind.accusation, received="2026-03-02T02:00")
    met = make(session, settings, bulletin, received="2026-03-02T02:00")
    for s in (late, met):
        deadlines_on_receipt(session, settings, s)
    mark_met(session, met, "inform", at("2026-03-10T02:00"))
    session.commit()
    result = app.test_cli_runner().invoke(args=["deadlines", "report", "--date", "2026-03-25"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "超期未完成的办理时限（截至 2026-03-25）"
    assert lines[1].startswith(f"{late.reference}\t告知办理情况\t应于 2026-03-17 前\t超期 8 天\t信访工作条例第23条")
    assert lines[2].startswith(f"{late.reference}\t告知受理情况\t应于 2026-03-23 前\t超期 2 天\t")
    assert met.reference not in result.output
    assert lines[-1] == "合计：2 项超期"


def test_report_with_nothing_overdue(app, session, settings, bulletin):
    deadlines_on_receipt(session, settings, make(session, settings, bulletin, received="2026-03-02T02:00"))
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["deadlines", "report", "--date", "2026-03-17"])
    assert result.exit_code == 0 and result.output.splitlines()[-1] == "合计：0 项，没有超期的办理时限"
    today = runner.invoke(args=["deadlines", "report"])
    assert today.exit_code == 0 and "合计" in today.output
    bad = runner.invoke(args=["deadlines", "report", "--date", "2026-13-01"])
    assert bad.exit_code == 2


def test_calendar_command_shows_coverage_and_warns_before_it_runs_out(app):
    runner = app.test_cli_runner()
    now = runner.invoke(args=["deadlines", "calendar", "--date", "2026-06-01"])
    assert now.exit_code == 0, now.output
    assert "随附日历" in now.output and "2027（暂定）" in now.output
    assert "2027 年节假日为暂定安排" in now.output
    late = runner.invoke(args=["deadlines", "calendar", "--date", "2027-06-01"])
    assert late.exit_code == 0 and "尚未覆盖 2028 年" in late.output
    gone = runner.invoke(args=["deadlines", "calendar", "--date", "2029-01-01"])
    assert gone.exit_code == 1 and "未覆盖 2029 年" in gone.output
