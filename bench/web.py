"""The ``web`` suite: the bulletin page and a full comment, against a hello-world baseline.

The app and a hello-world Flask app (``hello.py``) are served by gunicorn in one configuration
(sync workers, two of them) on 127.0.0.1, on the SQLite default with CSRF on as in production; only
the rate limits and the minimum fill time are switched off, by environment, so that one client may
load it. The scenarios take turns in short rounds, so that whatever else the machine is doing weighs
on all of them alike; the figures of each scenario are its rounds together.
"""
from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.load import LoadResult, run_load
from bench.server import HOST, Gunicorn, gunicorn_version
from bench.wire import Client, CookieJar, Request, Unexpected, multipart

SLUG = "huangpu-2025-03-28"
BULLETIN = f"/bulletins/{SLUG}"
FORM = f"{BULLETIN}/feedback"
ITEM = 5
GOALS = {"bulletin": 0.60, "comment": 0.12}
WORKERS = 2
WORKER_CLASS = "sync"
QUIET_OTHER_CPU_PCT = 25.0  # above this, other processes were busy enough to move the figures

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
FORM_TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
BODY = "压测意见第{n}号（{run}）：建议进一步规范涉企会议的时间安排，提前通知企业，减少对企业正常经营的影响。"


def server_env(instance: Path) -> dict[str, str]:
    """The process environment without any FEEDBACK_* of the caller's, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env.update(
        FEEDBACK_ENV="production",
        FEEDBACK_SECRET_KEY=secrets.token_hex(32),
        FEEDBACK_INSTANCE_PATH=str(instance),
        FEEDBACK_RATELIMIT_ENABLED="0",
        FEEDBACK_MIN_FILL_SECONDS="0",
        FEEDBACK_CSRF_ENABLED="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _feedback_app_command() -> list[str]:
    script = Path(sys.executable).with_name("feedback-app")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from feedback_app.app import main; sys.exit(main())"]


def prepare_database(env: dict[str, str]) -> None:
    for args in (["db", "upgrade"], ["bulletin", "import"]):
        done = subprocess.run([*_feedback_app_command(), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"feedback-app {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


# --- the operations ----------------------------------------------------------------------------

def hello_op(_n: int):
    r = yield Request("GET", "/")
    if r.status != 200 or r.body != b"hello":
        raise Unexpected(f"GET / {r.status}")


def bulletin_op(_n: int):
    r = yield Request("GET", BULLETIN)
    if r.status != 200 or b"</html>" not in r.body[-200:]:
        raise Unexpected(f"GET bulletin {r.status}")


class Comments:
    """Citizens' browsers: each comment is a new visit that opens the form, fills it in and submits it."""

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(4)
        self.acknowledged: set[int] = set()  # sequence numbers of the comments answered with a receipt

    def body(self, n: int) -> str:
        return BODY.format(n=n, run=self.run_id)

    def op(self, n: int):
        jar = CookieJar()
        t0 = time.perf_counter()
        page = yield Request("GET", f"{FORM}?item={ITEM}")
        t1 = time.perf_counter()
        if page.status != 200:
            raise Unexpected(f"GET form {page.status}")
        jar.update(page)
        html = page.text()
        csrf, token = CSRF_RE.search(html), FORM_TOKEN_RE.search(html)
        if csrf is None or token is None:
            raise Unexpected("form without csrf_token or form_token")
        content_type, body = multipart(
            [
                ("csrf_token", csrf.group(1)),
                ("form_token", token.group(1)),
                ("website", ""),
                ("item", str(ITEM)),
                ("kind", "suggestion"),
                ("body", self.body(n)),
                ("reply_by", "online"),
                ("name", ""),
                ("phone", ""),
                ("email", ""),
                ("address", ""),
                ("privacy_consent", "y"),
            ],
            files=[("attachments", "", b"")],  # the empty file input a browser always sends
        )
        t2 = time.perf_counter()
        r = yield Request("POST", FORM, (("Content-Type", content_type), *jar.headers()), body)
        t3 = time.perf_counter()
        if r.status != 303 or not r.headers.get("location", "").endswith("/receipt"):
            raise Unexpected(f"POST comment {r.status}")
        self.acknowledged.add(n)
        return {"get_form": t1 - t0, "post": t3 - t2}

    def stored(self, db: Path) -> tuple[int, set[int]]:
        """All rows of ``submission``, and the sequence numbers of this run's comments among them."""
        before, after = BODY.split("{n}")
        pattern = re.compile(re.escape(before) + r"(\d+)" + re.escape(after.split("{run}")[0] + self.run_id))
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            total = conn.execute("SELECT count(*) FROM submission").fetchone()[0]
            numbers = {int(m.group(1)) for (body,) in conn.execute("SELECT body FROM submission")
                       if (m := pattern.match(body))}
        finally:
            conn.close()
        return total, numbers


# --- the run -----------------------------------------------------------------------------------

def _options(args) -> dict:
    def get(name, default, kind):
        value = getattr(args, name, None)
        return default if value is None else kind(value)

    opts = {
        "connections": get("connections", 8, int),
        "duration": get("duration", 10.0, float),
        "warmup": get("warmup", 2.0, float),
        "rounds": get("rounds", 5, int),
        "max_ops": get("max_ops", 1_000_000, int),
        "keep": bool(getattr(args, "keep", False)),
    }
    opts["rounds"] = max(1, min(opts["rounds"], int(opts["duration"] / 0.5) or 1))
    return opts


def run(args) -> dict:
    opts = _options(args)
    workdir = Path(tempfile.mkdtemp(prefix="feedback-bench-web-"))
    instance = workdir / "instance"
    instance.mkdir()
    env = server_env(instance)
    ok = False
    try:
        print(f"web: gunicorn {gunicorn_version()}, {WORKERS} {WORKER_CLASS} workers, SQLite in {instance}; "
              f"client: {opts['connections']} connections, {opts['warmup']:g} s warm-up, then "
              f"{opts['duration']:g} s per scenario in {opts['rounds']} rounds", flush=True)
        prepare_database(env)
        comments = Comments()
        with ExitStack() as stack:
            hello = stack.enter_context(Gunicorn("bench.hello:app", env=env, logdir=workdir,
                                                 workers=WORKERS, worker_class=WORKER_CLASS, name="hello"))
            app = stack.enter_context(Gunicorn("feedback_app.app:create_app()", env=env, logdir=workdir,
                                               workers=WORKERS, worker_class=WORKER_CLASS, name="app"))
            hello.start("/")
            app.start("/healthz")
            for server, op in ((hello, hello_op), (app, bulletin_op), (app, comments.op)):
                try:  # each operation once, before any load: a wrong answer stops the suite here
                    Client(HOST, server.port).drive(op, 0)
                except (Unexpected, OSError) as exc:
                    raise RuntimeError(f"{server.name}: {exc}\n{server.log_tail()}") from exc
            scenarios = {
                "hello": (hello, hello_op, None),
                "bulletin": (app, bulletin_op, None),
                "comment": (app, comments.op, itertools.count(1)),
            }
            results = _measure(scenarios, opts)
            servers = {"hello": hello, "app": app}
            restarts = {name: max(0, s.worker_boots() - WORKERS) for name, s in servers.items()}
            log_tail = app.log_tail()
        total, stored = comments.stored(instance / "feedback.db")

        report = _report(results, comments.acknowledged, stored, total, opts, hello.options, restarts)
        ok = report["verification"]["all_acknowledged_stored"] and not any(
            r.errors or r.warmup_errors for r in results.values())
        report["ok"] = ok
        if not ok:
            report["app_server_log_tail"] = log_tail
        _print(report)
        return report
    finally:
        if opts["keep"] or not ok:
            print(f"  work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _measure(scenarios: dict, opts: dict) -> dict[str, LoadResult]:
    results: dict[str, LoadResult] = {}
    window = opts["duration"] / opts["rounds"]
    for i in range(opts["rounds"]):
        line, others = [], []
        for name, (server, op, sequence) in scenarios.items():
            done = results[name].ops if name in results else 0
            r = run_load(
                name, op, host=HOST, port=server.port, connections=opts["connections"], duration=window,
                warmup=opts["warmup"] if i == 0 else min(0.25, opts["warmup"]),
                max_ops=max(1, opts["max_ops"] - done), sequence=sequence, server_cpu=server.cpu_seconds,
            )
            results[name] = results[name].merge(r) if name in results else r
            line.append(f"{name} {r.rate:.0f}/s")
            others.append(r.other_cpu_pct() or 0.0)
        print(f"  round {i + 1}/{opts['rounds']}: {', '.join(line)}; other processes meanwhile: "
              f"up to {max(others):.0f}% CPU", flush=True)
    return results


def _report(results: dict[str, LoadResult], acknowledged: set[int], stored: set[int], total: int,
            opts: dict, options: list[str], restarts: dict[str, int]) -> dict:
    scenarios = {name: r.summary() for name, r in results.items()}
    base = results["hello"].rate
    ratios = {name: round(results[name].rate / base, 3) if base else None for name in GOALS}
    by_round = {}
    for name in GOALS:
        pairs = zip(results[name].rounds, results["hello"].rounds, strict=False)
        values = [a / b for a, b in pairs if b]
        by_round[name] = {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
                          "max": round(max(values), 3)} if values else None
    cpu = {name: r.summary()["server_cpu_ms_per_op"] for name, r in results.items()}
    cpu_ratios = {name: round(cpu["hello"] / cpu[name], 3) if cpu["hello"] and cpu[name] else None
                  for name in GOALS}
    missing = sorted(acknowledged - stored)
    others = [s["other_processes_cpu_pct"] for s in scenarios.values() if s["other_processes_cpu_pct"] is not None]
    return {
        "suite": "web",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "server": "gunicorn " + gunicorn_version(),
            "gunicorn_options": [f"{HOST}:PORT" if o.startswith(f"{HOST}:") else o for o in options],
            "database": "SQLite (default): WAL, synchronous=FULL",
            "csrf_enabled": True,
            "env": {"FEEDBACK_ENV": "production", "FEEDBACK_RATELIMIT_ENABLED": "0", "FEEDBACK_MIN_FILL_SECONDS": "0"},
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "client": "bench.load and bench.wire: one thread, non-blocking sockets, closed loop",
            "connections": opts["connections"],
            "warmup_s": opts["warmup"],
            "duration_s": opts["duration"],
            "rounds": opts["rounds"],
            "operations": {"hello": "GET /", "bulletin": f"GET {BULLETIN}",
                           "comment": f"GET {FORM}?item={ITEM}, then POST {FORM} -> 303 /receipt"},
        },
        "scenarios": scenarios,
        "ratios_to_hello": ratios,
        "ratios_by_round": by_round,
        "server_cpu_ratios_to_hello": cpu_ratios,
        "goals": {name: {"min_ratio": goal, "met": ratios[name] is not None and ratios[name] >= goal}
                  for name, goal in GOALS.items()},
        "verification": {
            "acknowledged_posts": len(acknowledged),
            "stored_of_acknowledged": len(acknowledged & stored),
            "missing": missing[:20],
            "all_acknowledged_stored": not missing,
            "rows_in_submission": total,
        },
        "worker_restarts": restarts,
        "quiet_machine": bool(others) and max(others) <= QUIET_OTHER_CPU_PCT,
        "other_processes_cpu_pct_max": max(others) if others else None,
    }


def _print(report: dict) -> None:
    sc, ratios = report["scenarios"], report["ratios_to_hello"]
    print()
    print(f"  {'scenario':<10}{'ops':>8}{'errors':>8}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs hello':>10}"
          f"{'server CPU':>12}{'CPU ms/op':>11}")
    for name, label in (("hello", "hello"), ("bulletin", "bulletin"), ("comment", "comment*")):
        s = sc[name]
        ratio = "" if name == "hello" else f"{100 * ratios[name]:.1f}%"
        print(f"  {label:<10}{s['ops']:>8}{s['errors']:>8}{s['ops_per_s']:>10.1f}"
              f"{_f(s['p50_ms']):>9}{_f(s['p99_ms']):>9}{ratio:>10}{_f(s['server_cpu_pct'], '%'):>12}"
              f"{_f(s['server_cpu_ms_per_op']):>11}")
    steps = sc["comment"].get("steps", {})
    if steps:
        print("  * one comment = GET form + POST, counted as one operation; step p50/p99: "
              + ", ".join(f"{k} {v['p50_ms']}/{v['p99_ms']} ms" for k, v in steps.items()))
    for name, goal in report["goals"].items():
        spread = report["ratios_by_round"][name]
        rounds = (f" (rounds: {100 * spread['min']:.1f}–{100 * spread['max']:.1f}%)"
                  if spread and len(sc[name]["ops_per_s_by_round"]) > 1 else "")
        print(f"  {name}: {100 * ratios[name]:.1f}% of hello-world{rounds}, goal ≥ {100 * goal['min_ratio']:.0f}%: "
              f"{'met' if goal['met'] else 'NOT met'}")
    cpu = report["server_cpu_ratios_to_hello"]
    if all(cpu.values()):
        print("  server CPU per operation, hello's as a share of each (the throughput ratio if the server's "
              "CPU were the only limit): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in cpu.items()))
    v = report["verification"]
    verdict = "every acknowledged comment is stored" if v["all_acknowledged_stored"] else f"MISSING {v['missing']}"
    print(f"  comments acknowledged with a 303: {v['acknowledged_posts']}; of them in the database: "
          f"{v['stored_of_acknowledged']} ({v['rows_in_submission']} rows in submission): {verdict}")
    if any(report["worker_restarts"].values()):
        print(f"  gunicorn worker restarts: {report['worker_restarts']}")
    if not report["quiet_machine"]:
        print(f"  note: other processes used up to {report['other_processes_cpu_pct_max']}% of a core meanwhile "
              f"(the machine has {report['config']['cpus']}); the figures are disturbed, best compared as ratios")
    for name, s in sc.items():
        if s.get("error_kinds"):
            print(f"  {name} errors: {s['error_kinds']}")


def _f(value, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}" if not unit else f"{value:.0f}{unit}"
