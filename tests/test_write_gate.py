"""SQLite writers queue at a gate in the kernel instead of sleeping in SQLite's busy handler."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time

import pytest
from flask import abort
from sqlalchemy import make_url

from feedback_app.app import create_app
from feedback_app.core.write_gate import WriteGate
from feedback_app.web.transaction import get_session
from tests.conftest import make_settings

pytestmark = pytest.mark.timeout(60)


def _try_gate(path: str, queue) -> None:
    gate = WriteGate(path)
    queue.put("waiting")
    gate.acquire()
    queue.put(("entered", time.monotonic()))
    gate.release()


def test_a_second_process_waits_until_the_first_has_left(tmp_path):
    path = str(tmp_path / "feedback.db.writegate")
    gate = WriteGate(path)
    gate.acquire()
    queue = multiprocessing.get_context("fork").Queue()
    other = multiprocessing.get_context("fork").Process(target=_try_gate, args=(path, queue))
    other.start()
    assert queue.get(timeout=10) == "waiting"
    time.sleep(0.3)
    assert queue.empty()  # still outside while this process holds the gate
    left = time.monotonic()
    gate.release()
    state, entered = queue.get(timeout=10)
    other.join(10)
    assert state == "entered" and entered >= left


def test_a_gate_inherited_across_fork_still_excludes(tmp_path):
    """gunicorn --preload forks after the app (and its gate) exist: the child opens its own file."""
    gate = WriteGate(str(tmp_path / "feedback.db.writegate"))
    gate.acquire()  # held, descriptor and thread lock, while the child is forked
    queue = multiprocessing.get_context("fork").Queue()

    def child() -> None:
        queue.put("waiting")
        gate.acquire()
        queue.put("entered")
        gate.release()

    other = multiprocessing.get_context("fork").Process(target=child)
    other.start()
    assert queue.get(timeout=10) == "waiting"
    time.sleep(0.3)
    assert queue.empty()
    gate.release()
    assert queue.get(timeout=10) == "entered"
    other.join(10)


def test_the_gate_is_left_whatever_way_the_request_ends(app, bulletin):
    gate = app.extensions["db_write_gate"]
    if app.extensions["db_engine"].dialect.name != "sqlite":
        assert gate is None  # PostgreSQL queues writers with row locks
        return
    assert gate.path.endswith(".db.writegate") and os.path.isabs(gate.path)

    @app.post("/test-write/<outcome>")
    def write(outcome):
        get_session()  # a POST's session starts writing: through the gate
        assert not gate._threads.acquire(blocking=False)  # held now
        if outcome == "fail":
            raise RuntimeError("boom")
        if outcome == "refuse":
            abort(400)
        return "ok"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    for outcome, status in (("ok", 200), ("refuse", 400), ("fail", 500)):
        assert client.post(f"/test-write/{outcome}").status_code == status
        assert gate._threads.acquire(timeout=5), outcome  # left again
        gate._threads.release()


def test_the_gate_is_left_when_the_write_lock_cannot_be_had(database_url, tmp_path, bulletin):
    """Another program holds the database's write lock past the wait: the POST fails, and the gate is
    free for the next writer (a gate kept would stop every later writer of this process)."""
    app = create_app(make_settings(database_url, tmp_path, database_busy_seconds=0.2))
    gate = app.extensions["db_write_gate"]
    if not database_url.startswith("sqlite"):
        assert gate is None  # PostgreSQL has no database-wide write lock to hold
        return

    @app.post("/test-write")
    def write():
        get_session()
        return "ok"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    other = sqlite3.connect(make_url(database_url).database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert app.test_client().post("/test-write").status_code in (500, 503)
        assert gate._threads.acquire(timeout=5)  # not held
        gate._threads.release()
        other.execute("ROLLBACK")
        assert app.test_client().post("/test-write").status_code == 200
    finally:
        other.close()
        app.extensions["db_engine"].dispose()
