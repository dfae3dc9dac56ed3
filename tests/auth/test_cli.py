"""``feedback-app staff …`` and ``feedback-app unit …``."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from feedback_app.audit.log import verify
from feedback_app.auth.accounts import authenticate
from feedback_app.core.models import AuditEntry, StaffUser
from tests.auth.helpers import login

PASSWORD = "a long initial password"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def user_named(session, username):
    session.rollback()
    session.expire_all()
    return session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()


def test_add_a_clerk_with_the_password_on_stdin(cli, session, client):
    result = cli("staff", "add", "deng.ji", "--role", "clerk", "--name", "邓记", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "已创建账号 deng.ji（登记员）" in result.output
    assert "密钥" not in result.output and "otpauth://" not in result.output
    assert PASSWORD not in result.output
    user = user_named(session, "deng.ji")
    assert user.display_name == "邓记" and user.totp_secret is None
    assert authenticate(session, "deng.ji", PASSWORD) is not None
    assert urlsplit(login(client, "deng.ji", PASSWORD).headers["Location"]).path == "/staff/"


def test_add_a_reviewer_prints_a_totp_secret(cli, session, client, settings):
    result = cli("staff", "add", "li.shenhe", "--role", "reviewer", input=PASSWORD + "\r\n")
    assert result.exit_code == 0, result.output
    shown = re.search(r"密钥：([A-Z2-7 ]+)", result.output).group(1).replace(" ", "")
    uri = re.search(r"(otpauth://\S+)", result.output).group(1)
    assert pyotp.parse_uri(uri).secret == shown
    user = user_named(session, "li.shenhe")
    assert user.totp_secret == shown and user.totp_confirmed_at is not None
    response = login(client, "li.shenhe", PASSWORD, totp_secret=shown)
    assert urlsplit(response.headers["Location"]).path == "/staff/"
    details = " ".join(session.scalars(select(AuditEntry.details)))
    assert shown not in details and PASSWORD not in details
    assert verify(session, settings).broken_id is None


def test_handler_needs_an_existing_unit(cli, session):
    result = cli("staff", "add", "cheng.ban", "--role", "handler", input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert "承办人必须属于一个责任单位" in result.output
    result = cli("staff", "add", "cheng.ban", "--role", "handler", "--unit", "区教育局", input=PASSWORD + "\n")
    assert result.exit_code != 0 and "找不到责任单位：区教育局" in result.output
    assert user_named(session, "cheng.ban") is None

    assert cli("unit", "add", "区教育局").output.strip() == "已添加责任单位：区教育局"
    result = cli("staff", "add", "cheng.ban", "--role", "handler", "--unit", "区教育局", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert user_named(session, "cheng.ban").unit.name == "区教育局"


def test_errors_are_in_chinese_with_a_non_zero_exit(cli):
    cases = [
        (("staff", "add", "deng.ji", "--role", "clerk"), "short\n", "密码至少 12 个字符"),
        (("staff", "add", "deng.ji", "--role", "clerk"), "\n", "未读到密码"),
        (("staff", "add", "deng.ji", "--role", "boss"), PASSWORD + "\n", "角色无效"),
        (("staff", "add", "x", "--role", "clerk"), PASSWORD + "\n", "用户名须为"),
        (("staff", "disable", "nobody"), None, "找不到账号：nobody"),
    ]
    for args, stdin, message in cases:
        result = cli(*args, input=stdin)
        assert result.exit_code == 1, args
        assert message in result.output, (args, result.output)


def test_unit_add_and_list(cli):
    assert cli("unit", "list").output.strip() == "还没有责任单位"
    assert cli("unit", "add", "区教育局").exit_code == 0
    again = cli("unit", "add", "区教育局")
    assert again.exit_code == 1 and "已有名为“区教育局”的责任单位" in again.output
    assert cli("unit", "list").output.strip() == "区教育局\t承办人 0 人\t启用"


def test_list_and_disable(cli, session, client):
    cli("staff", "add", "deng.ji", "--role", "clerk", input=PASSWORD + "\n")
    cli("staff", "add", "guan.li", "--role", "admin", input=PASSWORD + "\n")
    lines = cli("staff", "list").output.strip().splitlines()
    assert lines == ["deng.ji\t-\t登记员\t-\t启用\t双重验证未启用",
                     "guan.li\t-\t管理员\t-\t启用\t双重验证已启用"]
    login(client, "deng.ji", PASSWORD)
    assert client.get("/staff/password").status_code == 200
    result = cli("staff", "disable", "deng.ji")
    assert result.exit_code == 0 and "已停用账号 deng.ji" in result.output
    assert client.get("/staff/password").status_code == 302  # the open session ended
    assert "已停用" in cli("staff", "list").output
    actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["user_created", "user_created", "login", "user_disabled"]


def test_password_reset_and_enable(cli, session):
    cli("staff", "add", "deng.ji", "--role", "clerk", input=PASSWORD + "\n")
    cli("staff", "disable", "deng.ji")
    assert cli("staff", "enable", "deng.ji").exit_code == 0
    result = cli("staff", "password", "deng.ji", input="another long password\n")
    assert result.exit_code == 0, result.output
    session.rollback()
    assert authenticate(session, "deng.ji", "another long password") is not None
    assert authenticate(session, "deng.ji", PASSWORD) is None


def test_on_a_terminal_the_password_is_asked_twice_without_echo(cli, session, monkeypatch):
    import feedback_app.cli.staff as auth_cli

    monkeypatch.setattr(auth_cli, "_interactive", lambda: True)
    result = cli("staff", "add", "deng.ji", "--role", "clerk", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "密码" in result.output and "再次输入密码" in result.output and PASSWORD not in result.output
    assert authenticate(session, "deng.ji", PASSWORD) is not None
    result = cli("staff", "add", "li.si", "--role", "clerk", input=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code == 1 and "两次输入的密码不一致" in result.output
