"""The ``mail`` suite: inbound mail throughput and peak memory of ``feedback-app mail import``.

Generates a Maildir of ``--mail-messages`` messages (default 10,000; a deterministic mix of UTF-8 and
GBK plain text, HTML-only mail, mail with a PDF and a Word file attached, auto-replies and bounces),
then, per backend (SQLite, and PostgreSQL when its server answers), migrates a fresh database, imports
the bulletin and runs ``feedback-app mail import`` on the Maildir as a child process: the wall time
gives messages per second, the child's ``ru_maxrss`` its peak memory. A second import of the same
Maildir (every message already known) is timed too. The run is not ok when the database does not
hold exactly one row per message, or a message is left unfinished.
"""
from __future__ import annotations

import base64
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from feedback_app.core.database import make_engine

DEFAULT_MESSAGES = 10_000
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/"
CLI = [sys.executable, "-c", "from feedback_app.app import main; main()"]
PDF = b"%PDF-1.4\n" + b"0" * 20_000 + b"\n%%EOF\n"
PHRASES = ["建议加强涉企会议管理", "窗口办事排队时间过长", "第{n}项整改措施落实不到位", "希望尽快答复",
           "占道经营问题仍然存在", "夜间施工噪音扰民", "事项{n}的整改进度请公开", "感谢纪委监委的工作"]


def add_arguments(group) -> None:
    group.add_argument("--mail-messages", type=int, default=None, metavar="N",
                       help=f"messages in the generated Maildir (default {DEFAULT_MESSAGES:,})")


def _text(rng: random.Random, sentences: int) -> str:
    return "。".join(rng.choice(PHRASES).format(n=rng.randint(1, 14)) for _ in range(sentences)) + "。"


def message(n: int, rng: random.Random) -> bytes:
    kind = rng.choices(["utf8", "gbk", "html", "files", "auto", "bounce"], [60, 15, 10, 9, 4, 2])[0]
    head = (f"Received: from mx.example.com by mail.example.gov.cn; Tue, 1 Apr 2025 09:{n % 60:02d}:00 +0800\n"
            f"From: citizen{n}@example.com\nTo: jubao@example.gov.cn\nMessage-ID: <bench-{n}@example.com>\n"
            f"Date: Tue, 1 Apr 2025 09:00:00 +0800\nMIME-Version: 1.0\n")
    body = _text(rng, rng.randint(3, 40))
    if kind == "gbk":
        encoded = base64.encodebytes(body.encode("gbk")).decode()
        return (head + "Subject: =?GBK?B?" + base64.b64encode("意见".encode("gbk")).decode() + "?=\n"
                "Content-Type: text/plain; charset=GBK\nContent-Transfer-Encoding: base64\n\n" + encoded).encode()
    if kind == "html":
        html = "".join(f"<div>{s}</div>" for s in body.split("。")) + "<style>p{}</style>"
        return (head + "Subject: html\nContent-Type: text/html; charset=utf-8\n\n" + html).encode()
    if kind == "files":
        pdf = base64.encodebytes(PDF).decode()
        doc = base64.encodebytes(rng.randbytes(3000)).decode()
        return (head + "Subject: files\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                f"Content-Type: text/plain; charset=utf-8\n\n{body}\n--b\nContent-Type: application/pdf\n"
                "Content-Disposition: attachment; filename*=UTF-8''%E6%9D%90%E6%96%99.pdf\n"
                f"Content-Transfer-Encoding: base64\n\n{pdf}--b\nContent-Type: application/msword\n"
                "Content-Disposition: attachment; filename=a.doc\nContent-Transfer-Encoding: base64\n\n"
                f"{doc}--b--\n").encode()
    subject = f"关于第{n % 14 + 1}项"
    if kind == "auto":
        head, subject = head + "Auto-Submitted: auto-replied\n", "自动回复：" + subject
    elif kind == "bounce":
        head = head.replace(f"citizen{n}@", "MAILER-DAEMON@")
    return (head + f"Subject: =?UTF-8?B?{base64.b64encode(subject.encode()).decode()}?=\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body + "\n").encode()


def generate(maildir: Path, count: int) -> int:
    rng = random.Random(20250401)
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    size = 0
    for n in range(count):
        raw = message(n, rng)
        (maildir / "new" / f"1743469200.M{n}P1.bench").write_bytes(raw)
        size += len(raw)
    return size


def _child(args: list[str], env: dict) -> tuple[float, int, int, str]:
    """Wall seconds, exit status, peak resident memory (KiB), output of one CLI run."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        return elapsed, proc.returncode, usage.ru_maxrss, out.read().decode(errors="replace")[-2000:]


def _pg_database(server: str, name: str, drop: bool = False) -> str | None:
    url = make_url(server)
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if not drop:
                conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                                  "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    except Exception as exc:
        if not drop:
            print(f"mail: PostgreSQL not available ({type(exc).__name__}); SQLite only")
        return None
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def measure(backend: str, url: str, maildir: Path, count: int, workdir: Path) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    env = {**base, "FEEDBACK_ENV": "test", "FEEDBACK_DATABASE_URL": url, "FEEDBACK_LOG_LEVEL": "WARNING",
           "FEEDBACK_SECRET_KEY": secrets.token_hex(16), "FEEDBACK_INSTANCE_PATH": str(workdir / backend)}
    for step in (["db", "upgrade"], ["bulletin", "import"]):
        seconds, code, _, output = _child(step, env)
        if code:
            raise RuntimeError(f"{' '.join(step)} failed: {output}")
    seconds, code, rss_kib, output = _child(["mail", "import", str(maildir)], env)
    again, code2, rss2, output2 = _child(["mail", "import", str(maildir)], env)
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT status, count(*) FROM inbound_message GROUP BY status")).all())
        submissions = conn.execute(text("SELECT count(*) FROM submission")).scalar()
    engine.dispose()
    ok = (code == code2 == 0 and sum(rows.values()) == count and "stored" not in rows
          and submissions == rows.get("ingested", 0))
    result = {
        "ok": ok, "seconds": round(seconds, 2), "messages_per_second": round(count / seconds, 1),
        "peak_rss_mib": round(rss_kib / 1024, 1), "ingested": rows.get("ingested", 0),
        "quarantined": rows.get("quarantined", 0), "reimport_seconds": round(again, 2),
        "reimport_messages_per_second": round(count / again, 1), "reimport_peak_rss_mib": round(rss2 / 1024, 1),
        "output": output.strip().splitlines()[-1:] + output2.strip().splitlines()[-1:],
    }
    print(f"  {backend}: {result['messages_per_second']} messages/s ({result['seconds']} s), "
          f"peak RSS {result['peak_rss_mib']} MiB; re-import {result['reimport_messages_per_second']} messages/s; "
          f"{result['ingested']} registered, {result['quarantined']} quarantined{'' if ok else ' — NOT OK'}")
    return result


def run(args) -> dict:
    count = int(getattr(args, "mail_messages", None) or DEFAULT_MESSAGES)
    keep = bool(getattr(args, "keep", False))
    server = getattr(args, "pg_server", None) or PG_SERVER
    workdir = Path(tempfile.mkdtemp(prefix="feedback-bench-mail-"))
    pg_name = f"feedback_bench_mail_{os.getpid()}"
    try:
        started = time.perf_counter()
        size = generate(workdir / "Maildir", count)
        print(f"mail: {count:,} messages ({size / 1024 / 1024:.1f} MiB) generated in "
              f"{time.perf_counter() - started:.1f} s; work directory {workdir}")
        backends = {"sqlite": f"sqlite:///{workdir / 'mail.db'}"}
        pg_url = _pg_database(server, pg_name)
        if pg_url:
            backends["postgresql"] = pg_url
        results = {name: measure(name, url, workdir / "Maildir", count, workdir) for name, url in backends.items()}
    finally:
        _pg_database(server, pg_name, drop=True)
        if keep:
            print(f"  work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"messages": count, "maildir_mib": round(size / 1024 / 1024, 1), "cpus": os.cpu_count(),
            "backends": results, "ok": all(r["ok"] for r in results.values())}
