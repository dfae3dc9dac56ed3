"""When the database cannot save: a read-only SQLite database, its write lock held past the busy
timeout, PostgreSQL stopped and started again. What the person sees is 503 "系统暂时无法保存" with the
office's phone and the form as typed, never a 500 and never a receipt; nothing is stored (no row, no
file, ``partial/`` included); what was acknowledged before is still there; once the fault is gone the
same form posts.

The SQLite faults run on a SQLite database of their own whatever ``FEEDBACK_DATABASE_URL`` says; the
PostgreSQL one on a throwaway cluster of its own (``private_postgres``), never the shared server.
"""
from __future__ import annotations

import fcntl
import io
import os
import re
import signal
import sqlite3
import threading
import time
from html import unescape
from pathlib import Path

import pytest
from gunicorn.config import Config as GunicornConfig
from sqlalchemy import text

from feedback_app.app import create_app
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.config import REPO_ROOT
from feedback_app.core.database import make_engine
from feedback_app.core.write_gate import WriteGate, WriteGateTimeout
from feedback_app.web.staff.intake import RECEIPT_KEY as STAFF_RECEIPT_KEY
from tests.auth.helpers import client_as, create_staff
from tests.conftest import SEED, SEED_SLUG, make_settings
from tests.dbstate import changes, snapshot
from tests.factories import FORM, form_fields, receipt_of, valid_data
from tests.faults.conftest import (
    BULLETIN_PHONE,
    FORM_TOKEN_RE,
    NOT_READ,
    NOT_SAVED,
    OFFICE_PHONE,
    photo,
    rows,
    sha256,
    sqlite_copy,
    stored_files,
)
from tests.intake.test_staff_intake import PDF, hidden_fields, letter_data, phone_data
from tests.intake.test_staff_intake import RECEIPT as STAFF_RECEIPT
from tests.intake.test_staff_intake import post as staff_post

# a site that waits where it should answer fails, never hangs the run; the timeout by a thread of
# pytest-timeout's, leaving SIGALRM to the write gate (``core.database._flock_until``)
pytestmark = pytest.mark.timeout(120, method="thread")

BODY = "故障测试：建议区政务服务中心延长午间办理时间，方便上班族办事。"
CALL = "故障测试来电：反映园区道路改造拖延，请督促整改。"
LETTER = "故障测试来信：第5项整改中的涉企检查计划至今未公开，请督促落实。"


def start(database_url: str, tmp_path: Path, **overrides):
    """The app on ``database_url`` with the seed bulletin, a clerk logged in, and a citizen who has seen
    the form (so the site knows the bulletin's phone, the one shown when ``office_phone`` is unset)."""
    app = create_app(make_settings(database_url, tmp_path, **overrides))
    with app.extensions["db_sessionmaker"]() as session:
        import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
        session.commit()
        clerk = create_staff(session, username="deng.ji", role="clerk", display_name="邓记")
    citizen = app.test_client()
    assert citizen.get(FORM + "?item=5").status_code == 200
    return app, citizen, client_as(app, clerk)


def citizen_post(client, body=BODY, attachment: bytes | None = None, fields: dict | None = None):
    data = {**(fields if fields is not None else form_fields(client)), **valid_data(body=body)}
    if attachment is not None:
        data["attachments"] = (io.BytesIO(attachment), "现场照片.png")
    return client.post(FORM, data=data, content_type="multipart/form-data")


def assert_not_saved(response, typed: str, phone: str) -> str:
    """503, the page that says so with the phone to call, and what was typed still in the form."""
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[:2000]
    assert NOT_SAVED in html and phone in html
    assert typed in unescape(html)
    assert response.headers.get("Retry-After") and response.headers["Cache-Control"] == "no-store"
    return html


def assert_no_citizen_receipt(client) -> None:
    with client.session_transaction() as cookie:
        assert "receipt" not in cookie
    page = client.get("/receipt")
    assert page.status_code == 302 and page.headers["Location"].endswith("/track")
    assert 'id="reference"' not in page.get_data(as_text=True)


def assert_no_staff_receipt(clerk) -> None:
    with clerk.session_transaction() as cookie:
        assert STAFF_RECEIPT_KEY not in cookie
    page = clerk.get(STAFF_RECEIPT)  # 503 while the database cannot be read (the login behind the cookie)
    assert page.status_code in (302, 503) and 'id="reference"' not in page.get_data(as_text=True)


def let_go(app) -> None:
    """Close every file this process holds open on the database's filesystem (its pooled connections,
    the write gate's lock file), as a restart would: the kernel makes no mount read-only under a writer."""
    app.extensions["db_engine"].dispose()
    gate = app.extensions["db_write_gate"]
    if gate is not None and gate._fd is not None:
        os.close(gate._fd)
        gate._fd = None


# --- a read-only database -------------------------------------------------------------------------

@pytest.mark.parametrize("read_only", ["database file", "database folder"])
def test_a_read_only_database_saves_nothing_and_says_so_while_pages_still_read(
        read_only, sqlite_template, tmp_path, mounts):
    folder = tmp_path / "db"
    url = sqlite_copy(sqlite_template, folder)
    app, citizen, clerk = start(url, tmp_path)  # office_phone unset: the bulletin's number is shown
    attachments = app.extensions["settings"].attachments_path
    someone = app.test_client()
    assert citizen_post(someone, BODY + "（故障前）", photo(1)).status_code == 303
    earlier, _ = receipt_of(someone)
    check = make_engine(url)
    before, files_before = snapshot(check), stored_files(attachments)
    check.dispose()

    let_go(app)
    if read_only == "database folder":  # the WAL index and log as a running server leaves them
        for suffix in ("-wal", "-shm"):
            Path(f"{folder}/feedback.db{suffix}").touch()
        mounts.read_only(folder)
    else:
        mounts.read_only(folder / "feedback.db")
    with pytest.raises(OSError):
        (folder / "feedback.db").open("r+b")

    response = citizen_post(citizen, attachment=photo(2))
    html = assert_not_saved(response, BODY, BULLETIN_PHONE)
    assert 'name="body"' in html  # the form itself, shown again: it can be sent once the site can save
    assert_no_citizen_receipt(citizen)

    response = staff_post(clerk, "/staff/intake/phone", phone_data(app.extensions["settings"], body=CALL))
    assert_not_saved(response, CALL, BULLETIN_PHONE)
    response = staff_post(clerk, "/staff/intake/letter", letter_data(app.extensions["settings"], body=LETTER),
                          files=[("来信.pdf", PDF)])
    assert_not_saved(response, LETTER, BULLETIN_PHONE)
    assert_no_staff_receipt(clerk)

    for reader, path in ((citizen, "/"), (citizen, f"/bulletins/{SEED_SLUG}"), (citizen, FORM + "?item=5"),
                         (citizen, "/track"), (clerk, "/staff/"), (clerk, "/staff/intake/phone")):
        page = reader.get(path)
        assert page.status_code == 200, (path, page.status_code)
    assert stored_files(attachments) == files_before  # no new file, partial/ included

    mounts.undo()
    check = make_engine(url)
    try:
        assert changes(before, snapshot(check)) == {}
        assert rows(check, "SELECT reference FROM submission") == [(earlier,)]
    finally:
        check.dispose()


# --- a write lock held past the busy timeout ------------------------------------------------------

class LockHolder:
    """Another writer that does not let go of the database's write lock: a program beside the site (a
    command, a backup) holding SQLite's lock, or one of the site's own workers, stuck in a request, that
    holds the write gate too. Whatever the test does, it lets go after ``at_most`` seconds (a site that
    waited that long has failed the test, not hung it)."""

    def __init__(self, database: Path, site_worker: bool, at_most: float = 6.0) -> None:
        self.sqlite = sqlite3.connect(database, isolation_level=None, timeout=0, check_same_thread=False)
        self.sqlite.execute("BEGIN IMMEDIATE")
        self.gate: int | None = None
        if site_worker:
            self.gate = os.open(f"{database}.writegate", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.gate, fcntl.LOCK_EX)
        self.lock = threading.Lock()
        self.timer = threading.Timer(at_most, self.let_go)
        self.timer.start()

    def let_go(self) -> None:
        with self.lock:
            if self.sqlite is not None:
                self.sqlite.execute("ROLLBACK")
                self.sqlite.close()
                self.sqlite = None
            if self.gate is not None:
                os.close(self.gate)  # and its flock with it
                self.gate = None
        self.timer.cancel()


@pytest.mark.parametrize("holder", ["another program", "a stuck worker of the site"])
def test_a_write_lock_held_past_the_busy_timeout_is_503_then_the_same_form_posts(holder, sqlite_template, tmp_path):
    url = sqlite_copy(sqlite_template, tmp_path / "db")
    app, citizen, clerk = start(url, tmp_path, database_busy_seconds=0.5, office_phone=OFFICE_PHONE)
    s = app.extensions["settings"]
    attachments = s.attachments_path
    fields = form_fields(citizen)
    letter_page = hidden_fields(clerk.get("/staff/intake/letter").get_data(as_text=True))

    def letter():
        return clerk.post("/staff/intake/letter", content_type="multipart/form-data", data={
            **letter_page, **letter_data(s, body=LETTER), "scans": [(io.BytesIO(PDF), "来信.pdf")]})

    held = LockHolder(Path(url.removeprefix("sqlite:///")), site_worker=holder != "another program")
    try:
        pages = {}
        for who, send, typed in (("citizen", lambda: citizen_post(citizen, attachment=photo(3), fields=fields), BODY),
                                 ("clerk", letter, LETTER)):
            began = time.monotonic()
            response = send()
            waited = time.monotonic() - began
            pages[who] = assert_not_saved(response, typed, OFFICE_PHONE)
            assert 0.45 <= waited < 8, (who, waited)  # as long as it was told (0.5 s), not the default 10 s
        assert_no_citizen_receipt(citizen)
        assert_no_staff_receipt(clerk)
        assert stored_files(attachments) == set()
    finally:
        held.let_go()

    # the lock gone, each page as it came back is sent again
    tokens = {who: FORM_TOKEN_RE.search(html) for who, html in pages.items()}
    assert all(tokens.values()), "a form came back without its token"
    again = citizen_post(citizen, attachment=photo(3), fields={**fields, "form_token": tokens["citizen"].group(1)})
    assert again.status_code == 303
    letter_page["form_token"] = tokens["clerk"].group(1)
    assert letter().status_code == 303
    reference, _ = receipt_of(citizen)
    logged = re.search(r'id="reference">([^<]+)<', clerk.get(STAFF_RECEIPT).get_data(as_text=True)).group(1)
    check = make_engine(url)
    try:
        assert sorted(rows(check, "SELECT reference, body FROM submission")) == sorted([(reference, BODY),
                                                                                        (logged, LETTER)])
        placed = rows(check, "SELECT stored_name, sha256 FROM attachment")
    finally:
        check.dispose()
    assert sorted(digest for _, digest in placed) == sorted([sha256(photo(3)), sha256(PDF)])
    assert stored_files(attachments) == {f"{name[:2]}/{name}" for name, _ in placed}


def in_thread(call):
    """``call()`` in a thread of its own (not the main one); what it returned, or raised."""
    outcome: list = []

    def run():
        try:
            outcome.append(("returned", call()))
        except BaseException as error:
            outcome.append(("raised", error))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert outcome, "still waiting"
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    return value


@pytest.mark.parametrize("thread", ["main thread", "another thread"])
def test_a_writer_waits_at_the_write_gate_no_longer_than_told(thread, tmp_path):
    """The gate a stuck worker holds: a writer gives up after ``wait_seconds`` (the main thread's
    ``flock`` interrupted by an alarm, another thread's wait abandoned), and the gate is not left held."""
    path = str(tmp_path / "feedback.db.writegate")
    run = (lambda call: call()) if thread == "main thread" else in_thread
    stuck = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(stuck, fcntl.LOCK_EX)
    gate = WriteGate(path, wait_seconds=0.3)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL  # free for the main thread's wait
    threads, began = threading.active_count(), time.monotonic()
    with pytest.raises(WriteGateTimeout):
        run(gate.acquire)
    assert 0.28 <= time.monotonic() - began < 8  # the 0.3 s it was told, not as long as the holder holds
    # the main thread waited in flock itself; another thread left a waiter behind, blocked until the gate is free
    assert threading.active_count() == threads + (thread != "main thread")
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0, 0)

    threading.Timer(0.1, os.close, [stuck]).start()  # the stuck writer lets go in time
    run(gate.acquire)
    other = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by the gate now
        run(gate.release)
        deadline = time.monotonic() + 5  # and by nobody once let go (an abandoned waiter included)
        while True:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the gate is still held"
                time.sleep(0.01)
    finally:
        os.close(other)


def gunicorn_timeouts() -> list[tuple[str, int]]:
    """Each gunicorn command line the README and the Makefile give, with the worker timeout it runs
    with (``--timeout``/``-t``, else gunicorn's own default)."""
    default = GunicornConfig().timeout
    found = []
    for doc in ("README.md", "Makefile"):
        for line in (REPO_ROOT / doc).read_text(encoding="utf-8").splitlines():
            command = re.search(r"\bgunicorn\s+(?:-|')\S.*", line)
            if command is None:
                continue
            given = re.search(r"(?:--timeout[= ]|-t\s*)(\d+)", command.group(0))
            found.append((f"{doc}: {line.strip()}", int(given.group(1)) if given else default))
    return found


def test_the_default_busy_timeout_is_well_below_the_gunicorn_worker_timeout(tmp_path):
    settings = make_settings(f"sqlite:///{tmp_path / 'feedback.db'}", tmp_path)
    assert settings.database_busy_seconds == 10.0
    assert GunicornConfig().timeout == 30
    commands = gunicorn_timeouts()
    assert commands, "no gunicorn command line in the README or the Makefile"
    for where, timeout in commands:
        assert settings.database_busy_seconds * 2 <= timeout, where  # the 503 comes long before the kill
    app = create_app(settings)  # and the default is what SQLite is told, and how long the write gate is waited at
    try:
        with app.extensions["db_engine"].connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert app.extensions["db_write_gate"].wait_seconds == 10.0
    finally:
        app.extensions["db_engine"].dispose()


# --- PostgreSQL stopped and started again -------------------------------------------------------

def test_postgresql_stopped_then_restarted(private_postgres, tmp_path):
    url = private_postgres.create_database()
    app, citizen, clerk = start(url, tmp_path, office_phone=OFFICE_PHONE)
    s = app.extensions["settings"]
    attachments = s.attachments_path
    try:
        someone = app.test_client()
        assert citizen_post(someone, BODY + "（停机前）", photo(4)).status_code == 303
        acknowledged = [receipt_of(someone)[0]]
        files_before = stored_files(attachments)
        fields = form_fields(citizen)
        letter_page = hidden_fields(clerk.get("/staff/intake/letter").get_data(as_text=True))

        private_postgres.stop("immediate")
        response = citizen_post(citizen, attachment=photo(5), fields=fields)
        assert_not_saved(response, BODY, OFFICE_PHONE)
        assert_no_citizen_receipt(citizen)
        response = clerk.post("/staff/intake/letter", data={**letter_page, **letter_data(s, body=LETTER),
                                                            "scans": [(io.BytesIO(PDF), "来信.pdf")]},
                              content_type="multipart/form-data")
        assert_not_saved(response, LETTER, OFFICE_PHONE)
        assert_no_staff_receipt(clerk)
        for reader, path in ((citizen, "/"), (citizen, f"/bulletins/{SEED_SLUG}"), (citizen, FORM + "?item=5"),
                             (clerk, "/staff/"), (clerk, "/staff/intake/phone")):
            page = reader.get(path)
            html = page.get_data(as_text=True)
            assert page.status_code == 503 and NOT_READ in html and OFFICE_PHONE in html, (path, page.status_code)
        assert stored_files(attachments) == files_before

        private_postgres.start()
        again = citizen_post(citizen, attachment=photo(5), fields=fields)  # the same form, sent again
        assert again.status_code == 303
        acknowledged.append(receipt_of(citizen)[0])
        assert staff_post(clerk, "/staff/intake/phone", phone_data(s, body=CALL)).status_code == 303
        assert clerk.get("/staff/").status_code == 200
    finally:
        app.extensions["db_engine"].dispose()
    check = make_engine(url)
    try:
        stored = dict(rows(check, "SELECT reference, body FROM submission"))
        placed = rows(check, "SELECT stored_name, sha256 FROM attachment ORDER BY id")
    finally:
        check.dispose()
    assert set(acknowledged) <= set(stored) and len(stored) == 3
    assert stored[acknowledged[1]] == BODY
    assert [digest for _, digest in placed] == [sha256(photo(4)), sha256(photo(5))]
    assert stored_files(attachments) == {f"{name[:2]}/{name}" for name, _ in placed}
