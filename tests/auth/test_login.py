"""Logging in and out: answers, session ids, ending sessions on the server, timeouts, ``next``, audit."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from feedback_app.app import create_app
from feedback_app.audit.log import verify
from feedback_app.auth import accounts as service
from feedback_app.core.database import utcnow
from feedback_app.core.models import AuditEntry, StaffSession
from feedback_app.web.access import COOKIE
from tests.auth.helpers import PASSWORD, create_staff, csrf_of, login, logout, session_cookie
from tests.conftest import make_settings

PROTECTED = "/staff/password"  # any page for a logged-in user


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def location(response) -> str:
    parts = urlsplit(response.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def refused(client, cookie_value: str) -> bool:
    """Whether a request carrying this staff cookie is sent to the login page."""
    client.set_cookie(COOKIE, cookie_value, path="/staff")
    response = client.get(PROTECTED)
    return response.status_code in (302, 303) and path_of(response) == "/staff/login"


def audit_actions(session) -> list[str]:
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_login_page_fields(client):
    html = client.get("/staff/login").get_data(as_text=True)
    names = set(re.findall(r'<input[^>]* name="([^"]+)"', html))
    assert names == {"username", "password"}
    assert '<label for="username">用户名' in html and '<label for="password">密码' in html
    assert 'type="password"' in html and 'autocomplete="current-password"' in html


def test_login_page_has_a_csrf_token_when_csrf_is_on(database_url, tmp_path):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        client = app.test_client()
        html = client.get("/staff/login").get_data(as_text=True)
        assert set(re.findall(r'<input[^>]* name="([^"]+)"', html)) == {"username", "password", "csrf_token"}
        response = client.post("/staff/login", data={"username": "x", "password": "y"})
        assert response.status_code == 400
        assert "页面已过期" in response.get_data(as_text=True)
    finally:
        app.extensions["db_engine"].dispose()


def test_clerk_logs_in(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    response = login(client, "deng.ji")
    assert response.status_code == 303 and path_of(response) == "/staff/"
    cookie = client.get_cookie(COOKIE, path="/staff")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert client.get(PROTECTED).status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_username_in_another_case_or_width_logs_in(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    assert path_of(login(client, " ＤＥＮＧ.ji ")) == "/staff/"


def _normalized(response, typed: str) -> str:
    return response.get_data(as_text=True).replace(f'value="{typed}"', 'value="…"')


def test_unknown_user_wrong_password_and_disabled_account_get_the_same_answer(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    off = create_staff(session, username="ting.yong", role="clerk")
    service.set_active(session, off, False)
    session.commit()
    answers = [
        (login(client, "no.such.user"), "no.such.user"),
        (login(client, "deng.ji", "wrong password here"), "deng.ji"),
        (login(client, "ting.yong"), "ting.yong"),  # the right password
    ]
    bodies = {_normalized(r, typed) for r, typed in answers}
    assert {r.status_code for r, _ in answers} == {400}
    assert len(bodies) == 1
    body = bodies.pop()
    assert "用户名或密码不正确" in body
    assert PASSWORD not in body and "wrong password here" not in body
    assert session_cookie(client) is None
    for r, _ in answers:
        assert "Set-Cookie" not in r.headers or COOKIE not in r.headers["Set-Cookie"]


def test_failed_login_keeps_the_typed_username_and_never_the_password(client):
    response = client.post("/staff/login", data={"username": "deng.ji", "password": "secret typed password"})
    html = response.get_data(as_text=True)
    assert 'name="username" value="deng.ji"' in html
    assert "secret typed password" not in html


def test_empty_fields_are_marked_next_to_the_field(client):
    response = client.post("/staff/login", data={"username": "", "password": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="username-error"><span>请填写用户名</span>' in html
    assert re.search(r'id="username"[^>]*aria-describedby="username-error" aria-invalid="true"', html)
    assert re.search(r'id="password"[^>]*aria-invalid="true"', html)


def test_login_gives_a_new_session_id(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    client.set_cookie(COOKIE, "planted-by-someone-else", path="/staff")
    login(client, "deng.ji")
    first = session_cookie(client)
    assert first and first != "planted-by-someone-else"
    login(client, "deng.ji")
    second = session_cookie(client)
    assert second != first
    other = client.application.test_client()
    assert refused(other, first)  # the earlier session of this browser ended at the new login
    assert not refused(other, second)


def test_session_table_keeps_only_a_hash_of_the_cookie(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    token = session_cookie(client)
    ids = list(session.scalars(select(StaffSession.id)))
    assert len(ids) == 1 and token not in ids[0] and len(ids[0]) == 64


def test_logout_ends_the_session_on_the_server(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    copied = session_cookie(client)
    response = logout(client)
    assert response.status_code == 303 and path_of(response) == "/staff/login"
    assert session_cookie(client) is None
    assert "您已安全退出" in client.get("/staff/login").get_data(as_text=True)
    assert refused(client.application.test_client(), copied)
    session.rollback()
    session.expire_all()
    row = session.scalars(select(StaffSession)).one()
    assert row.ended_at is not None


def test_logout_asks_for_confirmation_on_get_and_needs_post(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    page = client.get("/staff/logout")
    assert page.status_code == 200 and 'action="/staff/logout"' in page.get_data(as_text=True)
    assert client.get(PROTECTED).status_code == 200  # a GET did not log out


def test_logout_with_csrf_on(database_url, tmp_path, session):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        create_staff(session, username="deng.ji", role="clerk")
        client = app.test_client()
        assert path_of(login(client, "deng.ji")) == "/staff/"
        copied = session_cookie(client)
        bad = client.post("/staff/logout", data={})
        assert bad.status_code == 400 and "请再次点击" in bad.get_data(as_text=True)
        assert not refused(app.test_client(), copied)
        html = client.get(PROTECTED).get_data(as_text=True)  # the header's logout form
        assert path_of(client.post("/staff/logout", data=csrf_of(html))) == "/staff/login"
        assert refused(app.test_client(), copied)
    finally:
        app.extensions["db_engine"].dispose()


def test_disabling_the_account_kills_a_copied_cookie(client, session):
    user = create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    copied = session_cookie(client)
    service.set_active(session, user, False)
    session.commit()
    assert refused(client.application.test_client(), copied)


def test_a_disabled_flag_alone_also_stops_the_session(client, session):
    user = create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    session.execute(update(type(user)).where(type(user).id == user.id).values(active=False))
    session.commit()
    assert refused(client, session_cookie(client))


def test_idle_sessions_end(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    copied = session_cookie(client)
    session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=29)))
    session.commit()
    assert client.get(PROTECTED).status_code == 200  # and this request counts as activity
    session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    session.commit()
    assert refused(client, copied)
    session.rollback()
    session.expire_all()
    assert session.scalars(select(StaffSession)).one().ended_at is not None


def test_idle_limit_follows_the_setting(database_url, tmp_path, session):
    app = create_app(make_settings(database_url, tmp_path, staff_idle_minutes=5))
    try:
        create_staff(session, username="deng.ji", role="clerk")
        client = app.test_client()
        login(client, "deng.ji")
        session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=6)))
        session.commit()
        assert refused(client, session_cookie(client))
    finally:
        app.extensions["db_engine"].dispose()


def test_sessions_end_after_the_absolute_limit_even_when_active(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    session.execute(update(StaffSession).values(created_at=utcnow() - timedelta(hours=11, minutes=59)))
    session.commit()
    assert client.get(PROTECTED).status_code == 200
    session.execute(update(StaffSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1),
                                                last_seen_at=utcnow()))
    session.commit()
    assert refused(client, session_cookie(client) or "")


def test_protected_page_sends_anonymous_users_to_login_with_next(client):
    response = client.get("/staff/password")
    assert response.status_code == 302
    assert location(response) == "/staff/login?next=/staff/password"


@pytest.mark.parametrize("target", ["/staff/password", "/staff/submissions/HP2026-000001?tab=notes"])
def test_safe_next_is_followed(client, session, target):
    create_staff(session, username="deng.ji", role="clerk")
    response = login(client, "deng.ji", next=target)
    assert location(response) == target


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "/\\evil.example", "\\\\evil", "https://evil.example", "javascript:alert(1)",
     "/staff/\x07bell", "/staff/%0d%0aSet-Cookie:x", "http:/evil.example"],
)
def test_unsafe_next_falls_back_to_the_staff_home(client, session, target):
    create_staff(session, username="deng.ji", role="clerk")
    response = login(client, "deng.ji", next=target)
    if target == "/staff/%0d%0aSet-Cookie:x":  # encoded: a harmless path of this site
        assert location(response).startswith("/staff/")
        assert "\n" not in response.headers["Location"]
        return
    assert response.headers["Location"] == "/staff/"


def test_login_page_for_a_logged_in_user_goes_on(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    assert path_of(client.get("/staff/login")) == "/staff/"
    assert location(client.get("/staff/login?next=/staff/password")) == "/staff/password"
    assert client.get("/staff/login?next=//evil.example").headers["Location"] == "/staff/"


def test_audit_records_logins_failures_and_logouts(client, session, settings):
    create_staff(session, username="deng.ji", role="clerk")
    long_name = "x" * 100
    login(client, long_name, "typed password 1")
    login(client, "deng.ji", "typed password 2")
    login(client, "deng.ji")
    logout(client)
    assert audit_actions(session) == ["login_failed", "login_failed", "login", "logout"]
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert json.loads(entries[0].details) == {"username": "x" * 64}
    assert json.loads(entries[1].details) == {"username": "deng.ji"}
    assert entries[2].actor == "deng.ji" and entries[2].actor_id is not None
    assert entries[2].client == "127.0.0.1"
    for e in entries:
        assert "typed password" not in e.details and PASSWORD not in e.details
    assert verify(session, settings).broken_id is None
