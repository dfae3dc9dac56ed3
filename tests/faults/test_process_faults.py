"""The app as it runs in production, under gunicorn, with what happens to processes and connections:

- a body sent chunked (no Content-Length) past ``max_request_bytes`` is refused whole with 413 and the
  Chinese page, nothing stored; one under the limit is taken whole, byte for byte;
- SIGKILL of the whole server (master and workers) in the middle of a burst of comments with photos,
  at a moment a photo is written but not yet in its place: after the restart every comment whose
  citizen got a 303 and a receipt is stored once, with its photo in place, and the start-up sweep
  leaves no file without its row;
- a worker stuck with the write lock: the others answer 503 after the busy timeout, not never.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from feedback_app.app import create_app
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.database import make_engine
from feedback_app.intake import attachments
from feedback_app.intake.attachments import STALE_SECONDS
from tests.conftest import SEED, SEED_SLUG
from tests.factories import receipt_of
from tests.faults.conftest import (
    FORM,
    FORM_TOKEN_RE,
    NOT_SAVED,
    OFFICE_PHONE,
    Visit,
    app_env,
    partial_files,
    photo,
    rows,
    send_chunked,
    sha256,
    sqlite_copy,
    stored_files,
    wait_until,
)
from tests.faults.test_database_faults import LockHolder, citizen_post, start

pytestmark = pytest.mark.timeout(120, method="thread")  # fails, never hangs the run

LIMIT = 1024 * 1024


def with_bulletin(url: str) -> None:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
            session.commit()
    finally:
        engine.dispose()


def count(url: str, table: str) -> int:
    engine = make_engine(url)
    try:
        return rows(engine, f"SELECT count(*) FROM {table}")[0][0]
    finally:
        engine.dispose()


# --- chunked bodies under gunicorn --------------------------------------------------------------

def test_a_chunked_body_past_the_limit_is_413_and_one_within_it_is_stored_whole(database_url, tmp_path, gunicorn):
    with_bulletin(database_url)
    instance = tmp_path / "instance"
    server = gunicorn.start(app_env(instance, database_url, FEEDBACK_MAX_REQUEST_BYTES=str(LIMIT)))
    store = instance / "attachments"

    visit = Visit(server.port)
    assert visit.open_form().status == 200
    body = "分块上传的意见：\r\n建议公开涉企检查计划。\r\n（第二段）请在区政府网站公布。"
    content_type, payload = visit.body(body, [("大照片.png", photo(1, LIMIT + 256 * 1024))])
    assert len(payload) > LIMIT
    headers = [("Content-Type", content_type), *visit.jar.headers()]
    refused = send_chunked(server.port, FORM, headers, payload)
    assert refused.status == 413, refused.text()[:500]
    assert "提交内容过大" in refused.text() and 'lang="zh-CN"' in refused.text()
    assert count(database_url, "submission") == 0 and stored_files(store) == set()
    assert visit.receipt() is None

    small = photo(2, LIMIT // 2)
    content_type, payload = visit.body(body, [("照片.png", small)])  # the same form, its photo made smaller
    assert len(payload) < LIMIT
    taken = send_chunked(server.port, FORM, [("Content-Type", content_type), *visit.jar.headers()], payload,
                         chunk=7919)  # chunks that cut characters and the multipart boundary
    assert taken.status == 303 and taken.headers["location"].endswith("/receipt"), taken.text()[:500]
    visit.jar.update(taken)
    reference = visit.receipt()
    assert reference
    engine = make_engine(database_url)
    try:
        (stored_body, name, digest, size), = rows(engine, (
            "SELECT s.body, a.stored_name, a.sha256, a.size FROM submission s "
            "JOIN attachment a ON a.submission_id = s.id WHERE s.reference = :r"), r=reference)
    finally:
        engine.dispose()
    assert stored_body == body.replace("\r\n", "\n")  # every form keeps line ends as "\n" (core.text)
    assert (digest, size) == (sha256(small), len(small))
    assert (store / name[:2] / name).read_bytes() == small
    assert stored_files(store) == {f"{name[:2]}/{name}"}


# --- SIGKILL during a burst ---------------------------------------------------------------------

@dataclass
class Sent:
    n: int
    body: str
    photo: bytes | None
    status: int | None = None
    reference: str | None = None


class Burst:
    """Citizens posting comments at once, each a visit of its own: the form, then the post, then the
    receipt. Stops when told, or at the first request the server does not answer."""

    def __init__(self, port: int, clients: int) -> None:
        self.port, self.clients = port, clients
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive(), "a client hangs"

    def acknowledged(self) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.status == 303]

    def _run(self, i: int) -> None:
        n = i
        while not self.stop.is_set():
            sent = Sent(n, f"压力测试意见第{n}号：建议区里公开涉企检查计划，并说明每次检查的依据。",
                        photo(n, 512 * 1024 + n) if n % 2 == 0 else None)
            with self.lock:
                self.sent.append(sent)
            visit = Visit(self.port, timeout=20)
            try:
                if visit.open_form().status != 200:
                    continue
                response = visit.post(sent.body, [("现场.png", sent.photo)] if sent.photo else [])
                sent.status = response.status
                if response.status == 303:
                    sent.reference = visit.receipt()
                else:
                    assert response.status in (429, 503), response.text()[:300]
            except OSError:  # the server is gone
                return
            except BaseException as error:
                self.errors.append(error)
                return
            finally:
                visit.close()
            n += self.clients


def catch_mid_store(server, store, deadline: float) -> set[str]:
    """Freeze the workers (SIGSTOP) at a moment a photo is in ``partial/`` (written, its comment not yet
    committed or its file not yet put in place); returns those files. Retries until ``deadline``."""
    workers = server.worker_pids()
    while time.monotonic() < deadline:
        if not partial_files(store):
            time.sleep(0.0005)
            continue
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        caught = partial_files(store)
        if caught:
            return caught
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    pytest.fail("no moment with a photo written and not yet in place was seen")


def test_sigkill_during_a_burst_loses_no_acknowledged_comment_and_leaves_no_orphan_file(
        sqlite_template, tmp_path, gunicorn):
    instance = tmp_path / "instance"
    url = sqlite_copy(sqlite_template, instance)
    with_bulletin(url)
    store = instance / "attachments"
    env = app_env(instance, url)
    server = gunicorn.start(env, workers=2)
    burst = Burst(server.port, clients=6)
    burst.start()
    try:
        wait_until(lambda: len(burst.acknowledged()) >= 8, 30, "8 acknowledged comments")
        caught = catch_mid_store(server, store, time.monotonic() + 20)
        master = server.proc
        assert master is not None
        for pid in [master.pid, *server.worker_pids()]:  # the whole server, at once, no cleanup of any kind
            os.kill(pid, signal.SIGKILL)
        master.wait(10)
        assert master.returncode == -signal.SIGKILL
    finally:
        burst.join()
    assert not burst.errors, burst.errors
    acknowledged = burst.acknowledged()
    assert len(acknowledged) >= 8 and caught <= partial_files(store)

    engine = make_engine(url)
    try:
        names = {name.removeprefix("partial/").removesuffix(".part") for name in caught}
        committed = {name for (name,) in rows(engine, "SELECT stored_name FROM attachment")} & names
        server = gunicorn.start(env, workers=2)  # its start puts in place at once what committed
        uncommitted = {f"partial/{name}.part" for name in names - committed}
        assert partial_files(store) == uncommitted  # young: may be another request's, still being stored
        for name in committed:
            assert attachments.path_of(store, name).is_file()
        old = time.time() - STALE_SECONDS - 60
        for name in uncommitted:
            os.utime(store / name, (old, old))
        with Session(engine) as session:  # as the next start does: old and without a row, removed
            assert attachments.sweep(session, store) == (0, len(uncommitted))
        assert partial_files(store) == set()
        for name in names:  # in place if its comment committed before the kill, else gone
            assert attachments.path_of(store, name).is_file() == (name in committed)
        stored = rows(engine, "SELECT id, reference, body FROM submission")
        files = rows(engine, "SELECT submission_id, stored_name, sha256, size FROM attachment")
    finally:
        engine.dispose()

    by_body = {}
    for sid, reference, body in stored:
        assert body not in by_body, f"stored twice: {body}"
        by_body[body] = (sid, reference)
    files_of = {}
    for sid, name, digest, size in files:
        files_of.setdefault(sid, []).append((name, digest, size))
        path = store / name[:2] / name
        assert path.is_file() and sha256(path.read_bytes()) == digest and path.stat().st_size == size
    for sent in acknowledged:
        assert sent.body in by_body, f"acknowledged and lost: {sent.n}"
        sid, reference = by_body[sent.body]
        assert sent.reference in (None, reference)
        expected = [(sha256(sent.photo), len(sent.photo))] if sent.photo else []
        assert [(d, s) for _, d, s in files_of.get(sid, [])] == expected
    placed = {f"{name[:2]}/{name}" for _, name, _, _ in files}
    assert stored_files(store) == placed  # no file without its row
    assert sum(1 for s in acknowledged if s.reference) >= 1

    visit = Visit(server.port)  # and the restarted server takes comments
    assert visit.open_form().status == 200
    after = visit.post("重启后的意见：建议公开涉企检查计划。", [("照片.png", photo(999, 4096))])
    assert after.status == 303 and visit.receipt()


def test_a_start_puts_in_place_what_a_crash_left_committed_and_removes_what_it_left_uncommitted(
        database_url, tmp_path):
    """What SIGKILL leaves in ``partial/``, made on purpose: a photo whose comment committed (killed
    between the commit and the move) and one whose comment never did (killed before the commit)."""
    app, citizen, _clerk = start(database_url, tmp_path)
    settings = app.extensions["settings"]
    store = settings.attachments_path
    assert citizen_post(citizen, attachment=photo(7)).status_code == 303
    reference, _ = receipt_of(citizen)
    app.extensions["db_engine"].dispose()
    engine = make_engine(database_url)
    try:
        (name,), = rows(engine, "SELECT a.stored_name FROM attachment a JOIN submission s ON s.id = a.submission_id "
                                "WHERE s.reference = :r", r=reference)
    finally:
        engine.dispose()
    os.replace(attachments.path_of(store, name), attachments.partial_path(store, name))
    orphan = attachments.partial_path(store, "0" * 32)
    orphan.write_bytes(photo(8))

    def restart():
        create_app(settings).extensions["db_engine"].dispose()

    restart()  # the committed one is put in place at once; the young orphan may be another process's, still storing
    assert partial_files(store) == {f"partial/{'0' * 32}.part"}
    assert attachments.path_of(store, name).read_bytes() == photo(7)
    old = time.time() - STALE_SECONDS - 1
    os.utime(orphan, (old, old))
    restart()
    assert partial_files(store) == set() and stored_files(store) == {f"{name[:2]}/{name}"}


def test_a_worker_stuck_with_the_write_lock_does_not_hold_up_the_others(sqlite_template, tmp_path, gunicorn):
    """Under gunicorn: a writer that does not let go of the write gate and SQLite's lock (a stuck
    worker) costs the next citizen ``database_busy_seconds``, then the 503 page with the form as typed,
    not the wait until gunicorn kills the worker and the connection drops with nothing said."""
    instance = tmp_path / "instance"
    url = sqlite_copy(sqlite_template, instance)
    with_bulletin(url)
    server = gunicorn.start(app_env(instance, url, FEEDBACK_DATABASE_BUSY_SECONDS="1"), workers=2)
    visit = Visit(server.port)
    assert visit.open_form().status == 200
    body = "卡住的写入之后：建议公开涉企检查计划。"
    held = LockHolder(Path(url.removeprefix("sqlite:///")), site_worker=True, at_most=10)
    try:
        began = time.monotonic()
        refused = visit.post(body, [("照片.png", photo(5))])
        waited = time.monotonic() - began
    finally:
        held.let_go()
    html = unescape(refused.text())
    assert refused.status == 503 and NOT_SAVED in html and OFFICE_PHONE in html and body in html
    assert 0.9 <= waited < 8, waited  # the 1 s busy timeout, not the holder's 10 s
    assert count(url, "submission") == 0 and stored_files(instance / "attachments") == set()
    token = FORM_TOKEN_RE.search(html)
    assert token, "the form came back without its token"
    visit.tokens = [(k, token.group(1) if k == "form_token" else v) for k, v in visit.tokens]
    assert visit.post(body, [("照片.png", photo(5))]).status == 303 and visit.receipt()
    assert count(url, "submission") == 1
