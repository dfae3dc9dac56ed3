"""Changing one's own password ends every other session."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import select

from feedback_app.audit.log import verify
from feedback_app.core.models import AuditEntry, StaffSession
from feedback_app.web.access import COOKIE
from tests.auth.helpers import PASSWORD, create_staff, login, session_cookie

NEW = "a brand new password"


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def change(client, current=PASSWORD, new=NEW, confirm=None):
    return client.post("/staff/password", data={
        "current_password": current, "new_password": new, "new_password_confirm": NEW if confirm is None else confirm,
    })


def refused(app, cookie_value: str) -> bool:
    c = app.test_client()
    c.set_cookie(COOKIE, cookie_value, path="/staff")
    r = c.get("/staff/password")
    return r.status_code == 302 and path_of(r) == "/staff/login"


def test_page_fields(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    html = client.get("/staff/password").get_data(as_text=True)
    for name, auto in (("current_password", "current-password"), ("new_password", "new-password"),
                       ("new_password_confirm", "new-password")):
        assert re.search(rf'type="password" id="{name}" name="{name}" value=""[^>]*autocomplete="{auto}"', html)


def test_change_ends_other_sessions_and_keeps_this_browser(client, session, settings):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    elsewhere = client.application.test_client()
    login(elsewhere, "deng.ji")
    before, other = session_cookie(client), session_cookie(elsewhere)

    response = change(client)
    assert response.status_code == 303 and path_of(response) == "/staff/"
    after = session_cookie(client)
    assert after and after != before
    assert client.get("/staff/password").status_code == 200
    assert refused(client.application, before)
    assert refused(client.application, other)
    assert path_of(elsewhere.get("/staff/password")) == "/staff/login"

    assert path_of(login(client.application.test_client(), "deng.ji", NEW)) == "/staff/"
    assert login(client.application.test_client(), "deng.ji", PASSWORD).status_code == 400

    session.rollback()

    session.expire_all()
    actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions.count("password_changed") == 1
    assert all(NEW not in e.details and PASSWORD not in e.details for e in session.scalars(select(AuditEntry)))
    assert verify(session, settings).broken_id is None
    open_rows = session.scalars(select(StaffSession).where(StaffSession.ended_at.is_(None))).all()
    assert len(open_rows) == 2  # this browser's new session, and the test login with the new password


def test_change_keeps_the_second_factor_of_this_browser(client, session):
    create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    login(client, "li.shenhe")
    assert path_of(change(client)) == "/staff/"
    assert client.get("/staff/password").status_code == 200


def test_wrong_current_password(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    before = session_cookie(client)
    response = change(client, current="not my password")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="current_password-error"><span>当前密码不正确</span>' in html
    assert "not my password" not in html and NEW not in html
    assert session_cookie(client) == before
    session.rollback()
    session.expire_all()
    assert "password_change_failed" in session.scalars(select(AuditEntry.action)).all()


def test_new_password_rules(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    short = change(client, new="short", confirm="short")
    assert short.status_code == 400 and "密码至少 12 个字符，目前 5 个字符" in short.get_data(as_text=True)
    mismatch = change(client, confirm="something else entirely")
    assert mismatch.status_code == 400 and "两次输入的新密码不一致" in mismatch.get_data(as_text=True)
    same = change(client, new=PASSWORD, confirm=PASSWORD)
    assert same.status_code == 400 and "新密码不能与当前密码相同" in same.get_data(as_text=True)
    html = short.get_data(as_text=True)
    assert re.search(r'id="new_password"[^>]*aria-describedby="new_password-hint new_password-error" '
                     r'aria-invalid="true"', html)
    assert login(client.application.test_client(), "deng.ji").status_code == 303  # unchanged


def test_anonymous_is_sent_to_login(client):
    r = client.post("/staff/password", data={"current_password": "x", "new_password": NEW,
                                             "new_password_confirm": NEW})
    assert r.status_code == 302 and path_of(r) == "/staff/login"
