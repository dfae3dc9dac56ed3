"""Staff accounts and logins for tests anywhere in the suite.

    from tests.auth.helpers import create_staff, login

    reviewer = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    response = login(client, "li.shenhe")          # password, then the code from the authenticator
    assert response.headers["Location"] == "/staff/"

``login`` works with CSRF on or off, and for roles with or without a second factor; it enrols an
account that has no confirmed TOTP secret yet.
"""
from __future__ import annotations

import re
import time
from urllib.parse import urlencode, urlsplit

import pyotp
from sqlalchemy import update

from feedback_app.auth import totp as totp_mod
from feedback_app.auth.accounts import create_user
from feedback_app.core.database import utcnow
from feedback_app.core.models import Role, StaffUser, Unit

PASSWORD = "correct horse battery"
COOKIE = "staff_session"

_CSRF = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]*)"')
_SECRET = re.compile(r'id="totp-secret"[^>]*>([^<]+)<')


def create_staff(
    session,
    *,
    username: str,
    role: Role | str,
    unit: Unit | None = None,
    password: str = PASSWORD,
    totp: str | bool | None = None,
    display_name: str = "",
) -> StaffUser:
    """A committed, active staff account.

    ``totp``: None leaves the account without a second factor (it enrols at its first login if its
    role needs one); True stores a fresh confirmed secret; a base32 string stores that secret, confirmed.
    The secret is ``user.totp_secret``.
    """
    user = create_user(session, username, password, role, unit=unit, display_name=display_name)
    if totp:
        user.totp_secret = totp if isinstance(totp, str) else totp_mod.new_secret()
        user.totp_confirmed_at = utcnow()
    session.commit()
    return user


def create_team(session) -> dict:
    """Two units ("a", "b") and a staff member of each role; the handler works in unit a, the other
    handler in unit b."""
    from feedback_app.auth.accounts import create_unit

    unit_a, unit_b = create_unit(session, "区发展和改革局"), create_unit(session, "区住房和城乡建设局")
    session.commit()
    return {
        "a": unit_a,
        "b": unit_b,
        "reviewer": create_staff(session, username="shen.he", role="reviewer", totp=True),
        "admin": create_staff(session, username="guan.li", role="admin", totp=True),
        "clerk": create_staff(session, username="deng.ji", role="clerk"),
        "handler": create_staff(session, username="cheng.ban", role="handler", unit=unit_a),
        "other_handler": create_staff(session, username="qi.ta", role="handler", unit=unit_b),
    }


def csrf_of(html: str) -> dict[str, str]:
    """The page's CSRF token as form data ({} when CSRF is off)."""
    match = _CSRF.search(html)
    return {"csrf_token": match.group(1)} if match else {}


def _post_form(client, path: str, data: dict[str, str]):
    page = client.get(path)
    html = page.get_data(as_text=True) if page.status_code == 200 else ""
    return client.post(path, data={**csrf_of(html), **data}), html


def _user_row(client, username: str) -> StaffUser | None:
    factory = client.application.extensions["db_sessionmaker"]
    with factory() as s:
        return s.query(StaffUser).filter_by(username=username.strip().lower()).one_or_none()


def fresh_code(client, username: str, secret: str) -> str:
    """A code the server will accept now: for a time step not used yet by this account.

    Tests that log the same account in several times within one 30-second step would otherwise
    trip the replay protection; when both the current and the next step are used, the account's
    last step is forgotten.
    """
    user = _user_row(client, username)
    now = time.time()
    step = int(now) // totp_mod.INTERVAL
    last = user.totp_last_step if user is not None else None
    for candidate in (step, step + 1):
        if last is None or candidate > last:
            return pyotp.TOTP(secret).at(candidate * totp_mod.INTERVAL)
    factory = client.application.extensions["db_sessionmaker"]
    with factory() as s:
        s.execute(update(StaffUser).where(StaffUser.id == user.id).values(totp_last_step=None))
        s.commit()
    return pyotp.TOTP(secret).at(step * totp_mod.INTERVAL)


def login(client, username: str, password: str = PASSWORD, *, totp_secret: str | None = None,
          next: str | None = None):
    """Log in through the pages, the second factor included; returns the last response (not followed).

    On success that is the redirect to ``next`` or the staff home; on failure, the page that refused.
    Without ``totp_secret`` the secret is read from the database (or, when enrolling, from the page).
    """
    path = "/staff/login" + ("?" + urlencode({"next": next}) if next else "")
    response, _ = _post_form(client, path, {"username": username, "password": password})
    for _ in range(3):
        if response.status_code not in (302, 303):
            return response
        target = urlsplit(response.headers["Location"]).path
        if target == "/staff/2fa":
            secret = totp_secret or _user_row(client, username).totp_secret
            response, _ = _post_form(client, target, {"code": fresh_code(client, username, secret)})
        elif target == "/staff/2fa/enrol":
            html = client.get(target).get_data(as_text=True)
            secret = _SECRET.search(html).group(1).replace(" ", "")
            response = client.post(target, data={**csrf_of(html), "code": fresh_code(client, username, secret)})
        else:
            return response
    return response


def logout(client):
    """POST the logout form; returns the redirect to the login page."""
    page = client.get("/staff/logout")
    return client.post("/staff/logout", data=csrf_of(page.get_data(as_text=True)))


def session_cookie(client) -> str | None:
    """The value of the staff session cookie this client holds."""
    cookie = client.get_cookie(COOKIE, path="/staff")
    return cookie.value if cookie is not None else None


def client_as(app, user):
    """A client of ``app`` logged in as ``user``, with the second factor where the role needs one."""
    client = app.test_client()
    response = login(client, user.username)
    assert response.status_code in (302, 303), response
    return client
