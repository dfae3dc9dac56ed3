"""The ``queue`` suite's databases: a SQLite file and a PostgreSQL database seeded with the made-up submissions."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.queue_data import CHUNK, REPLY_COLUMNS, SEED_TEXT, SLUG, SUBMISSION_COLUMNS, UNITS, Generator
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.database import make_engine
from feedback_app.core.models import Role, StaffUser, Unit
from feedback_app.migrations import upgrade
from feedback_app.search.backlog import index_backlog


@dataclass
class Prepared:
    """A seeded database and the ids the scenarios need."""

    backend: str
    url: str
    engine: Engine
    reviewer_id: int
    handler_id: int
    seed_s: float
    rows: int
    replies: int


def _base_rows(engine: Engine) -> tuple[int, int, int]:
    """The bulletin, the units and two staff users; (bulletin_id, reviewer_id, handler_id)."""
    with Session(engine) as s:
        bulletin = import_bulletin(s, SEED_TEXT.read_text(encoding="utf-8"), SLUG).bulletin
        for i in range(1, UNITS + 1):
            s.add(Unit(id=i, name=f"责任单位{i:02d}"))
        s.flush()
        reviewer = StaffUser(username="bench-reviewer", password_hash="-", role=Role.reviewer.value)
        handler = StaffUser(username="bench-handler", password_hash="-", role=Role.handler.value, unit_id=1)
        s.add_all([reviewer, handler])
        s.commit()
        return bulletin.id, reviewer.id, handler.id


def _sqlite_value(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def seed_sqlite(path: Path, rows: int, now: datetime) -> Prepared:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    bulletin_id, reviewer_id, handler_id = _base_rows(engine)
    engine.dispose()
    started = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA temp_store=MEMORY")
    # Rows go in through a staging table, one INSERT ... SELECT per chunk: the triggers still fill the
    # full-text table row by row, but FTS5 flushes its pending terms once per statement, not per row.
    con.execute("CREATE TEMP TABLE stage_submission AS SELECT * FROM main.submission WHERE 0")
    con.execute("CREATE TEMP TABLE stage_reply AS SELECT * FROM main.reply WHERE 0")
    sub_cols, rep_cols = ", ".join(SUBMISSION_COLUMNS), ", ".join(REPLY_COLUMNS)
    stage_sub = f"INSERT INTO stage_submission ({sub_cols}) VALUES ({', '.join('?' * len(SUBMISSION_COLUMNS))})"
    stage_rep = f"INSERT INTO stage_reply ({rep_cols}) VALUES ({', '.join('?' * len(REPLY_COLUMNS))})"
    total = replies = 0
    for subs, reps in Generator(rows, now, bulletin_id).chunks():
        con.execute("BEGIN")
        con.executemany(stage_sub, ([_sqlite_value(v) for v in r] for r in subs))
        con.executemany(stage_rep, ([_sqlite_value(v) for v in r] for r in reps))
        con.execute(f"INSERT INTO main.submission ({sub_cols}) SELECT {sub_cols} FROM stage_submission "
                    "ORDER BY id")
        con.execute(f"INSERT INTO main.reply ({rep_cols}) SELECT {rep_cols} FROM stage_reply ORDER BY id")
        con.execute("DELETE FROM stage_submission")
        con.execute("DELETE FROM stage_reply")
        con.execute("COMMIT")
        total += len(subs)
        replies += len(reps)
        _progress("sqlite", total, rows, started)
    con.close()
    engine = make_engine(url)
    with Session(engine) as session:
        index_backlog(session, most=total)
        session.commit()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    seed_s = time.perf_counter() - started
    print(f"  sqlite: {total:,} submissions, {replies:,} replies seeded in {seed_s:.0f} s "
          f"({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)
    return Prepared("sqlite", url, make_engine(url), reviewer_id, handler_id, seed_s, total, replies)


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_pg_database(server: str, name: str) -> str:
    import psycopg

    admin = _conninfo(make_url(server).set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                     "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'")
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server: str, name: str) -> None:
    import psycopg

    admin = _conninfo(make_url(server).set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_postgresql(url: str, rows: int, now: datetime) -> Prepared:
    import psycopg

    engine = make_engine(url)
    upgrade(engine)
    bulletin_id, reviewer_id, handler_id = _base_rows(engine)
    engine.dispose()
    started = time.perf_counter()
    total = replies = 0
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        # secondary indexes are built once after the load, not row by row
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('submission', 'reply') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET session_replication_role = replica")  # the generated rows are consistent
        for subs, reps in Generator(rows, now, bulletin_id).chunks():
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY submission ({', '.join(SUBMISSION_COLUMNS)}) FROM STDIN") as copy:
                    for r in subs:
                        copy.write_row(r)
                if reps:
                    with cur.copy(f"COPY reply ({', '.join(REPLY_COLUMNS)}) FROM STDIN") as copy:
                        for r in reps:
                            copy.write_row(r)
            total += len(subs)
            replies += len(reps)
            _progress("postgresql", total, rows, started)
        conn.execute("RESET session_replication_role")
        loaded = time.perf_counter() - started
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _name, ddl in indexes:
            conn.execute(ddl)
        for table in ("submission", "reply"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        indexed = time.perf_counter() - started - loaded
        conn.execute("VACUUM ANALYZE submission")
        conn.execute("VACUUM ANALYZE reply")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    seed_s = time.perf_counter() - started
    print(f"  postgresql: {total:,} submissions, {replies:,} replies seeded in {seed_s:.0f} s "
          f"(COPY {loaded:.0f} s, indexes {indexed:.0f} s; {size / 2**20:,.0f} MiB)", flush=True)
    return Prepared("postgresql", url, make_engine(url), reviewer_id, handler_id, seed_s, total, replies)


def _progress(backend: str, done: int, rows: int, started: float) -> None:
    if done % (10 * CHUNK) == 0 or done == rows:
        print(f"  {backend}: {done:,}/{rows:,} submissions ({time.perf_counter() - started:.0f} s)", flush=True)


