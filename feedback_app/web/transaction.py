"""One database session per request: the request commits once, after its view answered well.

A view (and every service it calls) works in ``get_session()``; nobody else commits. After the
response is ready the session is committed when the answer succeeded (below 400) and rolled back
otherwise. Jobs a service left with ``after_commit`` run once the response has gone out, each in a
transaction of its own.

A GET writes nothing: its transaction is read-only (the database refuses a write) and is never
committed; what a reading request leaves behind (a login's "last seen", the end of one that ran out) is
a job after the response (``after_response``). A POST starts its transaction ready to write (on SQLite:
through the write gate, holding the write lock), unless its view is marked ``late_write_lock`` and
calls ``begin_write`` itself.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers import Response

from feedback_app import current
from feedback_app.core.database import (
    Job,
    begin_immediate,
    begin_read_only,
    make_sessionmaker,
    release_write_gate,
    run_jobs,
    take_jobs,
)
from feedback_app.core.write_gate import write_gate
from feedback_app.intake import attachments

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_db(app: Flask, engine: Engine) -> None:
    # a writer waits at the gate no longer than at SQLite's own lock: well before the server kills it
    gate = write_gate(engine, app.extensions["settings"].database_busy_seconds)
    factory = make_sessionmaker(engine, gate)
    app.extensions["db_engine"] = engine
    app.extensions["db_write_gate"] = gate
    app.extensions["db_sessionmaker"] = factory
    _sweep_attachments(factory, app.extensions["settings"].attachments_path)
    app.after_request(_commit_on_success)
    app.teardown_request(_close_on_error)


def _sweep_attachments(factory: sessionmaker[Session], directory: Path) -> None:
    """What a crash left half-stored (``intake.attachments.sweep``): at each start, before any request."""
    try:
        with factory() as session:
            placed, removed = attachments.sweep(session, directory)
    except (SQLAlchemyError, OSError):
        log.exception("attachments left by a crash could not be swept; the next start tries again")
        return
    if placed or removed:
        log.warning("attachments left by a crash: %d put in place, %d removed", placed, removed)


def _commit_on_success(response: Response) -> Response:
    session: Session | None = g.get("db_session")
    jobs: list[Job] = []
    if session is not None:
        try:
            if response.status_code < 400 and request.method not in SAFE_METHODS and not g.get("refuse_writes"):
                session.commit()
                jobs = take_jobs(session)
            else:
                session.rollback()
        except Exception as error:  # the answer must not claim what was not saved
            handler = current_app.extensions.get("commit_failed")
            answered = handler(error) if handler is not None else None
            if answered is None:
                raise
            return answered  # the request's session was abandoned; one it read with since, teardown closes
        g.pop("db_session")
        session.close()
        release_write_gate(session)
    jobs += g.pop("after_response", [])
    if jobs:
        factory = current.sessions()
        response.call_on_close(lambda: run_jobs(factory, jobs))
    return response


def _close_on_error(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        try:
            session.rollback()
            session.close()
        finally:
            release_write_gate(session)


def abandon() -> None:
    """Give up this request's transaction (the database failed it): what can be rolled back is, the
    write gate is left, nothing will be committed, and what the request reads from here on it reads
    without writing.

    The session itself is kept, in a read-only transaction: what the request loaded with it (the staff
    member behind the cookie, read before the view) stays attached, and is read again from there when
    the view shows its form again. A session whose rollback failed (its connection broken) is dropped;
    one that cannot begin again (the database unreachable) fails at its next read, as unavailable."""
    session: Session | None = g.get("db_session")
    g.db_read_only = True
    refuse_writes()
    if session is None:
        return
    try:
        session.rollback()
    except SQLAlchemyError:
        g.pop("db_session")
        session.invalidate()  # the connection is broken: not returned to the pool as it is
        return
    finally:
        release_write_gate(session)
    try:
        begin_read_only(session)
    except SQLAlchemyError:  # cannot be read either: the next read fails as unavailable (``get_session`` retries)
        log.debug("an abandoned request's session could not begin reading again", exc_info=True)


def refuse_writes() -> None:
    """Whatever this request answers, its transaction is rolled back (a request refused for a bad token)."""
    g.refuse_writes = True


def after_response(job: Job) -> None:
    """Run ``job`` once the response has gone out, in a writing transaction of its own, however the
    request ended: for what a reading request leaves behind (a login's "last seen")."""
    g.setdefault("after_response", []).append(job)


def get_session() -> Session:
    """The request's session; a POST starts its transaction ready to write (see ``late_write_lock``)."""
    session: Session | None = g.get("db_session")
    if session is None:
        session = g.db_session = current.sessions()()  # kept first: the request's end closes it however it began
        if request.method in SAFE_METHODS or g.get("db_read_only"):
            begin_read_only(session)  # a GET writes nothing: the database would refuse it
        elif request.method == "POST" and not g.get("db_late_lock"):
            begin_immediate(session)
    elif g.get("db_read_only") and not session.in_transaction():  # abandoned, and could not begin again then
        begin_read_only(session)
    return session


def late_write_lock(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """For a busy POST: read and validate without the SQLite write lock; ``begin_write`` takes it."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        g.db_late_lock = True
        return view(*args, **kwargs)

    return wrapped
