"""``/healthz``: can the service take a submission now: can the database be written, is there disk.

Polled every few seconds by a load balancer or a monitor, so it is cheap: one short probe of the
database, two ``statvfs``, and a handful of small aggregate reads. It answers JSON, never cached, with
no personal data (counts and ages, no addresses, paths or error texts).

**200 or 503 is decided by the database and the disk alone**:

- ``database``: a real write, rolled back, on a connection of its own. SQLite: ``BEGIN IMMEDIATE``
  (the write lock), a harmless ``UPDATE alembic_version`` and ``ROLLBACK``, waiting at most
  ``PROBE_BUSY_MS`` for the lock; PostgreSQL: the same UPDATE in a transaction rolled back, with a
  lock and statement timeout (a read-only server or a standby refuses it). The answer is ``ok``,
  ``read-only``, ``busy`` (the lock held past the short wait), ``unreachable`` (the database cannot be
  opened or connected to) or ``error`` (it answered but refused the probe otherwise). Nothing is kept:
  a GET writes nothing.
- ``disk``: the free bytes of the folders that must be writable (the SQLite database's folder, the
  attachment store) and whether each can be written; below ``DISK_MIN_FREE_BYTES`` free, or an
  attachment store that cannot be written (a citizen's photo would be refused), is an error.

**Reported, never a 503**: the outbox (how many mails wait, the oldest, failures), the mailboxes
(``mailbox.health``) and ``alarms``, one Chinese line each (the channel alarms, a search backlog that no
longer shrinks, mail due and not sent). A stuck outbox or a failing mailbox is an alarm for the
operator; the site still takes submissions, so it is not taken out of the load balancer for it.

The probe does not pass the write gate (``core.database.WriteGate``): waiting at the gate has no time
limit, and a request that holds it would hold the probe. It meets the writer in SQLite's own busy
handler instead, for at most ``PROBE_BUSY_MS``, holds the lock for two statements and gives the
connection back with its busy timeout as it was. It runs before the request's own (read-only)
transaction begins, so it waits on nothing this request holds.
"""
from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from feedback_app import current
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.mailbox.health import mailbox_health
from feedback_app.moderation.channels import channel_alarms
from feedback_app.outbox.health import OutboxState, outbox_state, overdue_seconds
from feedback_app.search import backlog as search_backlog
from feedback_app.web.access import public
from feedback_app.web.transaction import get_session

bp = Blueprint("health", __name__)

PROBE_BUSY_MS = 1500  # how long the probe waits for a write lock someone else holds
PROBE_STATEMENT_MS = 3000  # PostgreSQL: the probe's statements at most
DISK_MIN_FREE_BYTES = 64 * 2**20  # less free in a folder that must be writable: 503
PROBE = text("UPDATE alembic_version SET version_num = version_num")  # changes nothing, needs the write lock

OK, READ_ONLY, BUSY, UNREACHABLE, ERROR = "ok", "read-only", "busy", "unreachable", "error"
DATABASE_PROBLEMS = {
    READ_ONLY: "数据库只读，无法保存",
    BUSY: "数据库被长时间锁定，无法保存",
    UNREACHABLE: "无法连接数据库",
    ERROR: "数据库无法写入",
}
PG_READ_ONLY = {"25006"}  # read_only_sql_transaction (also a standby)
PG_BUSY = {"55P03", "57014", "40P01"}  # lock_not_available, query_canceled (the timeout), deadlock_detected


@bp.get("/healthz")
@public
def healthz():
    settings = current.settings()
    engine = current.engine()
    database = probe_database(engine)  # first: before this request's own transaction begins
    disk = disk_state(engine, settings)
    problems = [DATABASE_PROBLEMS[database]] if database != OK else []
    problems += disk.pop("problems")
    body: dict[str, Any] = {"status": "error" if problems else "ok", "database": database, "disk": disk}
    if database != UNREACHABLE:  # reading would fail (or wait) the same way
        body.update(_reported(settings))
    else:
        body.update(outbox=None, mailbox=None, alarms=[])
    body["problems"] = problems
    response = jsonify(body)
    response.status_code = 503 if problems else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def probe_database(engine: Engine) -> str:
    """Whether a submission could be written now: a write, rolled back (see the module's text)."""
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                _probe_sqlite(conn)
            else:
                _probe_postgresql(conn)
    except (SQLAlchemyError, sqlite3.Error) as exc:  # sqlite3's own: the PRAGMAs on the driver's connection
        state = _classify(exc, engine)
        current_app.logger.warning("health check: database %s (%s)", state, _error_name(exc))
        return state
    return OK


def _probe_sqlite(conn: Connection) -> None:
    raw = conn.connection.driver_connection
    if raw is None:  # a connection checked out has its DBAPI connection
        raise RuntimeError("the connection has no DBAPI connection")
    (waits,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_MS}")
    try:
        conn.execution_options(sqlite_begin="IMMEDIATE")  # this Connection only, not the pooled one
        with conn.begin() as transaction:
            conn.execute(PROBE)
            transaction.rollback()
    finally:
        try:
            raw.execute(f"PRAGMA busy_timeout = {int(waits)}")
        except Exception:
            conn.invalidate()  # never back in the pool with the short wait
            raise


def _probe_postgresql(conn: Connection) -> None:
    with conn.begin() as transaction:
        conn.execute(text(f"SET LOCAL lock_timeout = {PROBE_BUSY_MS}"))
        conn.execute(text(f"SET LOCAL statement_timeout = {PROBE_STATEMENT_MS}"))
        conn.execute(PROBE)
        transaction.rollback()  # and with it the SET LOCALs


def _driver_error(exc: Exception) -> Exception:
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, Exception) else exc


def _error_name(exc: Exception) -> str:
    orig = _driver_error(exc)
    return getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None) or type(orig).__name__


def _classify(exc: Exception, engine: Engine) -> str:
    orig = _driver_error(exc)
    sqlite_name: str = getattr(orig, "sqlite_errorname", "") or ""
    sqlstate: str = getattr(orig, "sqlstate", "") or ""
    if sqlite_name.startswith("SQLITE_READONLY") or sqlstate in PG_READ_ONLY:
        return READ_ONLY
    if sqlite_name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or sqlstate in PG_BUSY:
        return BUSY
    if sqlite_name.startswith("SQLITE_CANTOPEN"):
        # a WAL database whose folder cannot be written (its -shm cannot be made) cannot be opened at all
        path = _sqlite_path(engine)
        return READ_ONLY if path is not None and path.exists() and not _writable(path.parent) else UNREACHABLE
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or not (sqlite_name or sqlstate):
        return UNREACHABLE  # no connection, or lost (psycopg: no SQLSTATE without a server's answer)
    if sqlstate.startswith("08") or sqlite_name.startswith(("SQLITE_IOERR", "SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return UNREACHABLE
    return ERROR


def _sqlite_path(engine: Engine) -> Path | None:
    """The SQLite database's file, when it is one (not in memory, not a URI)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(os.path.abspath(database))


def _existing(folder: Path) -> Path:
    """``folder``, or the nearest of its parents that exists (a folder made on first use)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _writable(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (or the folder itself, in the nearest that exists)."""
    return os.access(_existing(folder), os.W_OK | os.X_OK)


@dataclass(frozen=True)
class _Folder:
    role: str
    path: Path
    must_write: bool  # an error when it cannot be written (else reported: the database probe decides)


def disk_state(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Each folder's free bytes and whether it can be written; ``problems``: the errors, in Chinese."""
    database = _sqlite_path(engine)
    folders = [_Folder("attachments", Path(settings.attachments_path), True)]
    if database is not None:
        folders.insert(0, _Folder("database", database.parent, False))
    state: dict[str, Any] = {"min_free_bytes": DISK_MIN_FREE_BYTES}
    problems = []
    label = {"database": "数据库目录", "attachments": "附件目录"}
    for folder in folders:
        try:
            free: int | None = shutil.disk_usage(_existing(folder.path)).free
        except OSError as exc:
            current_app.logger.warning("health check: %s folder: %s", folder.role, errno.errorcode.get(exc.errno or 0))
            free = None
        writable = _writable(folder.path)
        state[folder.role] = {"free_bytes": free, "writable": writable}
        if free is None or free < DISK_MIN_FREE_BYTES:
            problems.append(f"磁盘空间不足：{label[folder.role]}" +
                            (f"仅剩 {free // 2**20} MiB" if free is not None else "无法读取剩余空间"))
        if folder.must_write and not writable:
            problems.append(f"{label[folder.role]}不可写")
    state["status"] = "error" if problems else "ok"
    state["problems"] = problems
    return state


def _seconds_since(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, int((now - moment).total_seconds()))


def _outbox(state: OutboxState, now: datetime) -> dict[str, Any]:
    return {
        "waiting": state.waiting,
        "retrying": state.retrying,
        "oldest_waiting_seconds": _seconds_since(state.oldest_waiting_at, now),
        "overdue_seconds": overdue_seconds(state, now),
        "failed": state.failed,
        "last_failure_seconds": _seconds_since(state.last_failure_due_at, now),
    }


def _reported(settings: Settings) -> dict[str, Any]:
    """The outbox, the mailboxes and the alarms, read in the request's read-only transaction."""
    now = utcnow()
    try:
        session = get_session()
        alarms = channel_alarms(session, settings, now)
        backlog = search_backlog.alarm(session.connection())
        outbox = outbox_state(session)
        mailboxes = mailbox_health(session, settings, now=now)
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: state unreadable (%s)", _error_name(exc))
        return {"outbox": None, "mailbox": None, "alarms": ["无法读取渠道状态"]}
    if backlog:
        alarms.append(backlog)
    overdue = overdue_seconds(outbox, now)
    if overdue is not None and overdue > settings.mail_alarm_minutes * 60:
        alarms.append(f"发件箱有邮件到期 {overdue // 60} 分钟仍未发送，请检查发信任务是否在运行")
    configured = next((m for m in mailboxes if m.configured), None)
    mailbox: dict[str, Any] = {
        "known": len(mailboxes),
        "in_alarm": sum(m.alarm for m in mailboxes),
        "quarantined": sum(m.quarantined for m in mailboxes),
        "configured": None if configured is None else {
            "alarm": configured.alarm,
            "last_attempt_seconds": _seconds_since(configured.last_attempt_at, now),
            "last_success_seconds": _seconds_since(configured.last_success_at, now),
            "failing_seconds": _seconds_since(configured.failing_since, now),
        },
    }
    return {"outbox": _outbox(outbox, now), "mailbox": mailbox, "alarms": alarms}
