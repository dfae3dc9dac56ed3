"""``/healthz``: the database written (and rolled back), the disk, the outbox and the mailboxes reported.

Every test runs against the database of the run: SQLite by default, PostgreSQL when FEEDBACK_DATABASE_URL
says so. What only SQLite has (a file, its folder, its write lock) has its PostgreSQL counterpart in the
same test (a read-only database, a row lock), so that each test asserts something in both passes.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from feedback_app.app import create_app
from feedback_app.core import probes as health
from feedback_app.core.config import Settings
from feedback_app.core.database import make_engine, utcnow
from feedback_app.core.models import OutboxMessage, OutboxStatus
from feedback_app.mailbox.health import mailbox_key, record_attempt
from feedback_app.migrations import upgrade
from feedback_app.outbox.delivery import enqueue
from feedback_app.web import health as health_page
from tests.conftest import make_settings
from tests.dbstate import changes, snapshot
from tests.factories import create_web_submission

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def probe_each_time(monkeypatch):
    """Each /healthz here probes anew (a worker otherwise reuses its probe for ``PROBE_SECONDS``)."""
    monkeypatch.setattr(health_page, "PROBE_SECONDS", 0.0)


def is_sqlite(app) -> bool:
    return app.extensions["db_engine"].dialect.name == "sqlite"


def sqlite_path(database_url: str) -> Path:
    return Path(make_url(database_url).database)


def get(client):
    """/healthz, and how long it took to answer."""
    started = time.monotonic()
    response = client.get("/healthz")
    return response, time.monotonic() - started


@contextmanager
def read_only(folder: Path, *files: Path):
    """``folder`` (and ``files`` in it) cannot be written: by their modes where the modes stop this process
    (not root), else (root writes whatever the modes say) by a read-only bind mount of the folder over itself."""
    modes = {p: p.stat().st_mode & 0o7777 for p in (*files, folder)}
    for p in files:
        p.chmod(0o444)
    folder.chmod(0o555)
    try:
        if not os.access(folder, os.W_OK):
            yield
            return
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"root without the right to mount, so nothing can be made read-only: {mounted.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True,
                       capture_output=True)
        assert not os.access(folder, os.W_OK)
        yield
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


@contextmanager
def own_postgres_database(base_url: str):
    """A migrated PostgreSQL database of this test's own, dropped afterwards: (its URL, its name, an
    AUTOCOMMIT engine on the server's ``postgres`` database to alter it with)."""
    url = make_url(base_url)
    name = f"health_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                          "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    try:
        own = url.set(database=name).render_as_string(hide_password=False)
        engine = make_engine(own)
        upgrade(engine)
        engine.dispose()
        yield own, name, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def assert_write_lock_free(app, settings: Settings) -> None:
    """Nobody holds the write lock or the write gate, and every pooled connection waits as configured."""
    engine = app.extensions["db_engine"]
    conns = [engine.connect() for _ in range(3)]  # the pooled ones come out first
    try:
        for conn in conns:
            raw = conn.connection.driver_connection
            if is_sqlite(app):
                assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == int(settings.database_busy_seconds * 1000)
            else:
                assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
                conn.rollback()
    finally:
        for conn in conns:
            conn.close()
    if is_sqlite(app):
        other = sqlite3.connect(sqlite_path(settings.database_url), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # at once: no wait allowed
            other.execute("ROLLBACK")
        finally:
            other.close()
        gate = app.extensions["db_write_gate"]
        passed = threading.Event()

        def through() -> None:
            gate.acquire()
            gate.release()
            passed.set()

        threading.Thread(target=through, daemon=True).start()
        assert passed.wait(5), "the write gate is held"
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = 100")
            conn.execute(health.PROBE)  # no row lock left on alembic_version
            conn.rollback()


def test_healthy_answers_200_with_the_database_written_and_the_disk(app, client, settings, tmp_path):
    response, _ = get(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["problems"] == []
    disk = body["disk"]
    assert disk["status"] == "ok" and disk["min_free_bytes"] == health.DISK_MIN_FREE_BYTES
    assert disk["attachments"]["writable"] is True
    assert disk["attachments"]["free_bytes"] > health.DISK_MIN_FREE_BYTES
    if is_sqlite(app):
        assert disk["database"]["writable"] is True
        assert disk["database"]["free_bytes"] > health.DISK_MIN_FREE_BYTES
    else:
        assert "database" not in disk  # the server's disk is not ours to see
    assert body["outbox"] == {"waiting": 0, "retrying": 0, "oldest_waiting_seconds": None, "overdue_seconds": None,
                              "failed": 0, "last_failure_seconds": None}
    assert body["mailbox"] == {"known": 0, "in_alarm": 0, "quarantined": 0, "configured": None}
    assert body["alarms"] == []
    assert str(tmp_path) not in response.get_data(as_text=True)  # no paths
    assert_write_lock_free(app, settings)


def test_healthz_leaves_every_table_as_it_was(app, client, session, settings, bulletin):
    create_web_submission(session, settings, bulletin=bulletin)
    enqueue(session, kind="reply", recipient="citizen@example.org", subject="答复", body="正文")
    session.commit()
    engine = app.extensions["db_engine"]
    before = snapshot(engine)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        assert client.head("/healthz").status_code == 200
    assert changes(before, snapshot(engine)) == {}
    assert_write_lock_free(app, settings)


OTHER_WORKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("SELECT count(*) FROM alembic_version").fetchall()
print("open", flush=True)
sys.stdin.read()
"""


def _sqlite_read_only(database_url: str, tmp_path: Path, *, open_elsewhere: bool):
    """The database's file and folder made read-only; ``open_elsewhere``: while another worker (a process
    of its own) has the database open, so that its -wal and -shm files exist (the write is refused), else
    after every connection closed (SQLite cannot even open a WAL database whose -shm it cannot make)."""
    folder = tmp_path / ("db-open" if open_elsewhere else "db-closed")
    folder.mkdir()
    path = folder / "feedback.db"
    shutil.copy(sqlite_path(database_url), path)
    app = create_app(make_settings(f"sqlite:///{path}", tmp_path))
    client = app.test_client()
    engine = app.extensions["db_engine"]
    assert client.get("/healthz").status_code == 200
    # closed first: a connection of this process closed while another of it holds the file open leaves its
    # read-write descriptor for the next one to reuse, and that one could write whatever the modes say now
    engine.dispose()
    other = None
    if open_elsewhere:
        other = subprocess.Popen([sys.executable, "-c", OTHER_WORKER, str(path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert other.stdout is not None and other.stdout.readline() == "open\n"
    assert (folder / "feedback.db-shm").exists() == open_elsewhere
    try:
        with read_only(folder, path):
            response, took = get(client)
            engine.dispose()  # nothing left open on the read-only mount
    finally:
        if other is not None:
            other.communicate("", timeout=10)
    assert response.status_code == 503, response.get_json()
    body = response.get_json()
    assert body["status"] == "error" and body["database"] == "read-only"
    assert body["problems"] == ["数据库只读，无法保存"]
    assert body["disk"]["database"]["writable"] is False
    if open_elsewhere:
        assert body["outbox"]["waiting"] == 0  # reading still works, and is still reported
    assert took < 8  # the probe's 1.5 s wait, not the 10 s busy timeout
    assert client.get("/healthz").status_code == 200  # writable again: healthy again
    engine.dispose()


def test_read_only_database_answers_503(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        _sqlite_read_only(database_url, tmp_path, open_elsewhere=False)
        _sqlite_read_only(database_url, tmp_path, open_elsewhere=True)
        return
    with own_postgres_database(database_url) as (url, name, admin):
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        app = create_app(make_settings(url, tmp_path))
        client = app.test_client()
        response, took = get(client)
        assert response.status_code == 503, response.get_json()
        body = response.get_json()
        assert body["database"] == "read-only" and body["problems"] == ["数据库只读，无法保存"]
        assert body["outbox"]["waiting"] == 0  # reading still works, and is still reported
        assert took < 8  # the probe's 1.5 s wait, not the 10 s busy timeout
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        app.extensions["db_engine"].dispose()  # new sessions take the database's new default
        assert client.get("/healthz").status_code == 200
        app.extensions["db_engine"].dispose()


def test_a_write_lock_held_elsewhere_answers_busy_within_two_seconds(app, client, settings):
    """SQLite: another connection holds BEGIN IMMEDIATE, and this process holds the write gate (the probe
    must not wait there: the gate's lock is not reentrant, so waiting at it would never end). PostgreSQL:
    another transaction holds the row the probe writes."""
    engine = app.extensions["db_engine"]
    gate = app.extensions["db_write_gate"]
    if is_sqlite(app):
        holder = sqlite3.connect(sqlite_path(settings.database_url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        gate.acquire()
    else:
        holder = engine.raw_connection()
        holder.cursor().execute("SELECT version_num FROM alembic_version FOR UPDATE")
    answered: list = []
    asking = threading.Thread(target=lambda: answered.append(get(client)), daemon=True)
    try:
        asking.start()
        asking.join(10)
        assert not asking.is_alive(), "/healthz waited on the lock"
    finally:
        if is_sqlite(app):
            gate.release()
            holder.execute("ROLLBACK")
        else:
            holder.rollback()
        holder.close()
    response, took = answered[0]
    assert response.status_code == 503, response.get_json()
    body = response.get_json()
    assert body["database"] == "busy" and body["problems"] == ["数据库被长时间锁定，无法保存"]
    assert body["outbox"]["waiting"] == 0  # reading does not wait for the writer
    assert 1.0 <= took < 8, took  # waited for the lock its 1.5 s, not the 10 s busy timeout
    assert client.get("/healthz").status_code == 200  # the lock let go: healthy again
    assert_write_lock_free(app, settings)  # the short wait did not stay on the pooled connection


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp_path}/missing/dir/x.db",
    "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=3",  # nobody listens on port 1
])
def test_healthz_503_when_database_unreachable(tmp_path, url):
    settings = Settings.from_env({}, env="test", secret_key="k", instance_path=tmp_path,
                                 database_url=url.format(tmp_path=tmp_path))
    app = create_app(settings)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "unreachable" and body["status"] == "error"
    assert body["problems"] == ["无法连接数据库"]
    assert body["outbox"] is None and body["mailbox"] is None  # not read: it would fail the same way
    assert response.headers["Cache-Control"] == "no-store"
    app.extensions["db_engine"].dispose()


def test_outbox_waiting_and_failures_are_reported_never_a_503(app, client, session):
    message = enqueue(session, kind="acknowledgement", recipient="citizen@example.org", subject="受理回执",
                      body="正文")
    session.commit()
    body = client.get("/healthz").get_json()
    assert body["outbox"]["waiting"] == 1 and body["outbox"]["retrying"] == 0
    assert 0 <= body["outbox"]["oldest_waiting_seconds"] < 60 and 0 <= body["outbox"]["overdue_seconds"] < 60
    assert body["alarms"] == []

    hour_ago = utcnow() - timedelta(hours=1)
    message.created_at = message.next_attempt_at = hour_ago  # due for an hour: no sender is running
    message.attempts, message.last_error = 1, "SMTPServerDisconnected: citizen@example.org"
    gave_up = enqueue(session, kind="reply", recipient="other@example.org", subject="答复", body="正文")
    gave_up.status, gave_up.attempts = OutboxStatus.failed.value, 8
    gave_up.next_attempt_at = utcnow() - timedelta(hours=2)
    session.commit()
    response = client.get("/healthz")
    assert response.status_code == 200  # an alarm, not a reason to leave the load balancer
    body = response.get_json()
    outbox = body["outbox"]
    assert outbox["waiting"] == 1 and outbox["retrying"] == 1 and outbox["failed"] == 1
    assert 3600 <= outbox["oldest_waiting_seconds"] < 3700 and 3600 <= outbox["overdue_seconds"] < 3700
    assert 7200 <= outbox["last_failure_seconds"] < 7300
    assert body["alarms"] == ["发件箱有邮件到期 60 分钟仍未发送，请检查发信任务是否在运行"]
    text_ = response.get_data(as_text=True)
    assert "example.org" not in text_ and "SMTP" not in text_  # no addresses, no error texts
    assert session.get(OutboxMessage, message.id).status == OutboxStatus.pending.value


def test_mailbox_health_and_channel_alarms_are_reported_never_a_503(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, imap_host="imap.example.org", imap_username="box")
    app = create_app(settings)
    factory = app.extensions["db_sessionmaker"]
    record_attempt(factory, mailbox_key(settings), error="LoginError: secret detail",
                   at=utcnow() - timedelta(hours=2))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    configured = body["mailbox"]["configured"]
    assert body["mailbox"]["known"] == 1 and body["mailbox"]["in_alarm"] == 1
    assert configured["alarm"] is True and 7200 <= configured["failing_seconds"] < 7300
    assert configured["last_success_seconds"] is None
    assert len(body["alarms"]) == 2  # failing for 120 minutes; no fetch tried for as long
    assert "secret detail" not in response.get_data(as_text=True)
    app.extensions["db_engine"].dispose()


def test_too_little_disk_answers_503(app, client, monkeypatch):
    monkeypatch.setattr(health, "DISK_MIN_FREE_BYTES", 2**62)  # more than any disk here has
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["disk"]["status"] == "error"
    folders = ["数据库目录", "附件目录"] if is_sqlite(app) else ["附件目录"]
    assert [p.split("：")[0] for p in body["problems"]] == ["磁盘空间不足"] * len(folders)
    assert [p.split("：")[1].split("仅剩")[0] for p in body["problems"]] == folders


def test_an_attachment_store_that_cannot_be_written_answers_503(app, client, settings):
    folder = Path(settings.attachments_path)
    folder.mkdir(parents=True, exist_ok=True)
    with read_only(folder):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok" and body["problems"] == ["附件目录不可写"]
    assert body["disk"]["attachments"]["writable"] is False
    assert client.get("/healthz").status_code == 200


def test_a_worker_probes_at_most_every_few_seconds(app, client, settings, monkeypatch):
    """A flood of /healthz from outside costs one probe (one write lock) per worker per PROBE_SECONDS:
    within it a lock taken since is not seen; after it, it is."""
    monkeypatch.setattr(health_page, "PROBE_SECONDS", 60.0)
    assert client.get("/healthz").status_code == 200
    engine = app.extensions["db_engine"]
    if is_sqlite(app):
        holder = sqlite3.connect(sqlite_path(settings.database_url), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        holder = engine.raw_connection()
        holder.cursor().execute("SELECT version_num FROM alembic_version FOR UPDATE")
    try:
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]
        monkeypatch.setattr(health_page, "PROBE_SECONDS", 0.0)
        response = client.get("/healthz")
        assert response.status_code == 503 and response.get_json()["database"] == "busy"
    finally:
        if is_sqlite(app):
            holder.execute("ROLLBACK")
        else:
            holder.rollback()
        holder.close()
