"""Who is asking, on a staff page: the login behind the cookie, and the gate every staff view passes.

The logins themselves (kept on the server, ended on logout, password change or disabling) are
``feedback_app.auth.logins``; this module reads the cookie, keeps it, and turns away who may not pass.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial, wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from feedback_app import current
from feedback_app.auth import logins
from feedback_app.core.database import utcnow
from feedback_app.core.models import StaffSession, StaffUser
from feedback_app.core.permissions import Actor, may, roles_for
from feedback_app.web.transaction import after_response, get_session

COOKIE = "staff_session"


def staff_cookie() -> tuple[str, str]:
    """The staff cookie's name and path. Under https it is a ``__Host-`` cookie (browsers keep it only if
    Secure, for Path=/ and this host alone: no other site or subdomain can plant or overwrite it); the
    prefix requires Path=/, and a request outside /staff ignores it."""
    if current_app.config["SESSION_COOKIE_SECURE"]:
        return "__Host-" + COOKIE, "/"
    return COOKIE, "/staff"


def needs_second_factor(user: StaffUser) -> bool:
    return logins.needs_second_factor(current.settings(), user)


def start_session(db: Session, user: StaffUser, *, second_factor: bool = False) -> str:
    """A fresh login for ``user`` (never reuse one from before login); its token goes in the cookie."""
    token = logins.open_login(db, user, request.remote_addr, second_factor=second_factor)
    g.staff_cookie = ("set", token)
    return token


def end_session(db: Session) -> None:
    row: StaffSession | None = g.get("staff_session_row")
    if row is not None:
        logins.end_login(db, row)
    g.staff_cookie = ("clear", None)


def _load() -> None:
    """Who is asking: the login of the cookie, read only (what changes is written after the response)."""
    g.staff = None
    g.staff_session_row = None
    token = request.cookies.get(staff_cookie()[0])
    if not token or not request.path.startswith("/staff"):
        return
    now = utcnow()
    found = logins.find_login(get_session(), current.settings(), token, now)
    if found.lapsed is not None:
        after_response(partial(logins.lapse, session_id=found.lapsed, at=now))
    row = found.row
    if row is None:
        g.staff_cookie = ("clear", None)
        return
    if now - row.last_seen_at > logins.SEEN_EVERY:  # not on every click
        after_response(partial(logins.seen, session_id=row.id, at=now))
    g.staff_session_row = row
    g.staff = row.user


def _write_cookie(response):
    action, token = g.pop("staff_cookie", (None, None))
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    name, path = staff_cookie()
    if action == "set":
        response.set_cookie(name, token, httponly=True, samesite="Strict", secure=secure, path=path)
    elif action == "clear":
        response.delete_cookie(name, path=path, httponly=True, samesite="Strict", secure=secure)
    if request.path.startswith("/staff"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_staff_sessions(app: Flask) -> None:
    app.before_request(_load)
    app.after_request(_write_cookie)
    app.context_processor(lambda: {"staff": current_staff()})
    app.add_template_global(may_here, "may")


def actor() -> Actor:
    """The logged-in staff member, acting from this request's address."""
    user = current_staff()
    if user is None:
        abort(403)
    return Actor(user, request.remote_addr)


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


ViewFunc = Callable[..., ResponseReturnValue]


def require(action: str) -> Callable[[ViewFunc], ViewFunc]:
    """Only staff whose role may take ``action`` (``permissions.PERMISSIONS``): others get 403, and anybody
    not logged in goes to the login page. The view keeps the action as ``permission``: the access-matrix
    test reads it."""
    roles_for(action)  # an action missing from the table fails here, when the module is imported

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            user = current_staff()
            if user is None:
                if g.get("staff") is not None:  # password given, second factor still missing
                    return redirect(url_for("auth.second_factor"))
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not may(user.role, action):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = action  # type: ignore[attr-defined]
        return wrapped

    return decorator


def public(view: ViewFunc) -> ViewFunc:
    """A page open to everybody (it decides itself what a visitor may do there)."""
    view.permission = None  # type: ignore[attr-defined]
    return view


def may_here(action: str) -> bool:
    """Whether the logged-in staff member may take ``action``: for templates, as ``may(...)``."""
    user = current_staff()
    return user is not None and may(user.role, action)
