"""The staff queue: filters, both sort orders, keyset pagination, visibility and the per-state counts."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select, text, update

from feedback_app.core.models import Role, StaffUser, State, Submission, Unit
from feedback_app.moderation import queue
from tests.factories import create_web_submission

UTC = UTC


@pytest.fixture
def units(session):
    made = [Unit(name="区市场监管局"), Unit(name="区住房建设局")]
    session.add_all(made)
    session.commit()
    return made


@pytest.fixture
def reviewer(session):
    user = StaffUser(username="reviewer", password_hash="-", role=Role.reviewer.value)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def handler(session, units):
    user = StaffUser(username="handler", password_hash="-", role=Role.handler.value, unit_id=units[0].id)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def today(settings) -> date:
    return datetime.now(settings.tz).date()


@pytest.fixture
def make(session, settings, bulletin):
    """A stored web submission with the given fields set directly; returns its id."""

    def make(body: str = "这是一条关于整改落实情况的意见建议。", **fields) -> int:
        submission, _ = create_web_submission(session, settings, bulletin=bulletin, body=body)
        if fields:
            session.execute(update(Submission).where(Submission.id == submission.id).values(**fields))
            session.commit()
        return submission.id

    return make


def ids(session, settings, viewer, f: queue.Filters | None = None, size: int = 100) -> list[int]:
    return [s.id for s in queue.page(session, settings, viewer, f or queue.Filters(), size=size).rows]


def walk(session, settings, viewer, f: queue.Filters, size: int = 3) -> list[int]:
    """Every page in turn, following the cursors."""
    seen: list[int] = []
    for _ in range(100):
        result = queue.page(session, settings, viewer, f, size=size)
        assert len(result.rows) <= size
        seen += [s.id for s in result.rows]
        if result.next_cursor is None:
            return seen
        assert len(result.rows) == size
        f = replace(f, after=result.next_cursor)
    raise AssertionError("the cursors never ended")


def at(day: str, hour: int = 2) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# --- filters -----------------------------------------------------------------------------------

def test_filters_by_state_channel_item_and_kind(session, settings, reviewer, make):
    a = make(state="accepted", channel="phone", item_number=3, kind="request")
    b = make(state="accepted", channel="web", item_number=3, kind="suggestion")
    c = make(state="received", channel="phone", item_number=7, kind="request")
    F = queue.Filters
    assert set(ids(session, settings, reviewer, F(state="accepted"))) == {a, b}
    assert set(ids(session, settings, reviewer, F(channel="phone"))) == {a, c}
    assert set(ids(session, settings, reviewer, F(item=3))) == {a, b}
    assert set(ids(session, settings, reviewer, F(item=7))) == {c}
    assert set(ids(session, settings, reviewer, F(kind="request"))) == {a, c}
    assert ids(session, settings, reviewer, F(state="accepted", kind="request", channel="phone", item=3)) == [a]
    assert ids(session, settings, reviewer, F(state="closed")) == []


def test_item_zero_is_a_filter_of_its_own(session, settings, reviewer, make):
    whole = make(item_number=0)
    make(item_number=5)
    assert ids(session, settings, reviewer, queue.Filters(item=0)) == [whole]


def test_filters_by_unit(session, settings, reviewer, units, make):
    mine = make(unit_id=units[0].id, state="assigned")
    theirs = make(unit_id=units[1].id, state="assigned")
    make()
    assert ids(session, settings, reviewer, queue.Filters(unit=units[0].id)) == [mine]
    assert ids(session, settings, reviewer, queue.Filters(unit=units[1].id)) == [theirs]


def test_filters_by_due(session, settings, reviewer, make, today):
    overdue = make(next_due_on=today - timedelta(days=1))
    due_today = make(next_due_on=today)
    in_three = make(next_due_on=today + timedelta(days=3))
    make(next_due_on=today + timedelta(days=4))
    make(next_due_on=None)
    assert ids(session, settings, reviewer, queue.Filters(due="overdue")) == [overdue]
    assert set(ids(session, settings, reviewer, queue.Filters(due="soon"))) == {due_today, in_three}


def test_filters_by_date_range_in_local_days(session, settings, reviewer, make):
    # Asia/Shanghai is UTC+8: 15:59:59 UTC is still the same local day, 16:00 UTC the next one
    first_of_march_late = make(received_at=datetime(2025, 3, 1, 15, 59, 59, tzinfo=UTC))
    second_of_march = make(received_at=datetime(2025, 3, 1, 16, 0, tzinfo=UTC))
    last_of_february = make(received_at=datetime(2025, 2, 28, 15, 59, 59, tzinfo=UTC))
    F = queue.Filters
    d = date.fromisoformat
    assert ids(session, settings, reviewer, F(date_from=d("2025-03-01"), date_to=d("2025-03-01"))) == [
        first_of_march_late]
    assert ids(session, settings, reviewer, F(date_from=d("2025-03-02"))) == [second_of_march]
    assert ids(session, settings, reviewer, F(date_to=d("2025-02-28"))) == [last_of_february]
    assert ids(session, settings, reviewer, F(date_from=d("2025-03-01"), date_to=d("2025-03-02"))) == [
        second_of_march, first_of_march_late]


def test_parse_filters_ignores_what_it_does_not_know(settings):
    f = queue.parse_filters({"state": "nonsense", "item": "x", "sort": "deadline", "due": "soon",
                             "from": "2025-13-01", "unit": "4"}, q="  营商环境  ")
    assert (f.state, f.item, f.sort, f.due, f.date_from, f.unit, f.q) == (
        None, None, "deadline", "soon", None, 4, "营商环境")


# --- sort orders and pagination ----------------------------------------------------------------

def test_received_sort_is_newest_first_with_ties_by_id(session, settings, reviewer, make):
    old = make(received_at=at("2025-01-01"))
    tie_a = make(received_at=at("2025-02-01"))
    tie_b = make(received_at=at("2025-02-01"))
    new = make(received_at=at("2025-03-01"))
    assert ids(session, settings, reviewer) == [new, tie_b, tie_a, old]


def test_deadline_sort_is_earliest_first_and_none_last(session, settings, reviewer, make, today):
    none_a = make(next_due_on=None)
    late = make(next_due_on=today + timedelta(days=30))
    overdue = make(next_due_on=today - timedelta(days=2))
    tie_a = make(next_due_on=today + timedelta(days=5))
    none_b = make(next_due_on=None)
    tie_b = make(next_due_on=today + timedelta(days=5))
    expected = [overdue, tie_a, tie_b, late, none_a, none_b]
    assert ids(session, settings, reviewer, queue.Filters(sort="deadline")) == expected


@pytest.mark.parametrize("sort", ["received", "deadline"])
def test_keyset_pages_return_every_row_exactly_once(session, settings, reviewer, make, today, sort):
    days = ["2025-01-05", "2025-01-05", "2025-01-05", "2025-01-07", "2025-01-02", "2025-01-07",
            "2025-01-09", "2025-01-02", "2025-01-05", "2025-01-01", "2025-01-07"]
    dues = [3, None, 3, -1, None, 3, 10, -1, None, 3, 0]
    made = [make(received_at=at(day), next_due_on=None if due is None else today + timedelta(days=due))
            for day, due in zip(days, dues, strict=False)]
    f = queue.Filters(sort=sort)
    everything = ids(session, settings, reviewer, f)
    assert sorted(everything) == sorted(made)
    for size in (1, 2, 3, 4, len(made), len(made) + 1):
        assert walk(session, settings, reviewer, f, size=size) == everything
    if sort == "received":
        key = {s.id: (s.received_at, s.id) for s in session.scalars(select(Submission))}
        assert everything == sorted(made, key=lambda i: key[i], reverse=True)
    else:
        key = {s.id: (s.next_due_on or date.max, s.id) for s in session.scalars(select(Submission))}
        assert everything == sorted(made, key=lambda i: key[i])


@pytest.mark.parametrize("sort", ["received", "deadline"])
def test_keyset_pages_under_a_filter_and_for_a_handler(session, settings, handler, units, make, today, sort):
    mine = []
    for n in range(8):
        mine.append(make(unit_id=units[0].id, state="assigned" if n % 3 else "accepted",
                         received_at=at("2025-01-01", hour=n % 3), next_due_on=today + timedelta(days=n % 2)))
        make(unit_id=units[1].id, state="assigned", received_at=at("2025-01-01", hour=n % 3))
    f = queue.Filters(sort=sort, state="assigned")
    expected = ids(session, settings, handler, f)
    assert set(expected) == {i for n, i in enumerate(mine) if n % 3}
    assert walk(session, settings, handler, f) == expected


def test_a_garbled_cursor_starts_from_the_top(session, settings, reviewer, make):
    made = [make() for _ in range(3)]
    assert ids(session, settings, reviewer, queue.Filters(after="not-a-cursor!")) == made[::-1]


# --- visibility and counts ---------------------------------------------------------------------

def test_a_handler_sees_only_its_units_rows(session, settings, handler, reviewer, units, make):
    mine = make(unit_id=units[0].id, state="assigned")
    theirs = make(unit_id=units[1].id, state="assigned")
    unrouted = make()
    assert ids(session, settings, handler) == [mine]
    assert ids(session, settings, handler, queue.Filters(unit=units[1].id)) == []
    assert ids(session, settings, reviewer) == [unrouted, theirs, mine]
    assert session.scalars(select(Submission.id).where(queue.visible_to(handler))).all() == [mine]
    counts = queue.counts(session, settings, handler, queue.Filters())
    assert counts["assigned"] == 1 and sum(counts.values()) == 1


def test_counts_per_state_under_the_other_filters(session, settings, reviewer, handler, units, make):
    make(state="received", kind="request")
    make(state="received", kind="suggestion")
    make(state="accepted", kind="request", unit_id=units[0].id)
    make(state="closed", kind="request", unit_id=units[0].id)
    make(state="closed", kind="request", unit_id=units[1].id)
    make(state="rejected", kind="enquiry")

    def counts(viewer, **filters):
        return queue.counts(session, settings, viewer, queue.Filters(**filters))

    assert list(counts(reviewer)) == [s.value for s in State]
    assert counts(reviewer) == {"received": 2, "accepted": 1, "assigned": 0, "answered": 0, "closed": 2,
                                "rejected": 1, "merged": 0, "reopened": 0}
    by_kind = counts(reviewer, kind="request")
    assert (by_kind["received"], by_kind["accepted"], by_kind["closed"], by_kind["rejected"]) == (1, 1, 2, 0)
    # the state filter picks the tab; the counts of the other tabs stay
    assert counts(reviewer, kind="request", state="closed") == by_kind
    by_unit = counts(reviewer, unit=units[0].id)
    assert (by_unit["accepted"], by_unit["closed"], sum(by_unit.values())) == (1, 1, 2)
    assert counts(handler) == by_unit


# --- the plans ---------------------------------------------------------------------------------

def _plan(session, settings, viewer, f: queue.Filters, call=queue.page) -> str:
    """The plan of the last statement ``call`` sends; on PostgreSQL with sorting and scanning discouraged
    (its tables here are tiny), so that an index that serves the order is taken if there is one."""
    statements: list[tuple[str, object]] = []
    engine = session.get_bind()

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        call(session, settings, viewer, f)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    statement, parameters = statements[-1]
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(r[3] for r in rows)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))


def _sorts(plan: str) -> bool:
    return "TEMP B-TREE" in plan or any(line.strip().startswith("->  Sort") or line.startswith("Sort")
                                        for line in plan.splitlines())


CURSOR = "WyIyMDI1LTAxLTAxIiwgNV0"  # ["2025-01-01", 5]


@pytest.mark.parametrize(
    ("viewer", "filters", "index"),
    [
        ("reviewer", queue.Filters(state="received", kind="request"), "ix_submission_state_received_at"),
        ("reviewer", queue.Filters(sort="deadline"), "ix_submission_due_order"),
        ("reviewer", queue.Filters(sort="deadline", after=CURSOR), "ix_submission_due_order"),
        ("reviewer", queue.Filters(sort="deadline", state="assigned"), "ix_submission_state_due_order"),
        ("handler", queue.Filters(), "ix_submission_unit_id_received_at"),
        ("handler", queue.Filters(state="assigned"), "ix_submission_unit_id_state_received_at"),
        ("handler", queue.Filters(sort="deadline"), "ix_submission_unit_id_due_order"),
    ],
)
def test_pages_walk_an_index_instead_of_sorting(session, settings, reviewer, handler, make, viewer, filters,
                                                index):
    make()
    plan = _plan(session, settings, {"reviewer": reviewer, "handler": handler}[viewer], filters)
    assert index in plan and not _sorts(plan), plan


def test_counts_read_an_index_only(session, settings, reviewer, handler, make):
    make()
    if session.get_bind().dialect.name != "sqlite":  # PostgreSQL plans by statistics: the index exists
        indexes = set(session.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'submission'")))
        assert "ix_submission_state_filters" in indexes
        return
    assert "COVERING INDEX" in _plan(session, settings, reviewer, queue.Filters(), call=queue.counts)
    plan = _plan(session, settings, reviewer, queue.Filters(kind="request", channel="web", item=3),
                 call=queue.counts)
    assert "COVERING INDEX ix_submission_state_filters" in plan, plan
    plan = _plan(session, settings, handler, queue.Filters(), call=queue.counts)
    assert "COVERING INDEX ix_submission_unit_id_state_received_at" in plan, plan
