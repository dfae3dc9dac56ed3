"""Staff sessions kept on the server: the cookie holds a random token, the table its hash.

Logging out, changing a password or disabling an account ends the rows, so a copied cookie stops
working. Sessions end after ``staff_idle_minutes`` without a request and ``staff_absolute_hours``
after login.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, url_for
from sqlalchemy import update
from sqlalchemy.orm import Session

from feedback_app.auth.models import StaffSession, StaffUser
from feedback_app.db import get_session, utcnow

COOKIE = "staff_session"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needs_second_factor(user: StaffUser) -> bool:
    return user.role in current_app.extensions["settings"].twofa_role_set


def start_session(db: Session, user: StaffUser, *, second_factor: bool = False) -> str:
    """A fresh session id for ``user`` (never reuse one from before login); returns the cookie token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(StaffSession(id=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                        second_factor_at=now if second_factor else None, client=request.remote_addr))
    db.flush()
    g.staff_cookie = ("set", token)
    return token


def end_session(db: Session) -> None:
    row: StaffSession | None = g.get("staff_session_row")
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        db.flush()
    g.staff_cookie = ("clear", None)


def end_sessions_of(db: Session, user: StaffUser) -> None:
    """End every session of ``user`` on the server."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def _load() -> None:
    g.staff = None
    g.staff_session_row = None
    token = request.cookies.get(COOKIE)
    if not token or not request.path.startswith("/staff"):
        return
    settings = current_app.extensions["settings"]
    db = get_session()
    row = db.get(StaffSession, _digest(token))
    now = utcnow()
    if row is None or row.ended_at is not None:
        g.staff_cookie = ("clear", None)
        return
    idle = now - row.last_seen_at > timedelta(minutes=settings.staff_idle_minutes)
    too_old = now - row.created_at > timedelta(hours=settings.staff_absolute_hours)
    if idle or too_old or not row.user.active:
        row.ended_at = now
        db.commit()
        g.staff_cookie = ("clear", None)
        return
    if now - row.last_seen_at > timedelta(seconds=30):  # do not write on every click
        row.last_seen_at = now
    g.staff_session_row = row
    g.staff = row.user


def _write_cookie(response):
    action, token = g.pop("staff_cookie", (None, None))
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    if action == "set":
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/staff")
    elif action == "clear":
        response.delete_cookie(COOKIE, path="/staff", httponly=True, samesite="Strict", secure=secure)
    if request.path.startswith("/staff"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_staff_sessions(app: Flask) -> None:
    app.before_request(_load)
    app.after_request(_write_cookie)


def current_staff() -> StaffUser | None:
    """The logged-in staff member who has passed every factor their role needs."""
    user = g.get("staff")
    row = g.get("staff_session_row")
    if user is None or row is None:
        return None
    if needs_second_factor(user) and row.second_factor_at is None:
        return None
    return user


def safe_next(target: str | None) -> str | None:
    """A path of this site, or None: never another host, scheme, or a path that browsers read as one."""
    if not target or any(ord(ch) < 32 or ch == "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def require_roles(*roles: str):
    """Only staff of these roles; others get 403, and anybody not logged in goes to the login page."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = current_staff()
            if user is None:
                if g.get("staff") is not None:  # password given, second factor still missing
                    return redirect(url_for("auth.second_factor"))
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
