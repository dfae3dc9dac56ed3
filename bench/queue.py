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
import random
import re
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.config import REPO_ROOT, Settings
from feedback_app.core.database import make_engine
from feedback_app.core.models import Reply, Role, StaffUser, Submission, Unit
from feedback_app.migrations import upgrade
from feedback_app.moderation import queue
from feedback_app.search.backlog import index_backlog
from feedback_app.search.match import _like_pattern, pg_prepare

DEFAULT_ROWS = 1_000_000
DEFAULT_REPEAT = 50
WARMUP_CALLS = 3
GOAL_MS = 100.0
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
SLUG = "huangpu-2025-03-28"
SEED_TEXT = REPO_ROOT / "feedback_app" / "bulletin" / "seed" / f"{SLUG}.txt"
UNITS = 12
CHUNK = 20_000
DEEP = 20_000  # rows skipped before the deep page
TZ_SHANGHAI = timezone(timedelta(hours=8))

# (the shares are of the generated submissions)
SEARCH_LONG = "营商环境"  # four characters, in about one in eight
SEARCH_LONG_SOME = "某物流有限公司"  # seven characters, in about one in a hundred
SEARCH_LONG_RARE = "王伟芳"  # three characters, a name: a handful
SEARCH_SHORT = "企业"  # two characters, in most
SEARCH_SHORT_SOME = "退税"  # two characters, in about one in a hundred

SUBMISSION_COLUMNS = (
    "id", "reference", "year", "seq", "bulletin_id", "item_number", "channel", "kind", "body", "name",
    "phone", "email", "address", "reply_by", "anonymous", "publish_consent", "privacy_consent_at", "state",
    "rating", "query_code_hash", "form_token_hash", "client_hash", "body_hash", "received_at", "created_at",
    "version", "unit_id", "handler_id", "merged_into_id", "accepted_at", "concluded_at", "reject_reason",
    "next_due_on",
)
REPLY_COLUMNS = (
    "id", "submission_id", "body", "created_at", "drafted_by_id", "approved_at", "approved_by_id",
    "delivered_at", "delivery_note",
)


# --- the data ----------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力国宁志海燕斌鹏飞云"
STREETS = ["大沙街", "黄埔街", "红山街", "鱼珠街", "文冲街", "穗东街", "南岗街", "长洲街", "夏港街", "萝岗街",
           "联和街", "永和街", "云埔街", "长岭街", "九佛街", "新龙镇"]
FIRMS = ["科技", "物流", "建材", "餐饮", "制造", "贸易", "电子", "医药", "环保", "装饰"]
FIRM_PREFIXES = ["穗丰", "恒达", "宏图", "粤海", "华信", "金港", "鸿运", "南方", "开元", "新航", "科城", "东江"]
OPENERS = [
    "我是{street}的居民，", "本人是{street}一家{firm}企业的负责人，", "我单位是广州{prefix}{firm}有限公司，",
    "群众{name}反映，", "我叫{name}，在{street}经营一家小店，", "我们是{street}的个体工商户，",
]
TOPICS = [
    "办理退税时等了很久，", "税务部门上门检查频繁，", "纳税申报系统经常卡顿，", "希望简化税费缴纳流程，",
    "某物流有限公司拖欠货款，", "某建材有限公司长期占道经营，",
]
CLOSERS = ["希望有关部门尽快核实处理。", "请予以答复。", "恳请督促整改落实到位。", "盼复。", "望重视。"]
REPLY_OPENERS = ["经核查，", "您好！经调查核实，", "关于您反映的问题，经研究，", "收悉。经向相关部门了解，"]
REPLY_CLOSERS = ["特此答复。", "感谢您的监督。", "如有疑问，可来电咨询。"]


def bulletin_phrases() -> list[str]:
    text_ = SEED_TEXT.read_text(encoding="utf-8")
    parts = re.split(r"[\s,，。、；;：:！？“”\"（）()《》\[\]【】·—>]+", text_)
    return [p for p in parts if 2 <= len(p) <= 40 and re.search(r"[\u4e00-\u9fff]", p)]


class Generator:
    """Deterministic rows: the same seed gives the same data to both backends."""

    def __init__(self, rows: int, now: datetime, bulletin_id: int, seed: int = 20250328):
        self.rows, self.now, self.bulletin_id = rows, now, bulletin_id
        self.seed = seed
        self.phrases = bulletin_phrases()

    def _text(self, rng: random.Random, length: int, opener: str, closer: str, extra: float) -> str:
        parts = [opener]
        size = len(opener)
        if rng.random() < extra:
            topic = rng.choice(TOPICS)
            parts.append(topic)
            size += len(topic)
        phrases, choice = self.phrases, rng.choice
        while size < length:
            p = choice(phrases)
            parts.append(p)
            parts.append("，" if rng.random() < 0.75 else "。")
            size += len(p) + 1
        body = "".join(parts)[: max(length - len(closer), 1)]
        return body.rstrip("，。") + "，" + closer

    def _opener(self, rng: random.Random) -> str:
        return rng.choice(OPENERS).format(
            street=rng.choice(STREETS), firm=rng.choice(FIRMS), prefix=rng.choice(FIRM_PREFIXES),
            name=rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else ""),
        )

    def chunks(self) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(submissions, replies) in chunks, oldest first, as Python values (aware datetimes, dates)."""
        rng = random.Random(self.seed)
        span = timedelta(days=730).total_seconds()
        start = self.now - timedelta(days=730)
        offsets = sorted(rng.random() * span for _ in range(self.rows))
        seqs: dict[int, int] = {}
        reply_id = 0
        fake_hash = "0" * 64
        subs: list[tuple] = []
        replies: list[tuple] = []
        kinds, kind_w = ["suggestion", "accusation", "request", "enquiry"], [40, 20, 25, 15]
        channels, channel_w = ["web", "phone", "email", "letter", "visit"], [55, 20, 8, 12, 5]
        unit_w = [3 if u <= 3 else 1 for u in range(1, UNITS + 1)]
        units = list(range(1, UNITS + 1))
        for n, offset in enumerate(offsets, start=1):
            received = start + timedelta(seconds=offset)
            age = (self.now - received).days
            state = _state(rng, age)
            local = received.astimezone(TZ_SHANGHAI)
            seqs[local.year] = seq = seqs.get(local.year, 0) + 1
            accepted = concluded = due = None
            if state not in ("received", "rejected", "merged"):
                accepted = received + timedelta(days=rng.randint(1, 10), seconds=rng.randint(0, 30000))
            if state in ("answered", "closed", "reopened"):
                concluded = accepted + timedelta(days=rng.randint(5, 55))
            if state == "received":
                due = local.date() + timedelta(days=15)
            elif state in ("accepted", "assigned", "reopened"):
                due = accepted.astimezone(TZ_SHANGHAI).date() + timedelta(days=60)
            elif state == "answered" and rng.random() < 0.3:
                due = concluded.astimezone(TZ_SHANGHAI).date() + timedelta(days=21)
            unit = rng.choices(units, unit_w)[0] if accepted is not None else None
            anonymous = rng.random() < 0.2
            kind = rng.choices(kinds, kind_w)[0]
            body = self._text(rng, rng.randint(30, 300), self._opener(rng), rng.choice(CLOSERS), 0.05)
            subs.append((
                n, f"HP{local.year}-{seq:06d}", local.year, seq, self.bulletin_id,
                0 if rng.random() < 0.3 else rng.randint(1, 14), rng.choices(channels, channel_w)[0], kind,
                body, None if anonymous else rng.choice(SURNAMES) + rng.choice(GIVEN), None, None, None,
                "online", anonymous, rng.random() < 0.4, received, state,
                rng.choice(["satisfied", "fairly_satisfied", "dissatisfied"])
                if state == "closed" and rng.random() < 0.5 else None,
                fake_hash, None, None, fake_hash, received, received, 1, unit, None,
                max(1, n - rng.randint(1, 500)) if state == "merged" and n > 1 else None,
                accepted, concluded, "duplicate" if state == "rejected" else None, due,
            ))
            if concluded is not None and rng.random() < (0.23 if state != "reopened" else 0.8):
                reply_id += 1
                reply_at = min(concluded, self.now)
                replies.append((
                    reply_id, n,
                    self._text(rng, rng.randint(30, 200), rng.choice(REPLY_OPENERS), rng.choice(REPLY_CLOSERS),
                               0.05),
                    reply_at, None, reply_at, None, reply_at, None,
                ))
            if len(subs) >= CHUNK:
                yield subs, replies
                subs, replies = [], []
        if subs:
            yield subs, replies


def _state(rng: random.Random, age_days: int) -> str:
    if age_days < 15:
        weights = {"received": 35, "accepted": 25, "assigned": 30, "rejected": 5, "merged": 2, "answered": 3}
    elif age_days < 75:
        weights = {"received": 3, "accepted": 10, "assigned": 37, "answered": 25, "closed": 15, "rejected": 6,
                   "merged": 2, "reopened": 2}
    else:
        weights = {"received": 0.3, "accepted": 0.7, "assigned": 2, "answered": 12, "closed": 74, "rejected": 7,
                   "merged": 2.5, "reopened": 1.5}
    return rng.choices(list(weights), list(weights.values()))[0]


# --- the databases -----------------------------------------------------------------------------

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
