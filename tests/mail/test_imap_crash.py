"""``feedback-app mail fetch`` as a process: killed with SIGKILL part-way, then run again, it loses and
doubles nothing; ``--watch`` keeps fetching until SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import text

from feedback_app.core.database import make_engine
from tests.mail.corpus import CORPUS, INGESTED, OVERSIZE_LIMIT, QUARANTINED

COMMAND = [sys.executable, "-c", "from feedback_app.app import main; main()", "mail", "fetch"]


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def env(database_url, tmp_path, dovecot, bulletin):
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACK_")}
    return {**base, **dovecot.env(), "FEEDBACK_ENV": "test", "FEEDBACK_DATABASE_URL": database_url,
            "FEEDBACK_SECRET_KEY": "test-secret-key", "FEEDBACK_INSTANCE_PATH": str(tmp_path / "instance"),
            "FEEDBACK_MAIL_MAX_BYTES": str(OVERSIZE_LIMIT), "FEEDBACK_LOG_LEVEL": "WARNING"}


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT id, status, flagged_at, message_id, submission_id FROM inbound_message"))]


def wait_for(condition, engine, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(rows(engine)):
            return
        if process.poll() is not None:
            pytest.fail(f"mail fetch ended before the moment to kill it: {process.communicate()}")
        time.sleep(0.02)
    pytest.fail("the moment to kill mail fetch never came")


WINDOWS = {
    # stored raw, not yet parsed
    "after-store": (lambda rs: len(rs) >= 3 and any(r["status"] == "stored" for r in rs)),
    # ingested (submission committed), not yet flagged on the server
    "after-ingest": (lambda rs: len(rs) >= 3 and any(r["status"] != "stored" and r["flagged_at"] is None
                                                     for r in rs)),
    # wherever it happens to be
    "anywhere": (lambda rs: len(rs) >= 7),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("window", list(WINDOWS))
def test_sigkill_then_rerun_ingests_every_message_exactly_once(window, env, engine, dovecot):
    for name, sample in CORPUS.items():
        dovecot.deliver(sample.raw, name)
    pause = "0.02" if window == "anywhere" else "0.4"
    killed = subprocess.Popen(COMMAND, env={**env, "FEEDBACK_MAIL_TEST_PAUSE": pause},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(WINDOWS[window], engine, killed)
    killed.kill()  # SIGKILL: no cleanup of any kind
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    partial = rows(engine)
    assert 0 < len(partial) < len(CORPUS) and WINDOWS[window](partial)

    rerun = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr

    final = rows(engine)
    by_status = Counter(r["status"] for r in final)
    assert by_status == {"ingested": len(INGESTED), "quarantined": len(QUARANTINED)}
    assert all(r["flagged_at"] is not None for r in final)
    ids = Counter(r["message_id"] for r in final)
    assert max(ids.values()) == 1 and len(ids) == len(CORPUS)
    with engine.connect() as conn:
        facts = [json.loads(f) for (f,) in conn.execute(text("SELECT channel_facts FROM submission"))]
        outbox = conn.execute(text("SELECT count(*), count(DISTINCT submission_id) FROM outbox_message")).one()
    submitted = Counter(f["message_id"] for f in facts)
    assert len(facts) == len(INGESTED) and max(submitted.values()) == 1
    linked = [r["submission_id"] for r in final if r["status"] == "ingested"]
    assert None not in linked and len(set(linked)) == len(INGESTED)
    assert outbox[0] == outbox[1] == len(INGESTED) - 1  # one acknowledgement each, none twice

    third = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "收取 0 封新邮件" in third.stdout
    assert len(rows(engine)) == len(CORPUS)


@pytest.mark.timeout(120)
def test_watch_keeps_fetching_until_sigterm(env, engine, dovecot):
    watcher = subprocess.Popen([*COMMAND, "--watch", "--interval", "1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        dovecot.deliver(CORPUS["utf8_plain"].raw)
        wait_for(lambda rs: len(rs) == 1 and rs[0]["flagged_at"] is not None, engine, watcher)
        dovecot.deliver(CORPUS["auto_reply"].raw)
        wait_for(lambda rs: len(rs) == 2 and all(r["flagged_at"] for r in rs), engine, watcher)
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "已停止" in out and "登记 1 封" in out and "隔离 1 封" in out
