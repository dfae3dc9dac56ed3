"""Statistics: the staff overview and the public monthly figures, counted by the database.

Every figure is an SQL aggregate (GROUP BY, COUNT, SUM, AVG); Python only adds up the grouped rows,
fills empty weeks and turns codes into labels. The staff overview reads the submissions received in
the chosen period once for all its figures (``_one_pass``): one GROUP BY over (item, channel, kind,
state, unit, overdue, rating) gives at most a few thousand rows, which Python folds into each
breakdown; the weeks and the durations are grouped from the same rows.

Medians (days from receipt to acceptance, and to conclusion) on the staff page come from the same
pass: the durations are counted per whole hour (GROUP BY hours, a few thousand rows at most), and
Python walks the cumulative counts to the middle one or two (``median_of_hours``); the result is
within an hour of the exact median, on both databases alike. This was chosen over exact medians in SQL
(``percentile_cont(0.5) WITHIN GROUP`` on PostgreSQL, a ``ROW_NUMBER() OVER (ORDER BY d)`` window on
SQLite, which has no percentile function) because each of those is another pass over the period's
rows, and at a million rows the passes are what costs: the rows are wide (the comment text is stored
inline), and SQLite's window query over 500,000 rows took seconds.

Measured on a million seeded submissions over two years (a busy shared 2-core machine): a reviewer's
91 days take about 1.2 s on either database, a year about 4-5 s. What remains is reading the wide
rows; an index covering (received_at, item_number, channel, kind, state, unit_id, next_due_on,
rating, accepted_at, concluded_at) would make it an index-only scan (a schema change, not made here).

Durations are counted in days (fractions included) between the stored UTC instants; periods are
local calendar days in the office's time zone, on ``received_at`` (indexed). Weeks start on Monday.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    case,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from feedback_app.bulletin.service import latest
from feedback_app.core.config import Settings
from feedback_app.core.models import (
    Bulletin,
    Channel,
    Kind,
    Rating,
    StaffUser,
    State,
    Submission,
    Unit,
)
from feedback_app.core.words import (
    CHANNEL_LABELS,
    KIND_LABELS,
    RATING_LABELS,
    STATE_WORDS,
)
from feedback_app.moderation.queue import visible_to

NOT_ACCEPTED = (State.received.value, State.rejected.value, State.merged.value)
ANSWERED = (State.answered.value, State.closed.value)
MAX_WEEKS = 106  # the trend covers at most about two years
MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """Local calendar days, ``start`` included and ``end`` excluded."""

    start: date
    end: date

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self, settings: Settings) -> tuple[datetime, datetime]:
        return (datetime.combine(self.start, time.min, tzinfo=settings.tz),
                datetime.combine(self.end, time.min, tzinfo=settings.tz))


@dataclass(frozen=True)
class Count:
    key: str
    label: str
    value: int


@dataclass(frozen=True)
class ItemRow:
    number: int
    label: str
    received: int = 0
    accepted: int = 0
    answered: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class UnitRow:
    label: str
    received: int = 0
    answered: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Satisfaction:
    counts: list[Count]

    @property
    def rated(self) -> int:
        return sum(c.value for c in self.counts)

    @property
    def rate(self) -> float | None:
        """Satisfied or fairly satisfied, of those who rated; None when nobody did."""
        if not self.rated:
            return None
        good = sum(c.value for c in self.counts if c.key != Rating.dissatisfied.value)
        return good / self.rated


@dataclass
class StaffStats:
    period: Period
    today: date
    total: int = 0
    accepted: int = 0
    answered: int = 0
    overdue: int = 0
    by_item: list[ItemRow] = field(default_factory=list)
    by_channel: list[Count] = field(default_factory=list)
    by_kind: list[Count] = field(default_factory=list)
    by_state: list[Count] = field(default_factory=list)
    by_unit: list[UnitRow] = field(default_factory=list)
    weekly: list[Count] = field(default_factory=list)
    median_days_to_acceptance: float | None = None
    median_days_to_conclusion: float | None = None
    satisfaction: Satisfaction = field(default_factory=lambda: Satisfaction([]))


# ---------- expressions that differ between the databases ----------

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def days_between(session: Session, later, earlier):
    """Days (with fractions) from ``earlier`` to ``later``, as an SQL expression."""
    if _dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def week_start(session: Session, settings: Settings, column):
    """The local Monday of the week of ``column``, as an SQL date (or ISO text on SQLite)."""
    if _dialect(session) == "postgresql":
        local = func.timezone(settings.timezone, column)
        return cast(func.date_trunc("week", local), Date)
    # SQLite keeps UTC text without a zone: shift it by the zone's offset (fixed for China).
    offset = datetime.now(settings.tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes", "weekday 0", "-6 days", type_=String)


# ---------- the staff overview ----------

def labels():
    return (
        {c.value: CHANNEL_LABELS[c] for c in Channel},
        {k.value: KIND_LABELS[k] for k in Kind},
        {s.value: STATE_WORDS[s] for s in State},
        {r.value: RATING_LABELS[r] for r in Rating},
    )


def item_titles(session: Session, bulletin_id: int | None) -> dict[int, str]:
    bulletin = latest(session) if bulletin_id is None else session.get(Bulletin, bulletin_id)
    titles = {0: "整改工作整体"}
    if bulletin is not None:
        titles.update({i.number: i.title for i in bulletin.items})
    return titles


def staff_stats(session: Session, settings: Settings, viewer: StaffUser, period: Period, *,
                bulletin_id: int | None = None, today: date | None = None) -> StaffStats:
    """Everything on the staff statistics page, for what ``viewer`` may see (a handler: their unit)."""
    today = today or datetime.now(settings.tz).date()
    start, end = period.bounds(settings)
    where = [visible_to(viewer), Submission.received_at >= start, Submission.received_at < end]
    if bulletin_id is not None:
        where.append(Submission.bulletin_id == bulletin_id)
    rows, weekly, to_acceptance, to_conclusion = _one_pass(session, settings, where, today)
    channel_words, kind_words, state_words, rating_words = labels()
    titles = item_titles(session, bulletin_id)
    unit_names = dict(session.execute(select(Unit.id, Unit.name)).all())
    stats = StaffStats(period=period, today=today)
    items: dict[int, list[int]] = {}
    units: dict[int | None, list[int]] = {}
    channels: dict[str, int] = {}
    kinds: dict[str, int] = {}
    states_: dict[str, int] = {}
    ratings: dict[str, int] = {}
    for item, channel, kind, state, unit_id, late, rating, n in rows:
        accepted = n if state not in NOT_ACCEPTED else 0
        answered = n if state in ANSWERED else 0
        late_n = n if late else 0
        stats.total += n
        stats.accepted += accepted
        stats.answered += answered
        stats.overdue += late_n
        i = items.setdefault(item, [0, 0, 0, 0])
        i[0] += n
        i[1] += accepted
        i[2] += answered
        i[3] += late_n
        u = units.setdefault(unit_id, [0, 0, 0])
        u[0] += n
        u[1] += answered
        u[2] += late_n
        channels[channel] = channels.get(channel, 0) + n
        kinds[kind] = kinds.get(kind, 0) + n
        states_[state] = states_.get(state, 0) + n
        if rating:
            ratings[rating] = ratings.get(rating, 0) + n

    stats.by_item = [ItemRow(n, titles.get(n, f"第{n}项"), *items.get(n, [0, 0, 0, 0]))
                     for n in sorted(set(titles) | set(items))]
    stats.by_channel = [Count(k, v, channels.get(k, 0)) for k, v in channel_words.items()]
    stats.by_kind = [Count(k, v, kinds.get(k, 0)) for k, v in kind_words.items()]
    stats.by_state = [Count(k, v, states_.get(k, 0)) for k, v in state_words.items()]
    stats.by_unit = sorted(
        (UnitRow(unit_names.get(u, "（已删除的单位）") if u is not None else "未转交", *values)
         for u, values in units.items()),
        key=lambda r: (r.label == "未转交", -r.received, r.label),
    )
    stats.satisfaction = Satisfaction([Count(k, v, ratings.get(k, 0)) for k, v in rating_words.items()])

    stats.weekly = fill_weeks(period, weekly)

    stats.median_days_to_acceptance = median_of_hours(to_acceptance)
    stats.median_days_to_conclusion = median_of_hours(to_conclusion)
    return stats


def _hours(session: Session, later):
    """Whole hours from receipt to ``later`` (rounded down), as an SQL integer."""
    hours = days_between(session, later, Submission.received_at) * 24
    if _dialect(session) == "postgresql":
        return cast(func.floor(hours), Integer)
    return cast(hours, Integer)  # SQLite truncates toward zero; durations are not negative


def _one_pass(session: Session, settings: Settings, where: list, today: date):
    """Read the period's submissions once; group them four ways.

    The rows are selected once into a materialized CTE (a temporary table of narrow rows), and four
    GROUP BYs over it are joined with UNION ALL: the breakdown (item, channel, kind, state, unit,
    overdue, rating), the weeks, and the hours from receipt to acceptance and to conclusion.
    Returns (breakdown rows, {week: n}, {hours: n}, {hours: n}).
    """
    overdue = case((Submission.next_due_on < today, 1), else_=0)
    facts = select(
        Submission.item_number, Submission.channel, Submission.kind, Submission.state, Submission.unit_id,
        overdue.label("overdue"), Submission.rating,
        week_start(session, settings, Submission.received_at).label("week"),
        _hours(session, Submission.accepted_at).label("to_acceptance"),
        _hours(session, Submission.concluded_at).label("to_conclusion"),
    ).where(*where).cte("facts").prefix_with("MATERIALIZED")
    keys = [facts.c.item_number, facts.c.channel, facts.c.kind, facts.c.state, facts.c.unit_id, facts.c.overdue,
            facts.c.rating]
    blank = [cast(null(), Integer), cast(null(), String), cast(null(), String), cast(null(), String),
             cast(null(), Integer), cast(null(), Integer), cast(null(), String)]
    no_week, no_hours = cast(null(), facts.c.week.type), cast(null(), Integer)

    def part(tag: int, *columns):
        return select(literal(tag).label("part"), *columns, func.count().label("n"))

    stmt = union_all(
        part(0, *keys, no_week, no_hours).group_by(*keys),
        part(1, *blank, facts.c.week, no_hours).group_by(facts.c.week),
        part(2, *blank, no_week, facts.c.to_acceptance).where(facts.c.to_acceptance.is_not(None))
        .group_by(facts.c.to_acceptance),
        part(3, *blank, no_week, facts.c.to_conclusion).where(facts.c.to_conclusion.is_not(None))
        .group_by(facts.c.to_conclusion),
    )
    rows: list[tuple[Any, ...]] = []  # (item, channel, kind, state, unit, overdue, rating, n)
    weekly: dict[str, int] = {}
    to_acceptance: dict[int, int] = {}
    to_conclusion: dict[int, int] = {}
    for r in session.execute(stmt):
        tag, n = r[0], r[-1]
        if tag == 0:
            rows.append((*r[1:8], n))
        elif tag == 1:
            weekly[str(r[8])] = n
        else:
            (to_acceptance if tag == 2 else to_conclusion)[int(r[9])] = n
    return rows, weekly, to_acceptance, to_conclusion


def median_of_hours(histogram: dict[int, int]) -> float | None:
    """The median, in days, of durations counted in whole hours: {hours: how many}.

    The middle one or two durations are found by walking the cumulative counts; each stands for
    its whole hour, so the result is within an hour of the exact median (the page shows tenths of
    a day).
    """
    total = sum(histogram.values())
    if not total:
        return None
    wanted = sorted({(total + 1) // 2, (total + 2) // 2})
    picked, seen = [], 0
    for hours in sorted(histogram):
        seen += histogram[hours]
        while wanted and seen >= wanted[0]:
            picked.append(hours)
            wanted.pop(0)
        if not wanted:
            break
    if len(picked) == 1:
        picked.append(picked[0])
    return (picked[0] + picked[1]) / 2 / 24


def fill_weeks(period: Period, counts: dict[str, int]) -> list[Count]:
    """One entry per week of the period (Monday first), zeros included, at most ``MAX_WEEKS``."""
    monday = period.start - timedelta(days=period.start.weekday())
    weeks = []
    while monday < period.end:
        weeks.append(monday)
        monday += timedelta(days=7)
    weeks = weeks[-MAX_WEEKS:]
    return [Count(w.isoformat(), f"{w.month}月{w.day}日", counts.get(w.isoformat(), 0)) for w in weeks]
