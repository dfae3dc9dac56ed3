"""When the database cannot save, or cannot be reached: a page that says so, never a generic error and
never a false receipt.

An operational database error (SQLite: a read-only file, the write lock held past the wait, a full
disk; PostgreSQL: stopped, the connection lost) or a full disk while an attachment is written, raised
by a view or by the request's commit, is answered with 503 "系统暂时无法保存" and the office's phone
number (the setting; else the bulletin's, read when the app starts and again whenever the citizen's form
reads its bulletin; else a line that sends the person to the channels the bulletin lists). A POST's
own page comes back as it was filled in (``web.refusal``), read without writing; the changes the
request made to the browser's session are dropped (no receipt to show). When even reading fails, the
page lists what was typed so that it can be copied. Any other error these handlers see (a
file the site may not write, a database error that is a fault of the code) is a 500 with its incident
number (``web.errors.unexpected``), as every unexpected error is.
"""
from __future__ import annotations

import errno
import logging

from flask import Flask, current_app, g, render_template, request, session
from flask.typing import ResponseReturnValue
from sqlalchemy import exc as sa
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from feedback_app import current
from feedback_app.bulletin.service import latest
from feedback_app.web import errors, transaction
from feedback_app.web.refusal import refuse

log = logging.getLogger(__name__)

DATABASE_ERRORS = (sa.OperationalError, sa.InterfaceError, sa.TimeoutError)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
NOT_SAVED = "系统暂时无法保存您提交的内容，本次提交未成功，请稍后再提交。"
NOT_READ = "系统暂时无法访问，请稍后再试。"
NO_PHONE = "如情况紧急，请通过通报中公布的联系电话、来信地址等渠道反映。"  # when the site knows no number
UNTYPED = frozenset({"csrf_token", "form_token", "website", "version"})  # not what a person typed


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, DATABASE_ERRORS):
        # a write in a reading request's read-only transaction is a fault of the code, not of the database
        return not (request.method in transaction.SAFE_METHODS and _refused_as_read_only(error))
    return isinstance(error, OSError) and error.errno in DISK_ERRNOS


def _refused_as_read_only(error: BaseException) -> bool:
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlite_errorname", "") == "SQLITE_READONLY"


def init_unavailable(app: Flask) -> None:
    for error in (*DATABASE_ERRORS, OSError):
        app.register_error_handler(error, _raised)
    app.extensions["commit_failed"] = _commit_failed
    app.before_request(_keep_session_as_sent)


def office_phone() -> str | None:
    """The number to call: the setting, else the one of the bulletin the site read last (at start, the
    latest bulletin's: ``remember_office_phone``; then the one whose form a citizen opened)."""
    return current.settings().office_phone or current_app.extensions.get("office_phone")


def remember_office_phone(app: Flask) -> None:
    """At start, before any request (``create_app``, after ``transaction.init_db``): the phone of the
    latest bulletin, so that the 503 page has a number after a restart, on staff pages, and when the
    database fails before any citizen opened a form. Not read when the setting gives one; a database
    that cannot be read is logged and stops nothing (the page then sends the person to the bulletin)."""
    if app.extensions["settings"].office_phone:
        return
    factory: sessionmaker[Session] = app.extensions["db_sessionmaker"]
    try:
        with factory() as db:
            bulletin = latest(db)
            phone = bulletin.contact_phone if bulletin is not None else None
    except sa.SQLAlchemyError:
        log.exception("the latest bulletin's phone could not be read at start; the citizen's form reads it again")
        return
    if phone:
        app.extensions["office_phone"] = phone


def _keep_session_as_sent() -> None:
    """The last of the before-request hooks (``app.create_app`` registers it after those that say who is
    asking): when it has run, every hook before the view has."""
    g.hooks_done = True
    if request.method == "POST":
        g.session_as_sent = dict(session)


def _hooks_again() -> bool:
    """Run the before-request hooks again, now reading without writing, when the database failed one of
    them (a POST's first read, of the login behind the staff cookie, waits for the write lock): a view
    shown again needs what they say (who is asking), or it would send a clerk to the login page. True
    when they all passed; False when one fails again or answers by itself."""
    if g.get("hooks_done"):
        return True
    try:
        return current_app.preprocess_request() is None and bool(g.get("hooks_done"))
    except Exception as again:
        if not (is_unavailable(again) or isinstance(again, HTTPException)):
            raise
        transaction.abandon()
        return False


def _commit_failed(error: Exception) -> Response | None:
    return answer(error) if is_unavailable(error) else None


def _raised(error: Exception) -> ResponseReturnValue:
    if not is_unavailable(error):  # not the database or the disk failing: an error like any other
        return errors.unexpected(error)
    return answer(error)


def answer(error: BaseException) -> Response:
    """The 503 answer for this request, its own form shown again when it has one."""
    log.warning("database or disk unavailable (%s) on %s %s", type(error).__name__, request.method,
                request.url_rule.rule if request.url_rule else "?")
    transaction.abandon()
    if "session_as_sent" in g:  # what the view put in the browser's session (a receipt) is not so
        session.clear()
        session.update(g.session_as_sent)
    reason = NOT_SAVED if request.method == "POST" else NOT_READ
    phone = office_phone()
    notice = reason + (f"如情况紧急，请拨打 {phone}。" if phone else NO_PHONE)

    def page() -> ResponseReturnValue:
        typed = [(k, v) for k, v in request.form.items(multi=True)
                 if v.strip() and k not in UNTYPED and "password" not in k]
        title = "系统暂时无法保存" if request.method == "POST" else "系统暂时无法访问"
        return render_template("errors/unavailable.html", code=503, title=title, message=reason, phone=phone,
                               no_phone=NO_PHONE, typed=typed), 503

    try:
        response = refuse(notice, page) if _hooks_again() else current_app.make_response(page())
    except Exception as again:  # reading fails too: the page needs no database
        if not is_unavailable(again):
            raise
        transaction.abandon()
        response = current_app.make_response(page())
    if response.status_code in (400, 409):  # the form shown again, as for any refusal
        response.status_code = 503
    response.headers["Retry-After"] = "60"
    response.headers["Cache-Control"] = "no-store"
    return response
