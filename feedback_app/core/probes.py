"""Can this machine take a submission now: can the database be written, is there room on the disk.

``probe_database``: a real write, rolled back, on a connection of its own. SQLite: ``BEGIN IMMEDIATE``
(the write lock), a harmless ``UPDATE alembic_version`` and ``ROLLBACK``, waiting at most
``PROBE_BUSY_MS`` for the lock; PostgreSQL: the same UPDATE in a transaction rolled back, with a lock
and statement timeout (a read-only server or a standby refuses it). The answer is ``ok``, ``read-only``,
``busy`` (the lock held past the short wait), ``unreachable`` (the database cannot be opened or
connected to) or ``error`` (it answered but refused the probe otherwise). Nothing is kept.

The probe does not pass the write gate (``core.write_gate.WriteGate``): a request that holds the gate
would hold the probe. It meets the writer in SQLite's own busy handler instead, for at most
``PROBE_BUSY_MS``, holds the lock for two statements and gives the connection back with its busy
timeout as it was.

``disk_state``: the free bytes of the folders that must be writable (the SQLite database's folder, the
attachment store) and whether each can be written; below ``DISK_MIN_FREE_BYTES`` free, or an
attachment store that cannot be written (a citizen's photo would be refused), is a problem.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from feedback_app.core.config import Settings

log = logging.getLogger(__name__)

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
        log.warning("health check: database %s (%s)", state, error_name(exc))
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


def error_name(exc: Exception) -> str:
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
            log.warning("health check: %s folder: %s", folder.role, errno.errorcode.get(exc.errno or 0))
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
