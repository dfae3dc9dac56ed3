"""The ``ledger`` suite: exporting the ledger (台账) of a million submissions as CSV and XLSX, on SQLite and PostgreSQL.

Seeds ``--rows`` submissions (default 1,000,000; ``FEEDBACK_BENCH_ROWS`` too) with the ``queue``
suite's generator and loaders, then gives them their statutory clocks (every submission ``inform``;
real-name accusations ``acceptance_notice`` and, once concluded, ``feedback``; accepted requests
``conclude``) and contact details. Each export runs the real command, ``feedback-app ledger export``,
in a child process writing to a file; the suite times it, samples the child's resident memory while
it runs (and has the child report its peak, VmHWM, as it exits), and checks the file: one row per submission,
a readable ZIP for XLSX. A small export (the last day's submissions) gives the baseline that the
big ones are compared with: constant memory means their peak stays near it.
"""
from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench import queue as queue_bench
from feedback_app.core.config import REPO_ROOT
from feedback_app.outcomes import ledger, spreadsheets

DEFAULT_ROWS = 1_000_000
PG_SERVER = queue_bench.PG_SERVER
SAMPLE_SECONDS = 0.2

# name → (format, extra command-line arguments)
SCENARIOS = {
    "csv": ("csv", []),
    "csv, personal details": ("csv", ["--personal"]),
    "xlsx": ("xlsx", []),
    "xlsx, personal details": ("xlsx", ["--personal"]),
    "csv, state=closed": ("csv", ["--state", "closed"]),
}
BASELINE = "csv, last day only"


# --- the data ----------------------------------------------------------------------------------

def _clock_statements(dialect: str) -> list[str]:
    """INSERT ... SELECT statements giving every submission the clocks its kind and state call for."""
    if dialect == "sqlite":
        def day(col):
            return f"date({col}, '+8 hours')"

        def plus(expr, days):
            return f"date({expr}, '+{days} days')"

        def later(col, days):
            return f"datetime({col}, '+{days} days')"
        real_name = "s.kind = 'accusation' AND s.anonymous = 0"
    else:
        def day(col):
            return f"({col} AT TIME ZONE 'Asia/Shanghai')::date"

        def plus(expr, days):
            return f"({expr} + {days})"

        def later(col, days):
            return f"({col} + interval '{days} days')"
        real_name = "s.kind = 'accusation' AND NOT s.anonymous"
    head = ("INSERT INTO deadline (submission_id, kind, starts_on, due_on, rule, met_at, extension_days, created_at) "
            "SELECT s.id, ")
    return [
        head + f"'inform', {day('s.received_at')}, {plus(day('s.received_at'), 15)}, 'bench', "
        f"CASE WHEN s.accepted_at IS NOT NULL THEN s.accepted_at "
        f"WHEN s.state IN ('rejected', 'merged') THEN {later('s.received_at', 2)} END, 0, s.received_at "
        "FROM submission AS s",
        head + f"'acceptance_notice', {day('s.received_at')}, {plus(day('s.received_at'), 21)}, 'bench', "
        f"s.accepted_at, 0, s.received_at FROM submission AS s WHERE {real_name}",
        head + f"'conclude', {day('s.accepted_at')}, {plus(day('s.accepted_at'), 60)}, 'bench', "
        "s.concluded_at, 0, s.accepted_at FROM submission AS s "
        "WHERE s.kind = 'request' AND s.accepted_at IS NOT NULL",
        head + f"'feedback', {day('s.concluded_at')}, {plus(day('s.concluded_at'), 21)}, 'bench', "
        f"CASE WHEN s.state = 'closed' THEN {later('s.concluded_at', 10)} END, 0, s.concluded_at "
        f"FROM submission AS s WHERE {real_name} AND s.concluded_at IS NOT NULL",
    ]


def _contact_statement(dialect: str) -> str:
    """Phone, e-mail and address for the submissions that gave a name."""
    if dialect == "sqlite":
        digits = "printf('%08d', id % 100000000)"
        number = "(id % 300)"
    else:
        digits = "lpad((id % 100000000)::text, 8, '0')"
        number = "(id % 300)::text"
    return (f"UPDATE submission SET phone = '+86138' || {digits}, email = 'u' || id || '@example.com', "
            f"address = '广州市黄埔区大沙街' || {number} || '号' WHERE name IS NOT NULL")


def add_clocks_and_contacts(prepared: queue_bench.Prepared) -> tuple[float, int]:
    """(seconds, deadlines) for the clocks and contact details of the seeded submissions."""
    started = time.perf_counter()
    if prepared.backend == "sqlite":
        con = sqlite3.connect(prepared.url.removeprefix("sqlite:///"), isolation_level=None)
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
        for statement in _clock_statements("sqlite"):
            con.execute(statement)
        con.execute(_contact_statement("sqlite"))
        con.execute("COMMIT")
        deadlines = con.execute("SELECT count(*) FROM deadline").fetchone()[0]
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    else:
        with prepared.engine.begin() as conn:
            for statement in _clock_statements("postgresql"):
                conn.execute(text(statement))
            conn.execute(text(_contact_statement("postgresql")))
        with prepared.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE deadline"))
            conn.execute(text("VACUUM ANALYZE submission"))
            deadlines = conn.execute(text("SELECT count(*) FROM deadline")).scalar()
    return time.perf_counter() - started, deadlines


# --- one export --------------------------------------------------------------------------------

# The command, run by a child that writes its peak resident memory (VmHWM) to a file on exit. The
# kernel's own figure for a child (wait4's ru_maxrss) is no use here: it counts the memory of the
# parent that forked it.
_CHILD = (
    "import atexit, os\n"
    "def _peak():\n"
    "    with open('/proc/self/status') as f:\n"
    "        kib = next(line.split()[1] for line in f if line.startswith('VmHWM:'))\n"
    "    with open(os.environ['LEDGER_BENCH_PEAK_FILE'], 'w') as f:\n"
    "        f.write(kib)\n"
    "atexit.register(_peak)\n"
    "from feedback_app.app import main\n"
    "main()\n"
)


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_export(url: str, workdir: Path, name: str, fmt: str, extra: list[str]) -> dict:
    """``feedback-app ledger export`` in a child process: time, memory, and the file it wrote."""
    out_path = workdir / f"ledger-{abs(hash(name))}.{fmt}"
    env = {**os.environ, "FEEDBACK_DATABASE_URL": url, "FEEDBACK_ENV": "production",
           "FEEDBACK_SECRET_KEY": "bench", "FEEDBACK_INSTANCE_PATH": str(workdir / "instance"),
           "FEEDBACK_LOG_LEVEL": "WARNING"}
    hwm_path = workdir / "peak-rss"
    env["LEDGER_BENCH_PEAK_FILE"] = str(hwm_path)
    command = [sys.executable, "-c", _CHILD, "ledger", "export", "--format", fmt, *extra]
    samples: list[tuple[float, int, int]] = []  # (seconds, bytes written, RSS KiB)
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT)
        done = threading.Event()

        def sample():
            while not done.wait(SAMPLE_SECONDS):
                rss = _rss_kib(child.pid)
                if rss is not None:
                    samples.append((time.perf_counter() - started, out_path.stat().st_size, rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode("utf-8", "replace").strip()
        child.stderr.close()
    size = out_path.stat().st_size
    peak_kib = int(hwm_path.read_text()) if hwm_path.exists() else None
    hwm_path.unlink(missing_ok=True)
    check = _check_file(out_path, fmt)
    out_path.unlink()
    first = next((t for t, written, _ in samples if written > 4096), None)
    by_tenth = _rss_by_progress(samples, size)
    return {
        "format": fmt, "arguments": extra, "exit_code": child.returncode, "message": stderr[-300:],
        "rows": check["rows"], "sheets": check.get("sheets"), "file_ok": check["ok"],
        "seconds": round(elapsed, 2), "rows_per_s": round(check["rows"] / elapsed) if elapsed else None,
        "bytes": size, "mib": round(size / 2**20, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1) if peak_kib else None,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "rss_mib_by_output_tenth": by_tenth,
        "first_rows_after_s": round(first, 2) if first is not None else None,
    }


def _rss_by_progress(samples: list[tuple[float, int, int]], size: int) -> list[float]:
    """The child's RSS when 10 %, 20 %, … of the file had been written."""
    out = []
    for tenth in range(1, 11):
        mark = size * tenth / 10
        rss = next((r for _, written, r in samples if written >= mark), None)
        if rss is None and samples:
            rss = samples[-1][2]
        if rss is not None:
            out.append(round(rss / 1024, 1))
    return out


def _check_file(path: Path, fmt: str) -> dict:
    if fmt == "csv":
        with open(path, "rb") as raw:
            ok = raw.read(3) == spreadsheets.BOM
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = sum(1 for _ in reader)
        return {"ok": ok and bool(header) and header[0] == "受理编号", "rows": rows}
    with zipfile.ZipFile(path) as package:
        broken = package.testzip()
        sheets = sorted(n for n in package.namelist() if n.startswith("xl/worksheets/sheet"))
        rows = 0
        for name in sheets:
            rows += _count_rows(package, name) - 1  # each sheet has a header row
    return {"ok": broken is None and bool(sheets), "rows": rows, "sheets": len(sheets)}


def _count_rows(package: zipfile.ZipFile, name: str) -> int:
    count, tail = 0, b""
    with package.open(name) as part:
        while block := part.read(1 << 20):
            data = tail + block
            count += data.count(b"<row ")
            tail = data[-4:]
    return count


# --- the suite ---------------------------------------------------------------------------------

def measure(prepared: queue_bench.Prepared, workdir: Path, now: datetime) -> dict:
    results = {}
    since = (now - timedelta(days=1)).astimezone(queue_bench.TZ_SHANGHAI).date().isoformat()
    todo = [(BASELINE, "csv", ["--from", since])] + [(n, f, a) for n, (f, a) in SCENARIOS.items()]
    with prepared.engine.connect() as conn:
        expected = {
            "all": conn.execute(text("SELECT count(*) FROM submission")).scalar(),
            "closed": conn.execute(text("SELECT count(*) FROM submission WHERE state = 'closed'")).scalar(),
        }
    for name, fmt, extra in todo:
        print(f"  {prepared.backend}: {name} …", end="", flush=True)
        result = run_export(prepared.url, workdir, name, fmt, extra)
        want = expected["closed"] if "--state" in extra else None if name == BASELINE else expected["all"]
        result["expected_rows"] = want
        result["ok"] = result["exit_code"] == 0 and result["file_ok"] and (want is None or result["rows"] == want)
        print(f" {result['rows']:,} rows in {result['seconds']:.1f} s ({result['rows_per_s'] or 0:,}/s), "
              f"{result['mib']:,} MiB, CPU {result['cpu_seconds']:.1f} s, peak RSS {result['peak_rss_mib']} MiB"
              f"{'' if result['ok'] else '  NOT OK'}", flush=True)
        results[name] = result
    return results


def run(args) -> dict:
    rows = int(getattr(args, "rows", None) or os.environ.get("FEEDBACK_BENCH_ROWS") or DEFAULT_ROWS)
    keep = bool(getattr(args, "keep", False))
    server = getattr(args, "pg_server", None) or PG_SERVER
    now = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="feedback-bench-ledger-"))
    pg_name = f"feedback_bench_ledger_{os.getpid()}"
    report: dict = {
        "when": now.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"rows": rows, "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version, "chunk": ledger.CHUNK,
                   "xlsx_compresslevel": spreadsheets.XLSX_COMPRESSLEVEL,
                   "how": "feedback-app ledger export in a child process, stdout to a file; "
                          "peak RSS: the child's VmHWM"},
        "backends": {},
    }
    print(f"ledger: {rows:,} submissions per backend; work directory {workdir}")
    ok = True
    try:
        seeds = [lambda: queue_bench.seed_sqlite(workdir / "ledger.db", rows, now),
                 lambda: queue_bench.seed_postgresql(queue_bench.create_pg_database(server, pg_name), rows, now)]
        for seed in seeds:
            prepared = seed()
            clocks_s, deadlines = add_clocks_and_contacts(prepared)
            print(f"  {prepared.backend}: {deadlines:,} deadlines and contact details added in {clocks_s:.0f} s",
                  flush=True)
            with prepared.engine.connect() as conn:
                version = conn.exec_driver_sql(
                    "select sqlite_version()" if prepared.backend == "sqlite" else "show server_version").scalar()
            exports = measure(prepared, workdir, now)
            ok = ok and all(e["ok"] for e in exports.values())
            report["backends"][prepared.backend] = {
                "version": version, "seed_s": round(prepared.seed_s + clocks_s, 1), "submissions": prepared.rows,
                "replies": prepared.replies, "deadlines": deadlines, "exports": exports,
            }
            prepared.engine.dispose()
            if prepared.backend == "sqlite" and not keep:
                for path in workdir.glob("ledger.db*"):
                    path.unlink()
    finally:
        try:
            queue_bench.drop_pg_database(server, pg_name)
        except Exception as exc:
            print(f"  could not drop database {pg_name}: {exc}")
        if keep:
            print(f"  work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["ok"] = ok
    _print(report)
    return report


def _print(report: dict) -> None:
    print()
    print(f"  {'export':<26}{'backend':<12}{'rows':>11}{'seconds':>9}{'rows/s':>9}{'CPU s':>8}{'MiB':>8}"
          f"{'peak RSS MiB':>14}{'first rows s':>14}")
    for backend, data in report["backends"].items():
        for name, e in data["exports"].items():
            first = f"{e['first_rows_after_s']:.1f}" if e["first_rows_after_s"] is not None else "-"
            peak = f"{e['peak_rss_mib']:.1f}" if e["peak_rss_mib"] is not None else "-"
            print(f"  {name:<26}{backend:<12}{e['rows']:>11,}{e['seconds']:>9.1f}{e['rows_per_s'] or 0:>9,}"
                  f"{e['cpu_seconds']:>8.1f}{e['mib']:>8,.0f}{peak:>14}{first:>14}{'' if e['ok'] else '  NOT OK'}")
    for backend, data in report["backends"].items():
        print(f"  {backend} {data['version']}: {data['submissions']:,} submissions, {data['deadlines']:,} deadlines, "
              f"{data['replies']:,} replies, seeded in {data['seed_s']:.0f} s")
