"""Helpers for the tests of messages over the size limit: the messages, the store, a refusing database,
a connection that records what it sends, and a process killed at a chosen moment."""
from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from feedback_app.intake.attachments import path_of
from feedback_app.mailbox.imap import connect
from feedback_app.mailbox.original import PARTIAL_DIR
from tests.mail.corpus.encode import word

LIMIT = 64 * 1024  # the mail_max_bytes these tests configure
COMMAND = [sys.executable, "-c", "from feedback_app.app import main; main()", "mail"]


def big_message(size: int, tag: str) -> bytes:
    """A message of exactly ``size`` bytes, CRLF throughout (as IMAP keeps it): a short text and a large
    base64 attachment of random bytes (seeded by ``tag``, so that each tag is another message)."""
    head = (f"From: {word('周群众', 'UTF-8')} <zhou@example.com>\r\nTo: jubao@example.gov.cn\r\n"
            f"Subject: {word('现场视频材料 ' + tag, 'UTF-8')}\r\nDate: Tue, 01 Apr 2025 10:00:00 +0800\r\n"
            f"Message-ID: <{tag}@oversized.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=big\r\n\r\n"
            "--big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode() + "视频见附件。\r\n".encode()
    head += (b"--big\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=video.mp4\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n")
    tail = b"--big--\r\n"
    fill = size - len(head) - len(tail)
    assert fill > 100, "too small for a message of this form"
    rng = random.Random(tag)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines, left = [], fill
    while left:
        width = 76 if left >= 81 or left == 78 else left - 2  # the last line takes what is left
        lines.append(bytes(rng.choice(alphabet) for _ in range(width)) + b"\r\n")
        left -= width + 2
    raw = head + b"".join(lines) + tail
    assert len(raw) == size
    return raw


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kept_files(store: Path) -> list[Path]:
    """Files in their place in the attachment store."""
    if not store.is_dir():
        return []
    return sorted(p for p in store.glob("*/*") if p.is_file() and p.parent.name != PARTIAL_DIR)


def partial_files(store: Path) -> list[Path]:
    folder = store / PARTIAL_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def kept(store: Path, row) -> bytes:
    return path_of(store, row.original_name).read_bytes()


def append(settings, raw: bytes) -> int:
    """Put a message into the INBOX over IMAP; its UID."""
    conn = connect(settings)
    try:
        typ, data = conn.append("INBOX", None, None, raw)
        assert typ == "OK", data
        return int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    finally:
        conn.logout()


class Recorder:
    """A connector for ``fetch_once``: the real connection to the real server, every command it sends
    after the login kept in ``sent``."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, settings):
        conn = connect(settings)
        send = conn.send

        def recording(data: bytes) -> None:
            self.sent.append(bytes(data))
            send(data)

        conn.send = recording
        return conn

    def fetches(self, uid: int) -> list[str]:
        """The items of each UID FETCH that asked about this message (alone or among others)."""
        found = []
        for line in self.sent:
            match = re.match(rb"\S+ UID FETCH (\S+) \((.*)\)\r\n$", line)
            if match and _in_set(uid, match.group(1).decode()):
                found.append(match.group(2).decode())
        return found


def _in_set(uid: int, uids: str) -> bool:
    for piece in uids.split(","):
        low, _, high = piece.partition(":")
        high = high or low
        if int(low) <= uid and (high == "*" or uid <= int(high)):
            return True
    return False


PART = re.compile(r"UID BODY\.PEEK\[\]<(\d+)\.(\d+)>")


def part_offsets(items: list[str]) -> list[tuple[int, int]]:
    """(offset, length) of each partial fetch; fails on any fetch of the message's text that is not
    partial (``BODY[]``, ``BODY[TEXT]``, ``RFC822``…)."""
    parts = []
    for item in items:
        if "BODY" in item or "RFC822" in item.replace("RFC822.SIZE", ""):
            match = PART.fullmatch(item)
            assert match, f"not a partial fetch: {item}"
            parts.append((int(match.group(1)), int(match.group(2))))
    return parts


@contextmanager
def refusing_inserts(engine):
    """The database refuses every new inbound message, as a full disk or a broken connection would."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(text("CREATE FUNCTION refuse_inbound() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"))
            conn.execute(text("CREATE TRIGGER refuse_inbound BEFORE INSERT ON inbound_message "
                              "FOR EACH ROW EXECUTE FUNCTION refuse_inbound()"))
        else:
            conn.execute(text("CREATE TRIGGER refuse_inbound BEFORE INSERT ON inbound_message "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            if postgres:
                conn.execute(text("DROP TRIGGER refuse_inbound ON inbound_message"))
                conn.execute(text("DROP FUNCTION refuse_inbound()"))
            else:
                conn.execute(text("DROP TRIGGER refuse_inbound"))


def inbound_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT id, status, original_name, original_size, sha256, flagged_at FROM inbound_message"))]


def kill_when(command: list[str], env: dict, moment, timeout: float = 60.0) -> None:
    """Run ``command`` and SIGKILL it as soon as ``moment()`` is true."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not moment():
            if process.poll() is not None:
                pytest.fail(f"the command ended before the moment to kill it: {process.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail("the moment to kill the command never came")
            time.sleep(0.01)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL


def run(command: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))
