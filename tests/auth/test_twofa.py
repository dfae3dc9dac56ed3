"""The second factor: who needs it, enrolment with a QR code, codes accepted once, ``next`` kept."""
from __future__ import annotations

import json
import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.audit.log import verify
from feedback_app.core.models import AuditEntry, StaffSession, StaffUser, Unit
from tests.auth.helpers import PASSWORD, create_staff, csrf_of, login, session_cookie
from tests.conftest import make_settings

PROTECTED = "/staff/password"


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def password_step(client, username: str, next: str | None = None):
    path = "/staff/login" + (f"?next={next}" if next else "")
    return client.post(path, data={"username": username, "password": PASSWORD})


def unused_code(secret: str, last_step: int | None) -> str:
    step = int(time.time()) // 30
    if last_step is not None and last_step >= step:
        step = last_step + 1
    return pyotp.TOTP(secret).at(step * 30)


@pytest.fixture
def unit(session):
    u = Unit(name="区教育局")
    session.add(u)
    session.commit()
    return u


@pytest.mark.parametrize("role, needed", [("clerk", False), ("handler", False), ("reviewer", True), ("admin", True)])
def test_who_needs_a_second_factor_by_default(client, session, unit, role, needed):
    create_staff(session, username="some.one", role=role, unit=unit if role == "handler" else None, totp=True)
    response = password_step(client, "some.one")
    assert response.status_code == 303
    assert path_of(response) == ("/staff/2fa" if needed else "/staff/")


def test_nobody_needs_it_when_no_role_is_configured(database_url, tmp_path, session):
    app = create_app(make_settings(database_url, tmp_path, twofa_roles=""))
    try:
        create_staff(session, username="li.shenhe", role="reviewer")
        create_staff(session, username="guan.li", role="admin")
        for name in ("li.shenhe", "guan.li"):
            client = app.test_client()
            assert path_of(password_step(client, name)) == "/staff/"
            assert client.get(PROTECTED).status_code == 200
    finally:
        app.extensions["db_engine"].dispose()


def test_clerk_needs_it_when_configured(database_url, tmp_path, session):
    app = create_app(make_settings(database_url, tmp_path, twofa_roles="clerk"))
    try:
        create_staff(session, username="deng.ji", role="clerk")
        create_staff(session, username="li.shenhe", role="reviewer")
        assert path_of(password_step(app.test_client(), "deng.ji")) == "/staff/2fa/enrol"
        assert path_of(password_step(app.test_client(), "li.shenhe")) == "/staff/"
    finally:
        app.extensions["db_engine"].dispose()


def test_password_alone_does_not_open_staff_pages(client, session):
    create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    password_step(client, "li.shenhe")
    response = client.get(PROTECTED)
    assert response.status_code == 302 and path_of(response) == "/staff/2fa"


def test_second_factor_with_a_valid_code(client, session):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    password_step(client, "li.shenhe")
    page = client.get("/staff/2fa").get_data(as_text=True)
    assert '<label for="code">验证码' in page and 'autocomplete="one-time-code"' in page
    assert 'inputmode="numeric"' in page
    response = client.post("/staff/2fa", data={"code": pyotp.TOTP(user.totp_secret).now()})
    assert response.status_code == 303 and path_of(response) == "/staff/"
    assert client.get(PROTECTED).status_code == 200
    session.rollback()
    session.expire_all()
    assert session.scalars(select(StaffSession)).one().second_factor_at is not None


def test_wrong_code_is_refused_in_chinese_and_audited(client, session, settings):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    password_step(client, "li.shenhe")
    right = pyotp.TOTP(user.totp_secret).now()
    wrong = "000000" if right != "000000" else "111111"
    response = client.post("/staff/2fa", data={"code": wrong})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "验证码不正确或已使用过" in html
    assert re.search(r'id="code"[^>]*aria-describedby="code-hint code-error" aria-invalid="true"', html)
    assert client.get(PROTECTED).status_code == 302
    session.rollback()
    session.expire_all()
    actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["login", "second_factor_failed"]
    assert all(wrong not in e.details and right not in e.details for e in session.scalars(select(AuditEntry)))
    assert verify(session, settings).broken_id is None


def test_a_replayed_code_is_refused(client, session):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    code = pyotp.TOTP(user.totp_secret).now()
    password_step(client, "li.shenhe")
    assert path_of(client.post("/staff/2fa", data={"code": code})) == "/staff/"
    other = client.application.test_client()  # someone who saw the code and knows the password
    password_step(other, "li.shenhe")
    response = other.post("/staff/2fa", data={"code": code})
    assert response.status_code == 400
    assert "验证码不正确或已使用过" in response.get_data(as_text=True)
    assert other.get(PROTECTED).status_code == 302


def test_next_travels_through_the_second_factor_in_the_signed_session(client, session):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    response = password_step(client, "li.shenhe", next="/staff/password")
    assert response.headers["Location"] == "/staff/2fa"  # not in the URL any more
    response = client.post("/staff/2fa", data={"code": pyotp.TOTP(user.totp_secret).now()})
    assert response.headers["Location"] == "/staff/password"


def test_unsafe_next_is_dropped_before_the_second_factor(client, session):
    create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    response = login(client, "li.shenhe", next="//evil.example")
    assert response.headers["Location"] == "/staff/"


def test_second_factor_page_without_a_password_goes_to_login(client):
    assert path_of(client.get("/staff/2fa")) == "/staff/login"
    assert path_of(client.post("/staff/2fa", data={"code": "123456"})) == "/staff/login"
    assert path_of(client.get("/staff/2fa/enrol")) == "/staff/login"


def test_enrolment_with_a_qr_code(client, session, settings):
    create_staff(session, username="li.shenhe", role="reviewer")
    response = password_step(client, "li.shenhe", next="/staff/password")
    assert response.headers["Location"] == "/staff/2fa/enrol"
    assert path_of(client.get("/staff/2fa")) == "/staff/2fa/enrol"
    assert path_of(client.get(PROTECTED)) == "/staff/2fa"  # not a full login yet

    page = client.get("/staff/2fa/enrol")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert re.search(r'<svg [^>]*role="img"', html) or "data:image/png" in html
    assert "style=" not in html
    shown = re.search(r'id="totp-secret"[^>]*>([^<]+)<', html).group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", shown)
    secret = shown.replace(" ", "")
    session.rollback()
    session.expire_all()
    user = session.scalars(select(StaffUser)).one()
    assert user.totp_secret == secret and user.totp_confirmed_at is None
    assert re.search(r'id="totp-secret"[^>]*>([^<]+)<', client.get("/staff/2fa/enrol").get_data(as_text=True)
                     ).group(1) == shown  # a reload shows the same secret

    bad = client.post("/staff/2fa/enrol", data={"code": "12345"})
    assert bad.status_code == 400 and "验证码不正确" in bad.get_data(as_text=True)
    assert shown in bad.get_data(as_text=True)

    response = client.post("/staff/2fa/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 303 and response.headers["Location"] == "/staff/password"
    assert client.get(PROTECTED).status_code == 200
    session.rollback()
    session.expire_all()
    user = session.scalars(select(StaffUser)).one()
    assert user.totp_confirmed_at is not None
    assert path_of(client.get("/staff/2fa/enrol")) == "/staff/"  # nothing left to enrol
    actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["login", "second_factor_failed", "totp_enrolled"]
    assert all(secret not in e.details for e in session.scalars(select(AuditEntry)))
    assert verify(session, settings).broken_id is None

    # next time: the code, no enrolment
    other = client.application.test_client()
    assert path_of(password_step(other, "li.shenhe")) == "/staff/2fa"
    assert path_of(other.get("/staff/2fa/enrol")) == "/staff/2fa"


def test_enrolment_is_not_offered_to_roles_without_a_second_factor(client, session):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    assert path_of(client.get("/staff/2fa/enrol")) == "/staff/"
    session.rollback()
    session.expire_all()
    assert session.scalars(select(StaffUser)).one().totp_secret is None


def test_helper_login_enrols_and_logs_in_repeatedly(client, session):
    create_staff(session, username="guan.li", role="admin")
    assert path_of(login(client, "guan.li")) == "/staff/"
    for _ in range(3):  # the same 30 seconds: the helper avoids the replay protection
        c = client.application.test_client()
        assert path_of(login(c, "guan.li")) == "/staff/"
        assert c.get("/staff/admin/users").status_code == 200


def test_helper_login_with_csrf_on(database_url, tmp_path, session):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        secret = pyotp.random_base32()
        create_staff(session, username="li.shenhe", role="reviewer", totp=secret)
        client = app.test_client()
        assert path_of(login(client, "li.shenhe", totp_secret=secret)) == "/staff/"
        cookie = session_cookie(client)
        assert cookie
        page = client.get(PROTECTED)
        assert page.status_code == 200 and csrf_of(page.get_data(as_text=True))
    finally:
        app.extensions["db_engine"].dispose()


def test_second_factor_audit_details(client, session):
    create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    login(client, "li.shenhe")
    session.rollback()
    session.expire_all()
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [e.action for e in entries] == ["login", "second_factor"]
    assert json.loads(entries[0].details) == {"second_factor_pending": True}
