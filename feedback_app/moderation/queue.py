"""The staff queue: filters, counts per state, keyset pagination, both sort orders."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import Date, Select, and_, func, literal_column, or_, select, union
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.database import within_budget
from feedback_app.core.models import Channel, Kind, Reply, StaffUser, State, Submission
from feedback_app.core.permissions import may
from feedback_app.search import match as search
from feedback_app.search.match import search_clause

PAGE_SIZE = 25
NO_DUE = date(9999, 12, 31)  # sorts submissions without an open deadline last
# The deadline sort key, with NO_DUE written into the SQL rather than bound: only then does it match
# the expression of the index ix_submission_due_order (migration 0004).
DUE_ORDER = func.coalesce(Submission.next_due_on, literal_column(f"'{NO_DUE.isoformat()}'", Date))


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    channel: str | None = None
    item: int | None = None
    kind: str | None = None
    unit: int | None = None
    due: str | None = None  # "overdue" or "soon"
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None
    sort: str = "received"  # or "deadline"
    after: str | None = None  # the keyset cursor


def parse_filters(args, q: str | None = None) -> Filters:
    """Filters from query arguments; anything unknown is ignored rather than failing."""

    def pick(name, allowed):
        value = args.get(name) or None
        return value if value in allowed else None

    def as_date(name):
        try:
            return date.fromisoformat(args.get(name, ""))
        except ValueError:
            return None

    def as_int(name):
        value = args.get(name, "")
        return int(value) if value.isdigit() else None

    return Filters(
        state=pick("state", {s.value for s in State}),
        channel=pick("channel", {c.value for c in Channel}),
        item=as_int("item"),
        kind=pick("kind", {k.value for k in Kind}),
        unit=as_int("unit"),
        due=pick("due", {"overdue", "soon"}),
        date_from=as_date("from"),
        date_to=as_date("to"),
        q=(q or "").strip()[:100] or None,
        sort="deadline" if args.get("sort") == "deadline" else "received",
        after=args.get("after") or None,
    )


def visible_to(viewer: StaffUser):
    """What a viewer may see at all: without ``submissions.all_units`` (a handler), what is routed to their unit."""
    if not may(viewer.role, "submissions.all_units"):
        return Submission.unit_id == viewer.unit_id
    return Submission.id.is_not(None)


def _filtered(stmt: Select, f: Filters, viewer: StaffUser, settings: Settings, dialect: str,
              with_state: bool = True, search_plan: str = search.WALK) -> Select:
    today = datetime.now(settings.tz).date()
    conditions = [visible_to(viewer)]
    if with_state and f.state:
        conditions.append(Submission.state == f.state)
    if f.channel:
        conditions.append(Submission.channel == f.channel)
    if f.item is not None:
        conditions.append(Submission.item_number == f.item)
    if f.kind:
        conditions.append(Submission.kind == f.kind)
    if f.unit is not None:
        conditions.append(Submission.unit_id == f.unit)
    if f.due == "overdue":
        conditions.append(Submission.next_due_on < today)
    elif f.due == "soon":
        conditions.append(Submission.next_due_on.between(today, today + timedelta(days=3)))
    if f.date_from:
        conditions.append(Submission.received_at >= _local_midnight(f.date_from, settings))
    if f.date_to:
        conditions.append(Submission.received_at < _local_midnight(f.date_to + timedelta(days=1), settings))
    if f.q:
        conditions.append(search_clause(dialect, f.q, search_plan))
    return stmt.where(and_(*conditions))


def due_status(due_on: date | None, today: date) -> str | None:
    """"overdue", "due_soon" (within 3 days) or None, for the queue's marks."""
    if due_on is None:
        return None
    if due_on < today:
        return "overdue"
    if due_on <= today + timedelta(days=3):
        return "due_soon"
    return None


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time.min, tzinfo=settings.tz)


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list | None:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        return None


@dataclass(frozen=True)
class Page:
    rows: list[Submission]
    next_cursor: str | None


def _search_plan(session: Session, dialect: str, f: Filters, counting: bool) -> str:
    """How a search meets the rest of the query (``search.sqlite_plan``, ``search.pg_plan``)."""
    if not f.q or dialect not in ("sqlite", "postgresql"):
        return search.WALK
    # a page walks an index in its own order under these filters only (a probe per row is safe then)
    in_order = replace(f, q=None, state=None, unit=None, sort="received", after=None) == Filters()
    if dialect == "postgresql":
        search.pg_prepare(session)
        return search.pg_plan(session, f.q, may_probe=in_order and not counting)
    return search.sqlite_plan(session, f.q, counting=counting, may_probe=in_order)


def page(session: Session, settings: Settings, viewer: StaffUser, f: Filters, size: int = PAGE_SIZE) -> Page:
    dialect = session.get_bind().dialect.name
    stmt = _filtered(select(Submission), f, viewer, settings, dialect,
                     search_plan=_search_plan(session, dialect, f, counting=False))
    cursor = _decode(f.after) if f.after else None
    if f.sort == "deadline":
        due = DUE_ORDER
        if cursor:
            after_due, after_id = date.fromisoformat(cursor[0]), int(cursor[1])
            stmt = stmt.where(or_(due > after_due, and_(due == after_due, Submission.id > after_id)))
        stmt = stmt.order_by(due.asc(), Submission.id.asc())
    else:
        if cursor:
            after_at, after_id = datetime.fromisoformat(cursor[0]), int(cursor[1])
            stmt = stmt.where(or_(Submission.received_at < after_at,
                                  and_(Submission.received_at == after_at, Submission.id < after_id)))
        stmt = stmt.order_by(Submission.received_at.desc(), Submission.id.desc())
    rows = list(session.scalars(stmt.limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        key = (last.next_due_on or NO_DUE).isoformat() if f.sort == "deadline" else last.received_at.isoformat()
        next_cursor = _encode([key, last.id])
    return Page(rows, next_cursor)


def counts(session: Session, settings: Settings, viewer: StaffUser, f: Filters) -> dict[str, int]:
    """How many per state under the other filters: the tabs."""
    dialect = session.get_bind().dialect.name
    plan = _search_plan(session, dialect, f, counting=True)
    if dialect == "postgresql" and f.q:
        # The rows whose text matches, with their state, straight from the text's index, and those whose
        # replies match; made distinct by id. (A count over ``id IN (matches)`` would look every match
        # up by id again: five times slower for a phrase in most texts.)
        others = replace(f, state=None, q=None)
        match = search.pg_match(f.q)
        in_body = _filtered(select(Submission.id, Submission.state), others, viewer, settings, dialect,
                            with_state=False).where(match(Submission.body))
        replied = select(Submission.id, Submission.state).join(Reply, Reply.submission_id == Submission.id)
        in_reply = _filtered(replied, others, viewer, settings, dialect, with_state=False).where(match(Reply.body))
        both = union(in_body, in_reply).subquery()
        stmt = select(both.c.state, func.count()).group_by(both.c.state)
    else:
        stmt = _filtered(select(Submission.state, func.count()), replace(f, state=None), viewer, settings,
                         dialect, with_state=False, search_plan=plan).group_by(Submission.state)
    found: dict[str, int] = dict(session.execute(stmt).all())
    return {s.value: found.get(s.value, 0) for s in State}


def search_counts(session: Session, settings: Settings, viewer: StaffUser, f: Filters) -> dict[str, int] | None:
    """The tabs' counts, or None for a search whose counts would hold the page up longer than
    ``search_count_ms`` (one found in most texts: each match must be read for its state)."""
    if not f.q:
        return counts(session, settings, viewer, f)
    return within_budget(session, settings.search_count_ms, lambda: counts(session, settings, viewer, f))


def filtered_select(session: Session, settings: Settings, viewer: StaffUser, f: Filters) -> Select:
    """The submissions ``viewer`` sees under ``f`` (state included), without order or limit."""
    return _filtered(select(Submission), f, viewer, settings, session.get_bind().dialect.name)
