"""Statutory clocks: the deadlines a submission gets when it is received, accepted and concluded.

| kind | who gets it | period | counted from |
|---|---|---|---|
| inform | every submission | 15 days (信访工作条例第23条) | receipt (a letter: the day it arrived) |
| acceptance_notice | real-name accusation | 15 working days (纪检监察机关处理检举控告工作规则) | receipt |
| conclude | request | 60 days, one approved extension of at most 30 (信访工作条例第34条) | acceptance |
| feedback | real-name accusation | 15 working days (纪检监察机关处理检举控告工作规则) | conclusion |

Plain days count by the calendar's ``plain_days`` rule (see :mod:`feedback_app.moderation.calendar`);
every deadline records, as Chinese text, the rule and the start day that produced it. The functions
flush and never commit; each keeps ``Submission.next_due_on`` up to date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from feedback_app.core.calendar import WorkCalendar, load_calendar
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import Channel, Deadline, Kind, StaffUser, Submission

INFORM = "inform"
ACCEPTANCE_NOTICE = "acceptance_notice"
CONCLUDE = "conclude"
FEEDBACK = "feedback"
KINDS = (INFORM, ACCEPTANCE_NOTICE, CONCLUDE, FEEDBACK)

MET, OVERDUE, DUE_SOON, OPEN = "met", "overdue", "due_soon", "open"
DUE_SOON_DAYS = 3

MAX_EXTENSION_DAYS = 30
RULE_MAX_CHARS = 300


class ClockError(ValueError):
    """A clock operation is not allowed; the message is for staff, in Chinese."""


@dataclass(frozen=True)
class Rule:
    basis: str  # the regulation and article
    text: str  # what it requires
    days: int
    working: bool  # True: working days; False: plain "日", counted by the calendar's rule


RULES = {
    INFORM: Rule("信访工作条例第23条", "收到之日起15日内告知", 15, working=False),
    ACCEPTANCE_NOTICE: Rule(
        "纪检监察机关处理检举控告工作规则", "实名检举控告收到之日起15个工作日内告知受理情况", 15, working=True
    ),
    CONCLUDE: Rule(
        "信访工作条例第34条", "受理之日起60日内办结，经批准可延长一次，不超过30日", 60, working=False
    ),
    FEEDBACK: Rule(
        "纪检监察机关处理检举控告工作规则", "实名检举控告办结之日起15个工作日内反馈处理结果", 15, working=True
    ),
}


# dates -----------------------------------------------------------------------------------------
def local_date(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar date of an aware moment in the office's time zone."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(tz).date()


def local_today(settings: Settings) -> date:
    return local_date(utcnow(), settings.tz)


# computing -------------------------------------------------------------------------------------
def _due(calendar: WorkCalendar, rule: Rule, start: date, extra_days: int = 0) -> date:
    if rule.working:
        return calendar.add_working_days(start, rule.days + extra_days)
    return calendar.add_days(start, rule.days + extra_days)


def _clip(text: str) -> str:
    return text if len(text) <= RULE_MAX_CHARS else text[: RULE_MAX_CHARS - 1] + "…"


def _rule_text(calendar: WorkCalendar, rule: Rule, start: date, start_label: str, due: date) -> str:
    counting = "工作日" if rule.working else calendar.plain_days_rule
    text = f"{rule.basis}：{rule.text}（{counting}）；起算日 {start.isoformat()}（{start_label}）"
    provisional = calendar.provisional_between(start, due)
    if provisional:
        text += f"；{'、'.join(str(y) for y in provisional)} 年节假日为暂定安排"
    return _clip(text)


def _deadlines_of(session: Session, submission: Submission, kind: str) -> list[Deadline]:
    return list(
        session.scalars(
            select(Deadline)
            .where(Deadline.submission_id == submission.id, Deadline.kind == kind)
            .order_by(Deadline.id)
        )
    )


def _start(session: Session, submission: Submission, kind: str, start: date,
           start_label: str, calendar: WorkCalendar) -> tuple[Deadline, bool]:
    """The running clock of this kind, or a new one; (deadline, created)."""
    existing = _deadlines_of(session, submission, kind)
    for deadline in existing:
        if deadline.met_at is None or deadline.starts_on == start:
            return deadline, False
    rule = RULES[kind]
    due = _due(calendar, rule, start)
    deadline = Deadline(
        submission_id=submission.id,
        kind=kind,
        starts_on=start,
        due_on=due,
        rule=_rule_text(calendar, rule, start, start_label, due),
        extension_days=0,
        created_at=utcnow(),
    )
    return deadline, True


def _start_all(session: Session, settings: Settings, submission: Submission,
               plan: list[tuple[str, date, str]]) -> list[Deadline]:
    if submission.id is None:
        session.flush()
    calendar = load_calendar(settings)
    started = [_start(session, submission, kind, start, label, calendar) for kind, start, label in plan]
    for deadline, created in started:
        if created:
            session.add(deadline)
    session.flush()
    refresh_next_due(submission)
    session.flush()
    return [deadline for deadline, _ in started]


def _is_real_name_accusation(submission: Submission) -> bool:
    return submission.kind == Kind.accusation.value and not submission.anonymous


def _receipt_plan(settings: Settings, *, kind: str, anonymous: bool, channel: str, received_at: datetime,
                  start_on: date | None) -> list[tuple[str, date, str]]:
    """Every submission gets ``inform``; a real-name accusation also gets ``acceptance_notice``.

    Without ``start_on`` (for a letter, the day it arrived) the clocks start on the local date of
    ``received_at``.
    """
    if start_on is None:
        start, label = local_date(received_at, settings.tz), "收到日"
    else:
        start = start_on
        label = "来信到达日" if channel == Channel.letter.value else "收到日"
    plan = [(INFORM, start, label)]
    if kind == Kind.accusation.value and not anonymous:
        plan.append((ACCEPTANCE_NOTICE, start, label))
    return plan


@dataclass(frozen=True)
class PlannedClock:
    kind: str
    starts_on: date
    due_on: date
    rule: str


def receipt_clocks(settings: Settings, *, kind: str, anonymous: bool, channel: str, received_at: datetime,
                   start_on: date | None = None) -> list[PlannedClock]:
    """The clocks a new submission starts with, computed and not stored: ``create_submission``
    inserts them with the submission, whose ``next_due_on`` is the earliest of them."""
    calendar = load_calendar(settings)
    planned = []
    for clock_kind, start, label in _receipt_plan(settings, kind=kind, anonymous=anonymous, channel=channel,
                                                  received_at=received_at, start_on=start_on):
        rule = RULES[clock_kind]
        due = _due(calendar, rule, start)
        planned.append(PlannedClock(clock_kind, start, due, _rule_text(calendar, rule, start, label, due)))
    return planned


def deadlines_on_receipt(session: Session, settings: Settings, submission: Submission,
                         start_on: date | None = None) -> list[Deadline]:
    """Start the clocks of a received submission (those it lacks); ``start_on``: for a letter, the day
    it arrived. See ``receipt_clocks`` for what a new submission gets."""
    plan = _receipt_plan(settings, kind=submission.kind, anonymous=submission.anonymous,
                         channel=submission.channel, received_at=submission.received_at, start_on=start_on)
    return _start_all(session, settings, submission, plan)


def deadlines_on_acceptance(session: Session, settings: Settings, submission: Submission,
                            accepted_on: date | None = None) -> list[Deadline]:
    """Start the clocks of an accepted submission: a request must be concluded within 60 days."""
    if submission.kind != Kind.request.value:
        return []
    if accepted_on is None:
        if submission.accepted_at is None:
            raise ClockError("受理日期未知，无法计算办结时限")
        accepted_on = local_date(submission.accepted_at, settings.tz)
    return _start_all(session, settings, submission, [(CONCLUDE, accepted_on, "受理日")])


def deadlines_on_conclusion(session: Session, settings: Settings, submission: Submission,
                            concluded_on: date | None = None) -> list[Deadline]:
    """A concluded submission: its ``conclude`` clock is met; a real-name accusation gets ``feedback``."""
    if concluded_on is None:
        if submission.concluded_at is None:
            raise ClockError("办结日期未知，无法计算反馈时限")
        concluded_on = local_date(submission.concluded_at, settings.tz)
    mark_met(session, submission, CONCLUDE, submission.concluded_at or utcnow())
    if not _is_real_name_accusation(submission):
        return []
    return _start_all(session, settings, submission, [(FEEDBACK, concluded_on, "办结日")])


# changing --------------------------------------------------------------------------------------
def mark_met(session: Session, submission: Submission, kind: str, at: datetime) -> Deadline | None:
    """Record that the running clock of ``kind`` was met at ``at``; the deadline, or None if none runs."""
    if kind not in RULES:
        raise ClockError(f"未知的时限类型：{kind}")
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    met = None
    for deadline in _deadlines_of(session, submission, kind):
        if deadline.met_at is None:
            deadline.met_at = at
            met = deadline
    session.flush()
    refresh_next_due(submission)
    session.flush()
    return met


def extend(session: Session, settings: Settings, submission: Submission, days: int, reason: str,
           approved_by: StaffUser | int) -> Deadline:
    """Extend the ``conclude`` clock of a request once, by 1 to 30 days, with an approver and a reason.

    ``approved_by``: the approving staff user (or its id).
    """
    if submission.kind != Kind.request.value:
        raise ClockError("只有申诉求决事项的办结时限可以延长")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXTENSION_DAYS:
        raise ClockError(f"延长天数应为 1 至 {MAX_EXTENSION_DAYS} 日")
    reason = (reason or "").strip()
    if not reason:
        raise ClockError("延长办理期限必须说明理由")
    approver_id = approved_by if isinstance(approved_by, int) else getattr(approved_by, "id", None)
    if approver_id is None or isinstance(approver_id, bool):
        raise ClockError("延长办理期限必须经负责人批准，请注明批准人")
    deadlines = _deadlines_of(session, submission, CONCLUDE)
    if not deadlines:
        raise ClockError("该事项尚未受理，没有办结时限可以延长")
    deadline = deadlines[-1]
    if deadline.met_at is not None:
        raise ClockError("该事项已办结，无需延长办理期限")
    if deadline.extension_days:
        raise ClockError("办结时限只能延长一次，本事项已经延长过")
    calendar = load_calendar(settings)
    due = _due(calendar, RULES[CONCLUDE], deadline.starts_on, days)
    deadline.extension_days = days
    deadline.extension_reason = reason
    deadline.extension_approved_by_id = approver_id
    deadline.due_on = due
    deadline.rule = _clip(f"{deadline.rule}；经批准延长{days}日，延至 {due.isoformat()}")
    session.flush()
    refresh_next_due(submission)
    session.flush()
    return deadline


def refresh_next_due(submission: Submission) -> date | None:
    """Set ``submission.next_due_on`` to the earliest due day of its unmet deadlines (None if none)."""
    session = object_session(submission)
    if session is None:
        raise ValueError("submission is not attached to a session")
    earliest = session.scalar(
        select(func.min(Deadline.due_on)).where(
            Deadline.submission_id == submission.id, Deadline.met_at.is_(None)
        )
    )
    if submission.next_due_on != earliest:
        submission.next_due_on = earliest
    return earliest


# a new calendar ----------------------------------------------------------------------------------
_START = re.compile(r"起算日 \d{4}-\d{2}-\d{2}（([^）]+)）")
_RECOUNTED = re.compile(r"；\d{4}-\d{2}-\d{2} 按更新的工作日历重新计算，原到期日 \d{4}-\d{2}-\d{2}")
START_LABELS = {INFORM: "收到日", ACCEPTANCE_NOTICE: "收到日", CONCLUDE: "受理日", FEEDBACK: "办结日"}
RECOUNT_CHUNK = 500


def recount_open(session: Session, settings: Settings, calendar: WorkCalendar) -> int:
    """Count every deadline not yet met again with ``calendar``, before it replaces the one in force.

    A calendar is replaced when the State Council publishes a year's arrangement (until then that
    year's holidays are provisional) or corrects one: a running clock must then end where the new
    calendar says. An approved extension keeps its days. A deadline whose day moves says so in its
    rule, with the day before; the submissions' ``next_due_on`` follow. Raises ``CalendarError`` when
    ``calendar`` does not cover a running clock; the caller then rolls back. Returns how many
    deadlines moved. Flushes; the caller commits.
    """
    today = local_today(settings).isoformat()
    moved: list[int] = []
    last = 0
    while batch := list(session.scalars(select(Deadline).where(Deadline.met_at.is_(None), Deadline.id > last)
                                        .order_by(Deadline.id).limit(RECOUNT_CHUNK))):
        moved.extend(d.submission_id for d in batch if _recount(d, calendar, today))
        last = batch[-1].id
        session.flush()
    ids = sorted(set(moved))
    for start in range(0, len(ids), RECOUNT_CHUNK):
        chunk = ids[start:start + RECOUNT_CHUNK]
        for submission in session.scalars(select(Submission).where(Submission.id.in_(chunk))):
            refresh_next_due(submission)
    session.flush()
    return len(moved)


def _recount(deadline: Deadline, calendar: WorkCalendar, today: str) -> bool:
    """Count one deadline again; True when its day moved."""
    rule = RULES[deadline.kind]
    base = _due(calendar, rule, deadline.starts_on)
    due = _due(calendar, rule, deadline.starts_on, deadline.extension_days) if deadline.extension_days else base
    found = _START.search(deadline.rule)
    text = _rule_text(calendar, rule, deadline.starts_on, found.group(1) if found else START_LABELS[deadline.kind],
                      base)
    if deadline.extension_days:
        text += f"；经批准延长{deadline.extension_days}日，延至 {due.isoformat()}"
    moved = due != deadline.due_on
    if moved:
        text += f"；{today} 按更新的工作日历重新计算，原到期日 {deadline.due_on.isoformat()}"
    else:  # an earlier recount still explains the day
        text += (_RECOUNTED.findall(deadline.rule) or [""])[-1]
    deadline.due_on, deadline.rule = due, _clip(text)
    return moved


# reading ---------------------------------------------------------------------------------------
def status_of(deadline: Deadline, today: date) -> str:
    """``met``, ``overdue`` (past its due day), ``due_soon`` (due within 3 days) or ``open``."""
    if deadline.met_at is not None:
        return MET
    left = (deadline.due_on - today).days
    if left < 0:
        return OVERDUE
    if left <= DUE_SOON_DAYS:
        return DUE_SOON
    return OPEN


def deadlines_of(session: Session, submission: Submission) -> list[Deadline]:
    """Every deadline of a submission, earliest due first."""
    return list(
        session.scalars(
            select(Deadline)
            .where(Deadline.submission_id == submission.id)
            .order_by(Deadline.due_on, Deadline.id)
        )
    )


def overdue(session: Session, today: date) -> list[tuple[Submission, Deadline]]:
    """Every unmet deadline whose due day is before ``today``, the longest overdue first."""
    rows = session.execute(
        select(Submission, Deadline)
        .join(Deadline, Deadline.submission_id == Submission.id)
        .where(Deadline.met_at.is_(None), Deadline.due_on < today)
        .order_by(Deadline.due_on, Submission.id, Deadline.id)
    )
    return [(submission, deadline) for submission, deadline in rows]
