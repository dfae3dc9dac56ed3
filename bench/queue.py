"""The ``queue`` suite: the staff queue and its search over a million submissions, on SQLite and PostgreSQL.

Seeds ``--rows`` submissions (default 1,000,000; about a fifth with a reply) into a fresh SQLite file
and a fresh PostgreSQL database, both migrated to head, then times the real ``queue.page()`` and
``queue.counts()`` with a reviewer and a handler as the viewer. The scenarios take turns, one call
each per round, so that whatever else the machine does weighs on all of them alike. Each search is
checked once against a plain LIKE over the base tables: a mismatch marks the run as not ok.

SQLite is loaded with executemany into a staging table and one INSERT ... SELECT per chunk, so that
the migrations' triggers fill the replies' full-text tables as the rows go in; the submissions' texts
are indexed at the end, as the application's batches would have (``search_backlog``). PostgreSQL with
COPY, its secondary indexes dropped during the load and built again after it, then VACUUM ANALYZE (what
autovacuum would have done by then). SQLite gets no ANALYZE: the application never runs one, so the
plans measured are the ones it would get. Both run with the application's own engine settings
(``feedback_app.core.database.make_engine``).

``--queue-backends sqlite`` (or ``postgresql``) times one backend only. ``--queue-reuse DIR`` keeps the
seeded databases (a SQLite file in DIR, a PostgreSQL database ``feedback_bench_queue_<rows>``) and
reuses them on the next run with the same ``--rows``, migrated to head first: the figures then reflect
the code of the day without seeding a million rows again (seeding time is the one recorded then).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench.queue_seed import Prepared, create_pg_database, drop_pg_database, seed_postgresql, seed_sqlite
from feedback_app.core.config import Settings
from feedback_app.core.database import make_engine
from feedback_app.core.models import Reply, StaffUser, Submission
from feedback_app.migrations import upgrade
from feedback_app.moderation import queue
from feedback_app.search.match import _like_pattern, pg_prepare

DEFAULT_ROWS = 1_000_000
DEFAULT_REPEAT = 50
WARMUP_CALLS = 3
GOAL_MS = 100.0
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
DEEP = 20_000  # rows skipped before the deep page
# (the shares are of the generated submissions)
SEARCH_LONG = "营商环境"  # four characters, in about one in eight
SEARCH_LONG_SOME = "某物流有限公司"  # seven characters, in about one in a hundred
SEARCH_LONG_RARE = "王伟芳"  # three characters, a name: a handful
SEARCH_SHORT = "企业"  # two characters, in most
SEARCH_SHORT_SOME = "退税"  # two characters, in about one in a hundred


# --- the scenarios -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    name: str
    viewer: str  # "reviewer" or "handler"
    call: str  # "page" or "counts"
    filters: queue.Filters
    search: str | None = None  # checked against a LIKE over the base tables


def scenarios(deep_cursor: str, deadline_deep_cursor: str) -> list[Scenario]:
    F = queue.Filters
    return [
        Scenario("first page", "reviewer", "page", F()),
        Scenario("filtered page: received+request", "reviewer", "page", F(state="received", kind="request")),
        Scenario("filtered page: unit", "reviewer", "page", F(unit=2)),
        Scenario("handler page", "handler", "page", F()),
        Scenario("handler page: assigned", "handler", "page", F(state="assigned")),
        Scenario("overdue page", "reviewer", "page", F(due="overdue")),
        Scenario(f"deep page (after {DEEP:,})", "reviewer", "page", F(after=deep_cursor)),
        Scenario("deadline page", "reviewer", "page", F(sort="deadline")),
        Scenario(f"deadline deep page (after {DEEP:,})", "reviewer", "page",
                 F(sort="deadline", after=deadline_deep_cursor)),
        Scenario("handler deadline page", "handler", "page", F(sort="deadline")),
        Scenario("counts", "reviewer", "counts", F()),
        Scenario("counts: request", "reviewer", "counts", F(kind="request")),
        Scenario("handler counts", "handler", "counts", F()),
    ] + [
        Scenario(f"search {q} {call}", "reviewer", call, F(q=q), q)
        for q in (SEARCH_LONG, SEARCH_LONG_SOME, SEARCH_LONG_RARE, SEARCH_SHORT, SEARCH_SHORT_SOME)
        for call in ("page", "counts")
    ] + [
        Scenario(f"handler search {SEARCH_LONG_SOME} page", "handler", "page", F(q=SEARCH_LONG_SOME)),
        Scenario(f"handler search {SEARCH_SHORT_SOME} page", "handler", "page", F(q=SEARCH_SHORT_SOME)),
    ]


def _cursor_at(session: Session, settings: Settings, viewer: StaffUser, sort: str) -> str:
    """The cursor page() would hand out after ``DEEP`` rows, found by walking the pages."""
    f = queue.Filters(sort=sort)
    seen = 0
    while seen < DEEP:
        result = queue.page(session, settings, viewer, f, size=1000)
        seen += len(result.rows)
        session.expunge_all()
        if result.next_cursor is None:
            break
        f = replace(f, after=result.next_cursor)
    return f.after or ""


class StatementLog:
    """The last SELECT the application sent, to EXPLAIN it afterwards."""

    def __init__(self, engine: Engine):
        self.last: tuple[str, object] | None = None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            self.last = (statement, parameters)


def explain(engine: Engine, backend: str, statement: str, parameters, search: bool = False) -> list[str]:
    with engine.connect() as conn:
        if backend == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return [f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows]
        if search:  # the settings queue.page() and queue.counts() give a search (search.pg_prepare)
            with Session(bind=conn) as s:
                pg_prepare(s)
                return [r[0] for r in s.connection().exec_driver_sql("EXPLAIN " + statement, parameters).all()]
        return [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()]


def _depth(rows, row) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


def check_search(engine: Engine, q: str, found: dict[str, int]) -> bool:
    """counts() for ``q`` equals a LIKE over the base tables (exact substring, ASCII case folded)."""
    pattern = _like_pattern(q)
    with Session(engine) as s:
        dialect = s.get_bind().dialect.name
        like = (lambda c: c.ilike(pattern, escape="\\")) if dialect == "postgresql" else \
            (lambda c: c.like(pattern, escape="\\"))
        in_reply = select(Reply.submission_id).where(like(Reply.body))
        expected = s.scalar(select(func.count()).select_from(Submission).where(
            like(Submission.body) | Submission.id.in_(in_reply)))
    return sum(found.values()) == expected


def measure(prepared: Prepared, repeat: int, workdir: Path) -> dict:
    settings = Settings.from_env({}, env="production", secret_key="bench", database_url=prepared.url,
                                 instance_path=workdir / "instance")
    engine = prepared.engine
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as s:
        viewers = {"reviewer": s.get(StaffUser, prepared.reviewer_id),
                   "handler": s.get(StaffUser, prepared.handler_id)}
        for v in viewers.values():
            s.expunge(v)
        deep = _cursor_at(s, settings, viewers["reviewer"], "received")
        deadline_deep = _cursor_at(s, settings, viewers["reviewer"], "deadline")
    log = StatementLog(engine)
    todo = scenarios(deep, deadline_deep)

    def call(sc: Scenario):
        with factory() as s:
            fn = queue.page if sc.call == "page" else queue.counts
            return fn(s, settings, viewers[sc.viewer], sc.filters)

    out: dict[str, dict] = {}
    ok = True
    for sc in todo:
        t0 = time.perf_counter()
        result = call(sc)
        first = time.perf_counter() - t0
        statement, params = log.last
        entry = {"first_call_ms": round(first * 1000, 1),
                 "plan": explain(engine, prepared.backend, statement, params, search=bool(sc.filters.q))}
        if sc.call == "page":
            entry["rows"] = len(result.rows)
        else:
            entry["counts"] = result
        if sc.search and sc.call == "counts" and sc.viewer == "reviewer":
            entry["matches_like"] = check_search(engine, sc.search, result)
            ok = ok and entry["matches_like"]
        for _ in range(WARMUP_CALLS - 1):
            call(sc)
        out[sc.name] = entry
    samples: dict[str, list[float]] = {sc.name: [] for sc in todo}
    for i in range(repeat):
        for sc in todo:
            t0 = time.perf_counter()
            call(sc)
            samples[sc.name].append((time.perf_counter() - t0) * 1000)
        if (i + 1) % 10 == 0 or i + 1 == repeat:
            print(f"  {prepared.backend}: round {i + 1}/{repeat}", flush=True)
    for name, xs in samples.items():
        out[name].update(_stats(xs))
    return {"scenarios": out, "ok": ok}


def _stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else xs * 99
    return {"n": len(xs), "p50_ms": round(statistics.median(xs), 2), "p99_ms": round(q[98], 2),
            "max_ms": round(xs[-1], 2)}


# --- the suite ---------------------------------------------------------------------------------

def add_arguments(group) -> None:
    group.add_argument("--rows", type=int, default=None, metavar="N",
                       help=f"submissions seeded into each backend (default {DEFAULT_ROWS:,})")
    group.add_argument("--queue-repeat", type=int, default=None, metavar="N",
                       help=f"timed calls per scenario (default {DEFAULT_REPEAT})")
    group.add_argument("--queue-pg", default=None, metavar="URL",
                       help=f"PostgreSQL server to create the throwaway database on (default {PG_SERVER})")
    group.add_argument("--queue-backends", default="sqlite,postgresql", metavar="LIST",
                       help="backends to seed and time, comma-separated (default sqlite,postgresql)")
    group.add_argument("--queue-reuse", type=Path, default=None, metavar="DIR",
                       help="keep the seeded databases (a SQLite file in DIR, a PostgreSQL database named "
                            "feedback_bench_queue_<rows>) and reuse them on the next run with the same "
                            "--rows, migrated to head first; seeding a million rows takes many minutes")


def _reused(backend: str, url: str, rows: int, info_path: Path) -> Prepared | None:
    """A database seeded by an earlier run with ``--queue-reuse``, migrated to head; None if there is none."""
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text())
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(select(func.count()).select_from(Submission)).scalar()
    except Exception:
        engine.dispose()
        return None
    if found != rows:
        engine.dispose()
        return None
    started = time.perf_counter()
    upgrade(engine)  # whatever migrations came since, on a million rows (their time is reported)
    migrated = time.perf_counter() - started
    with Session(engine) as s:
        ids = dict(s.execute(select(StaffUser.username, StaffUser.id)).all())
        replies = s.scalar(select(func.count()).select_from(Reply))
    print(f"  {backend}: reusing {rows:,} submissions seeded earlier ({url}); migrated to head in "
          f"{migrated:.1f} s", flush=True)
    return Prepared(backend, url, engine, ids["bench-reviewer"], ids["bench-handler"], info["seed_s"], rows,
                    replies)


def _remember(prepared: Prepared, info_path: Path) -> None:
    info_path.write_text(json.dumps({"seed_s": prepared.seed_s, "rows": prepared.rows}))


def run(args) -> dict:
    rows = getattr(args, "rows", None) or DEFAULT_ROWS
    repeat = getattr(args, "queue_repeat", None) or DEFAULT_REPEAT
    keep = bool(getattr(args, "keep", False))
    server = getattr(args, "queue_pg", None) or PG_SERVER
    backends = [b.strip() for b in (getattr(args, "queue_backends", None) or "sqlite,postgresql").split(",")
                if b.strip()]
    reuse: Path | None = getattr(args, "queue_reuse", None)
    if rows < DEEP + 1000 or repeat < 2:
        raise ValueError(f"--rows must be at least {DEEP + 1000:,} and --queue-repeat at least 2")
    if not backends or set(backends) - {"sqlite", "postgresql"}:
        raise ValueError("--queue-backends takes sqlite, postgresql or both")
    now = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="feedback-bench-queue-"))
    pg_name = f"feedback_bench_queue_{rows}" if reuse else f"feedback_bench_{os.getpid()}"
    if reuse:
        reuse.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "when": now.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"rows": rows, "repeat": repeat, "warmup_calls": WARMUP_CALLS, "cpus": os.cpu_count(),
                   "sqlite": sqlite3.sqlite_version, "goal_ms": GOAL_MS},
        "backends": {},
    }
    print(f"queue: {rows:,} submissions per backend, {repeat} timed calls per scenario; "
          f"work directory {workdir}" + (f"; seeded databases kept in {reuse} and {pg_name}" if reuse else ""))
    ok = True
    # a plain kill still drops the database and the work directory (the finally below)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        prepared = []
        if "sqlite" in backends:
            path = (reuse / f"queue-{rows}.db") if reuse else workdir / "queue.db"
            info = path.with_suffix(".json")
            p = _reused("sqlite", f"sqlite:///{path}", rows, info) if reuse else None
            if p is None:
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), info):
                    leftover.unlink(missing_ok=True)
                p = seed_sqlite(path, rows, now)
                if reuse:
                    _remember(p, info)
            prepared.append(p)
        if "postgresql" in backends:
            info = (reuse / f"{pg_name}.json") if reuse else None
            pg_url = make_url(server).set(database=pg_name).render_as_string(hide_password=False)
            p = _reused("postgresql", pg_url, rows, info) if reuse else None
            if p is None:
                pg_url = create_pg_database(server, pg_name)
                p = seed_postgresql(pg_url, rows, now)
                if reuse:
                    _remember(p, info)
            prepared.append(p)
        for p in prepared:
            with p.engine.connect() as conn:
                if p.backend == "sqlite":
                    server_version = conn.exec_driver_sql("select sqlite_version()").scalar()
                    settings_ = {k: conn.exec_driver_sql(f"pragma {k}").scalar()
                                 for k in ("journal_mode", "synchronous", "cache_size", "mmap_size")}
                else:
                    server_version = conn.exec_driver_sql("show server_version").scalar()
                    settings_ = {k: conn.exec_driver_sql(f"show {k}").scalar()
                                 for k in ("shared_buffers", "work_mem", "jit", "plan_cache_mode",
                                           "max_parallel_workers_per_gather", "lc_ctype")}
            load_before = os.getloadavg()[0]
            result = measure(p, repeat, workdir)
            result["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
            ok = ok and result["ok"]
            report["backends"][p.backend] = {
                "version": server_version, "settings": settings_, "seed_s": round(p.seed_s, 1),
                "submissions": p.rows,
                "replies": p.replies, **result,
            }
            p.engine.dispose()
            if p is not prepared[-1]:
                _print(report)  # already, in case the run does not get to its end
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not reuse and "postgresql" in backends:
            try:
                drop_pg_database(server, pg_name)
            except Exception as exc:
                print(f"  could not drop database {pg_name}: {exc}")
        if keep:
            print(f"  work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["over_goal"] = sorted(
        f"{backend}: {name}" for backend, b in report["backends"].items()
        for name, s in b["scenarios"].items() if s["p99_ms"] >= GOAL_MS
    )
    report["ok"] = ok
    _print(report)
    return report


def _terminated(signum, _frame):
    raise SystemExit(128 + signum)


def _pad(text_: str, width: int) -> str:
    """``text_`` left-aligned in ``width`` terminal columns (a Chinese character takes two)."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text_)
    return text_ + " " * max(width - shown, 0)


def _print(report: dict) -> None:
    backends = list(report["backends"])
    print()
    head = f"  {'scenario':<40}" + "".join(f"{b + ' p50':>16}{'p99':>9}  " for b in backends)
    print(head)
    print("  " + "-" * (len(head) - 2))
    names = list(next(iter(report["backends"].values()))["scenarios"]) if backends else []
    for name in names:
        line = "  " + _pad(name, 40)
        for b in backends:
            s = report["backends"][b]["scenarios"][name]
            mark = " *" if s["p99_ms"] >= GOAL_MS else "  "
            line += f"{s['p50_ms']:>16.1f}{s['p99_ms']:>9.1f}{mark}"
        print(line)
    for b in backends:
        data = report["backends"][b]
        print(f"  {b} {data['version']}: seeding {data['seed_s']:.0f} s for {data['submissions']:,} "
              f"submissions and {data['replies']:,} replies; searches equal to LIKE: {data['ok']}; load average "
              f"{data['load_average'][0]} before the timings, {data['load_average'][1]} after "
              f"({report['config']['cpus']} CPUs)")
    print(f"  * p99 at or over the {GOAL_MS:.0f} ms goal")
