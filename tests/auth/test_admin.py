"""Account and unit administration: administrators only, CSRF on every change, every change audited."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.audit.log import verify
from feedback_app.auth.accounts import authenticate, create_unit
from feedback_app.core.models import AuditEntry, StaffUser, Unit
from tests.auth.helpers import PASSWORD, create_staff, csrf_of, login, session_cookie
from tests.conftest import make_settings

PAGES = [
    ("get", "/staff/admin/users"),
    ("get", "/staff/admin/users/new"),
    ("post", "/staff/admin/users/new"),
    ("post", "/staff/admin/users/1/disable"),
    ("post", "/staff/admin/users/1/enable"),
    ("post", "/staff/admin/users/1/reset-2fa"),
    ("get", "/staff/admin/units"),
    ("post", "/staff/admin/units"),
]


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


@pytest.fixture
def csrf_app(database_url, tmp_path):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def admin_client(csrf_app, session):
    create_staff(session, username="guan.li", role="admin", totp=True)
    client = csrf_app.test_client()
    assert path_of(login(client, "guan.li")) == "/staff/"
    return client


def token(client, path="/staff/admin/users") -> dict:
    return csrf_of(client.get(path).get_data(as_text=True))


@pytest.mark.parametrize("method, path", PAGES)
def test_anonymous_is_sent_to_login(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302 and path_of(response) == "/staff/login"


@pytest.mark.parametrize("role", ["clerk", "reviewer", "handler"])
def test_other_roles_are_forbidden(client, session, role):
    unit = create_unit(session, "区教育局") if role == "handler" else None
    create_staff(session, username="not.admin", role=role, unit=unit, totp=True)
    login(client, "not.admin")
    for method, path in PAGES:
        response = getattr(client, method)(path)
        assert response.status_code == 403, (method, path)
        assert "无权访问" in response.get_data(as_text=True)


def test_admin_without_second_factor_is_sent_to_it(client, session):
    create_staff(session, username="guan.li", role="admin", totp=True)
    client.post("/staff/login", data={"username": "guan.li", "password": PASSWORD})
    assert path_of(client.get("/staff/admin/users")) == "/staff/2fa"


def test_admin_creates_a_unit_and_a_handler_with_csrf(admin_client, session, settings, csrf_app):
    c = admin_client
    assert c.post("/staff/admin/units", data={"name": "区教育局"}).status_code == 400  # no token
    response = c.post("/staff/admin/units", data={"name": "区教育局", **token(c, "/staff/admin/units")})
    assert response.status_code == 303 and path_of(response) == "/staff/admin/units"
    page = c.get("/staff/admin/units").get_data(as_text=True)
    assert "已添加责任单位“区教育局”" in page and "<th scope=\"row\">区教育局</th>" in page
    session.rollback()
    session.expire_all()
    unit = session.scalars(select(Unit)).one()

    form = c.get("/staff/admin/users/new").get_data(as_text=True)
    assert 'type="radio"' in form and "承办人" in form and f'<option value="{unit.id}"' in form
    data = {"username": "Cheng.Ban", "display_name": "程办", "role": "handler", "unit": str(unit.id),
            "password": "initial password 1"}
    assert c.post("/staff/admin/users/new", data=data).status_code == 400  # no token
    response = c.post("/staff/admin/users/new", data={**data, **csrf_of(form)})
    assert response.status_code == 303 and path_of(response) == "/staff/admin/users"
    listing = c.get("/staff/admin/users").get_data(as_text=True)
    assert "已创建账号 cheng.ban（承办人）" in listing
    row = re.search(r'<th scope="row">cheng\.ban</th>(.*?)</tr>', listing, re.S).group(1)
    assert "程办" in row and "承办人" in row and "区教育局" in row and "启用" in row and "不需要" in row
    assert "initial password 1" not in listing

    session.rollback()

    session.expire_all()
    user = session.scalars(select(StaffUser).where(StaffUser.username == "cheng.ban")).one()
    assert user.unit_id == unit.id and authenticate(session, "cheng.ban", "initial password 1") is not None
    entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action.in_(["unit_created", "user_created"]))
                                   .order_by(AuditEntry.id)))
    assert [e.action for e in entries] == ["unit_created", "user_created"]
    assert json.loads(entries[1].details) == {"role": "handler", "unit": "区教育局", "username": "cheng.ban"}
    assert entries[1].actor == "guan.li"
    assert all("initial password 1" not in e.details for e in session.scalars(select(AuditEntry)))
    assert verify(session, settings).broken_id is None


def test_handler_without_unit_is_refused_next_to_the_field(admin_client, session):
    c = admin_client
    data = {"username": "cheng.ban", "role": "handler", "unit": "0", "password": "initial password 1",
            **token(c, "/staff/admin/users/new")}
    response = c.post("/staff/admin/users/new", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="unit-error"><span>承办人必须属于一个责任单位</span>' in html
    assert re.search(r'<select id="unit" name="unit" aria-describedby="unit-hint unit-error" aria-invalid="true">',
                     html)
    assert 'value="cheng.ban"' in html and "initial password 1" not in html
    session.rollback()
    session.expire_all()
    assert session.scalars(select(StaffUser).where(StaffUser.username == "cheng.ban")).first() is None


def test_new_user_form_errors(admin_client):
    c = admin_client
    response = c.post("/staff/admin/users/new", data={"username": "x", "role": "", "unit": "0", "password": "short",
                                                      **token(c, "/staff/admin/users/new")})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请选择角色" in html
    assert "用户名须为 3 至 64 位" in html and "密码至少 12 个字符，目前 5 个字符" in html  # all at once
    assert 'href="#role-0"' in html  # the summary links to the first radio button
    assert re.search(r'<fieldset class="field radios has-error" aria-describedby="role-hint role-error" '
                     r'aria-invalid="true">', html)


def test_duplicate_username_and_unit_are_refused(admin_client, session):
    c = admin_client
    r = c.post("/staff/admin/users/new", data={"username": "guan.li", "role": "clerk", "unit": "0",
                                               "password": "initial password 1", **token(c, "/staff/admin/users/new")})
    assert r.status_code == 400 and "用户名“guan.li”已被使用" in r.get_data(as_text=True)
    create_unit(session, "区教育局")
    session.commit()
    r = c.post("/staff/admin/units", data={"name": "区教育局", **token(c, "/staff/admin/units")})
    assert r.status_code == 400 and "已有名为“区教育局”的责任单位" in r.get_data(as_text=True)


def test_disable_enable_and_reset_second_factor(admin_client, csrf_app, session):
    c = admin_client
    target = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    victim = csrf_app.test_client()
    login(victim, "li.shenhe")
    copied = session_cookie(victim)

    assert c.post(f"/staff/admin/users/{target.id}/disable").status_code == 303  # no token: refused
    assert victim.get("/staff/password").status_code == 200
    r = c.post(f"/staff/admin/users/{target.id}/disable", data=token(c))
    assert r.status_code == 303
    page = c.get("/staff/admin/users").get_data(as_text=True)
    assert "已停用账号 li.shenhe" in page
    stranger = csrf_app.test_client()
    stranger.set_cookie("staff_session", copied, path="/staff")
    assert path_of(stranger.get("/staff/password")) == "/staff/login"
    assert login(csrf_app.test_client(), "li.shenhe").status_code == 400

    c.post(f"/staff/admin/users/{target.id}/enable", data=token(c))
    assert path_of(login(csrf_app.test_client(), "li.shenhe")) == "/staff/"

    c.post(f"/staff/admin/users/{target.id}/reset-2fa", data=token(c))
    session.rollback()
    session.expire_all()
    user = session.get(StaffUser, target.id)
    assert user.totp_secret is None and user.totp_confirmed_at is None
    fresh = csrf_app.test_client()
    r = fresh.post("/staff/login", data={"username": "li.shenhe", "password": PASSWORD,
                                         **csrf_of(fresh.get("/staff/login").get_data(as_text=True))})
    assert path_of(r) == "/staff/2fa/enrol"

    actions = [a for a in session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))
               if a in {"user_disabled", "user_enabled", "totp_reset"}]
    assert actions == ["user_disabled", "user_enabled", "totp_reset"]


def test_admin_cannot_disable_themselves(admin_client, session):
    c = admin_client
    me = session.scalars(select(StaffUser).where(StaffUser.username == "guan.li")).one()
    c.post(f"/staff/admin/users/{me.id}/disable", data=token(c))
    assert "不能停用自己的账号" in c.get("/staff/admin/users").get_data(as_text=True)
    session.rollback()
    session.expire_all()
    assert session.get(StaffUser, me.id).active


def test_unknown_user_is_404(admin_client):
    assert admin_client.post("/staff/admin/users/999/disable", data=token(admin_client)).status_code == 404


def test_user_list_shows_roles_units_and_second_factor(admin_client, session):
    unit = create_unit(session, "区教育局")
    create_staff(session, username="cheng.ban", role="handler", unit=unit, display_name="程办")
    create_staff(session, username="li.shenhe", role="reviewer")
    html = admin_client.get("/staff/admin/users").get_data(as_text=True)
    assert "<caption" in html and '<th scope="col">双重验证</th>' in html
    reviewer = re.search(r'<th scope="row">li\.shenhe</th>(.*?)</tr>', html, re.S).group(1)
    assert "审核员" in reviewer and "未设置" in reviewer
    admin = re.search(r'<th scope="row">guan\.li</th>(.*?)</tr>', html, re.S).group(1)
    assert "管理员" in admin and "已启用" in admin
    assert html.count('id="csrf_token"') <= 1  # one token field id per page
