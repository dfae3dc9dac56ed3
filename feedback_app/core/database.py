"""The declarative base, the engine, sessions that pass the SQLite write gate (``core.write_gate``), and
jobs and steps that run when a transaction ends.

Services receive a session and flush; whoever opened it (a request, a command) commits once.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    create_engine,
    event,
    exc,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from feedback_app.core.write_gate import WriteGate

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


T = TypeVar("T")
log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


WAL_CHECKPOINT_PAGES = 8000


def make_engine(url: str, *, busy_seconds: float = 30.0, **kwargs: Any) -> Engine:
    """``busy_seconds``: how long a SQLite statement waits for a lock another connection holds."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_seconds}, hide_parameters=True, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        # A statement that may fail halfway keeps the pages it changes in a statement journal, which
        # spills to a temporary file past 64 KiB: a comment's insert passes that (memory instead: +8%
        # comments per second). Temporary B-trees are then held in memory too; the exports' and the
        # queue's plans sort nothing (they walk indexes), a search's set of matching ids is the largest.
        cur.execute("PRAGMA temp_store=MEMORY")
        # A checkpoint runs inside the commit that crosses this many pages of WAL, while every other
        # writer waits. Every 8,000 pages (32 MB) rather than SQLite's 1,000: a page that every
        # comment changes (an index's last leaf) is copied once per checkpoint however often it changed.
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A writing transaction takes the write lock up front, so that it waits for another writer
        # instead of failing on a stale snapshot; a reading one may not write at all (query_only).
        # (on the DBAPI connection itself: every transaction runs this, and SQLAlchemy's own execution
        # around a statement costs more than the statement)
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        read_only = mode == "READ_ONLY"
        dbapi = conn.connection.driver_connection
        if dbapi is None:  # a connection being begun has its DBAPI connection
            raise RuntimeError("the connection has no DBAPI connection")
        statement = "BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN"
        try:
            if conn.info.get("query_only", False) != read_only:  # before BEGIN: query_only refuses BEGIN IMMEDIATE
                dbapi.execute(f"PRAGMA query_only={int(read_only)}")
                conn.info["query_only"] = read_only
            dbapi.execute(statement)
        except conn.dialect.loaded_dbapi.Error as error:  # raised as SQLAlchemy's, as Connection.execute would
            raise exc.DBAPIError.instance(statement, None, error, conn.dialect.loaded_dbapi.Error,
                                          dialect=conn.dialect) from error


WRITE_GATE = "write_gate"  # session.info: the WriteGate this session's writers pass (SQLite files only)
_GATE_HELD = "write_gate_held"


def make_sessionmaker(engine: Engine, gate: WriteGate | None) -> sessionmaker[Session]:
    """Sessions of ``engine`` whose writers pass ``gate`` (see ``write_gate``)."""
    return sessionmaker(engine, expire_on_commit=False, info={WRITE_GATE: gate})


def begin_immediate(session: Session) -> None:
    """Start ``session``'s transaction ready to write: on SQLite it passes the write gate and holds
    the write lock from its first statement (``release_write_gate`` lets the next writer in)."""
    if session.get_bind().dialect.name == "sqlite":
        gate: WriteGate | None = session.info.get(WRITE_GATE)
        if gate is not None and not session.info.get(_GATE_HELD):
            gate.acquire()
            session.info[_GATE_HELD] = True
        try:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        except BaseException:  # no transaction began (the database busy or gone): nobody else may wait on us
            release_write_gate(session)
            raise


def release_write_gate(session: Session) -> None:
    """Let the next writer through the gate, once ``session``'s transaction has ended."""
    if session.info.pop(_GATE_HELD, False):
        session.info[WRITE_GATE].release()


def begin_read_only(session: Session) -> None:
    """Start ``session``'s transaction unable to write: the database refuses any write in it (a GET)."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "READ_ONLY"})
    else:
        session.connection(execution_options={"postgresql_readonly": True})


def begin_write(session: Session) -> None:
    """End the read-only part of the work and start the writing transaction.

    On SQLite the new transaction holds the write lock from its first statement, so whatever the
    caller reads next (a check that a form was not already submitted, say) cannot go stale before
    it writes. On PostgreSQL row locks and unique constraints do that work; nothing changes.
    """
    if session.get_bind().dialect.name == "sqlite":
        if session.in_transaction():  # a comment usually read nothing before
            session.commit()
        begin_immediate(session)


AFTER_COMMIT = "after_commit"
Job = Callable[[Session], object]


def after_commit(session: Session, job: Job) -> None:
    """Leave ``job`` for after this transaction has committed: it runs in a writing transaction of its
    own (a request's, once its response has gone out; see ``run_after_commit`` for the command line).
    A rollback forgets it. For work that may wait: a job that fails is logged, and must leave things so
    that a later one can do its work."""
    session.info.setdefault(AFTER_COMMIT, []).append(job)


OUTCOME_STEPS = "outcome_steps"
Step = Callable[[], object]


def on_outcome(session: Session, *, committed: Step, rolled_back: Step) -> None:
    """Run ``committed()`` right after this session's transaction commits, or ``rolled_back()`` right
    after the transaction (or the savepoint) it was registered in rolls back: for what lives beside the
    database and must follow it (a file put in its place, or removed). A savepoint released is not yet
    a commit: its steps wait for the outermost transaction. Neither step may use the database; a
    failure is logged, never raised (the outcome stands)."""
    within = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(OUTCOME_STEPS, []).append((within, committed, rolled_back))


def _run_steps(steps: list[Step]) -> None:
    for step in steps:
        try:
            step()
        except Exception:
            log.exception("a step after a transaction ended failed")


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the outer transaction decides
        return
    _run_steps([committed for _, committed, _ in session.info.pop(OUTCOME_STEPS, [])])


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, ended: SessionTransaction) -> None:
    """The transaction ``ended`` rolled back, a savepoint or the outermost one: the steps registered in
    it are undone, and (the outermost) the jobs left for after its commit are dropped."""
    if ended.parent is None:
        session.info.pop(AFTER_COMMIT, None)
    steps = session.info.get(OUTCOME_STEPS, [])
    undone = [step for step in steps if ended.parent is None or _inside(step[0], ended)]
    if undone:
        session.info[OUTCOME_STEPS] = [step for step in steps if step not in undone]
        _run_steps([rolled_back for _, _, rolled_back in undone])


def take_jobs(session: Session) -> list[Job]:
    """The jobs ``session`` left with ``after_commit``, taken (once it has committed)."""
    jobs: list[Job] = session.info.pop(AFTER_COMMIT, [])
    return jobs


def run_after_commit(session: Session) -> None:
    """The command line's counterpart of a request's end: run the jobs ``session`` left with
    ``after_commit``, now that it has committed, each in a session of its own (without the write gate:
    a command-line writer meets SQLite's busy handler, as elsewhere)."""
    bind = session.get_bind()
    run_jobs(lambda: Session(bind), take_jobs(session))


def run_jobs(new_session: Callable[[], Session], jobs: list[Job]) -> None:
    """Run each job in a writing transaction of its own; a failure is logged and the others still run."""
    for job in jobs:
        try:
            with new_session() as work:
                try:
                    begin_immediate(work)
                    job(work)
                    work.commit()
                finally:
                    work.rollback()
                    release_write_gate(work)
        except Exception:
            log.exception("a job after a commit failed")


def within_budget(session: Session, milliseconds: int, run: Callable[[], T]) -> T | None:
    """``run()``, or None when its statements take longer than ``milliseconds``: for what a page can
    do without (the per-state counts of a search found in most texts), never for what it must show.

    SQLite: a progress handler interrupts the statement; the transaction stays usable. PostgreSQL:
    a ``statement_timeout`` inside a savepoint, rolled back to when it fires.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.driver_connection
        if raw is None:  # a connection in use has its DBAPI connection
            raise RuntimeError("the connection has no DBAPI connection")
        deadline = time.monotonic() + milliseconds / 1000
        raw.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        try:
            return run()
        except OperationalError as exc:
            if "interrupted" not in str(exc.orig):
                raise
            return None
        finally:
            raw.set_progress_handler(None, 0)
    savepoint = session.begin_nested()
    try:
        session.execute(text(f"SET LOCAL statement_timeout = {max(1, int(milliseconds))}"))
        result = run()
        session.execute(text("SET LOCAL statement_timeout = DEFAULT"))
    except OperationalError as exc:
        savepoint.rollback()  # also undoes the SET LOCAL
        if getattr(exc.orig, "sqlstate", None) != "57014":  # query_canceled
            raise
        return None
    savepoint.commit()
    return result
