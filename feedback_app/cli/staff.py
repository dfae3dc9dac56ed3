"""``feedback-app staff …`` and ``feedback-app unit …``: accounts and responsible units from the command line.

Passwords are read from standard input (one line), or prompted for twice without echo on a terminal;
they never appear in the arguments, the output or the audit log.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.audit.log import record
from feedback_app.auth import totp
from feedback_app.auth.accounts import (
    AccountError,
    create_unit,
    create_user,
    find_unit,
    find_user,
    handler_counts,
    list_units,
    list_users,
    set_active,
    set_password,
)
from feedback_app.auth.logins import end_sessions_of
from feedback_app.cli.common import needs, session_scope
from feedback_app.core.words import ROLE_LABELS

staff_group = click.Group("staff", help="工作人员账号")
unit_group = click.Group("unit", help="责任单位")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_password() -> str:
    if _interactive():
        first = click.prompt("密码", hide_input=True, default="", show_default=False)
        second = click.prompt("再次输入密码", hide_input=True, default="", show_default=False)
        if first != second:
            _fail("两次输入的密码不一致")
        if not first:
            _fail("未输入密码")
        return first
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        _fail("未读到密码：请在标准输入中提供一行密码")
    return password


def _audit(session, action: str, *, target: str, **details) -> None:

    record(session, current.settings(), action=action, actor="system", target=target,
           details={"via": "cli", **details})


def _find_user(session, username: str):

    user = find_user(session, username)
    if user is None:
        _fail(f"找不到账号：{username}")
    return user


@staff_group.command("add")
@click.argument("username")
@click.option("--role", required=True, help="clerk（登记员）、reviewer（审核员）、handler（承办人）或 admin（管理员）")
@click.option("--unit", "unit_name", default=None, help="责任单位名称（承办人必填）")
@click.option("--name", "display_name", default="", help="姓名")
@with_appcontext
@needs("accounts.manage")
def staff_add(username: str, role: str, unit_name: str | None, display_name: str) -> None:
    """新建账号；密码从标准输入读取一行（在终端上则提示输入两次）。"""

    password = _read_password()
    settings = current.settings()
    secret = uri = None
    try:
        with session_scope() as session:
            unit = None
            if unit_name:
                unit = find_unit(session, unit_name)
                if unit is None:
                    raise AccountError(f"找不到责任单位：{unit_name}（可用 feedback-app unit list 查看）")
            user = create_user(session, username, password, role, unit=unit, display_name=display_name)
            if user.role in settings.twofa_role_set:
                secret = totp.enrol_confirmed(session, user)
                uri = totp.provisioning_uri(secret, user.username)
            _audit(session, "user_created", target=f"staff_user:{user.id}", username=user.username,
                   role=user.role, unit=unit.name if unit else None, totp_issued=secret is not None)
            name, label = user.username, ROLE_LABELS[user.role_enum]
    except AccountError as exc:
        _fail(f"账号未创建：{exc.message}")
    click.echo(f"已创建账号 {name}（{label}）")
    if secret:
        click.echo("该角色登录时需要双重验证。请通过安全的方式把以下密钥交给本人，添加到身份验证器应用：")
        click.echo(f"密钥：{totp.grouped(secret)}")
        click.echo(f"二维码内容：{uri}")


@staff_group.command("list")
@with_appcontext
@needs("accounts.manage")
def staff_list() -> None:
    """列出全部账号。"""

    with session_scope() as session:
        users = list_users(session)
        if not users:
            click.echo("还没有账号")
        for u in users:
            click.echo("\t".join([
                u.username,
                u.display_name or "-",
                ROLE_LABELS[u.role_enum],
                u.unit.name if u.unit else "-",
                "启用" if u.active else "已停用",
                "双重验证已启用" if u.totp_confirmed_at else "双重验证未启用",
            ]))


@staff_group.command("disable")
@click.argument("username")
@with_appcontext
@needs("accounts.manage")
def staff_disable(username: str) -> None:
    """停用账号，并结束其全部登录。"""

    with session_scope() as session:
        user = _find_user(session, username)
        if user.active:
            set_active(session, user, False)
            _audit(session, "user_disabled", target=f"staff_user:{user.id}", username=user.username)
        name = user.username
    click.echo(f"已停用账号 {name}，其所有登录已退出")


@staff_group.command("enable")
@click.argument("username")
@with_appcontext
@needs("accounts.manage")
def staff_enable(username: str) -> None:
    """重新启用账号。"""

    with session_scope() as session:
        user = _find_user(session, username)
        if not user.active:
            set_active(session, user, True)
            _audit(session, "user_enabled", target=f"staff_user:{user.id}", username=user.username)
        name = user.username
    click.echo(f"已启用账号 {name}")


@staff_group.command("password")
@click.argument("username")
@with_appcontext
@needs("accounts.manage")
def staff_password(username: str) -> None:
    """重设密码（从标准输入读取一行），并结束其全部登录。"""

    password = _read_password()
    try:
        with session_scope() as session:
            user = _find_user(session, username)
            set_password(session, user, password)
            _audit(session, "password_reset", target=f"staff_user:{user.id}", username=user.username)
            name = user.username
    except AccountError as exc:
        _fail(f"密码未修改：{exc.message}")
    click.echo(f"已重设 {name} 的密码，其所有登录已退出")


@staff_group.command("reset-2fa")
@click.argument("username")
@with_appcontext
@needs("accounts.manage")
def staff_reset_totp(username: str) -> None:
    """清除双重验证设置（本人下次登录时重新设置），并结束其全部登录。"""

    with session_scope() as session:
        user = _find_user(session, username)
        totp.reset(session, user)
        end_sessions_of(session, user)
        _audit(session, "totp_reset", target=f"staff_user:{user.id}", username=user.username)
        name = user.username
    click.echo(f"已重置 {name} 的双重验证，其所有登录已退出")


@unit_group.command("add")
@click.argument("name")
@with_appcontext
@needs("units.manage")
def unit_add(name: str) -> None:
    """添加责任单位。"""

    try:
        with session_scope() as session:
            unit = create_unit(session, name)
            _audit(session, "unit_created", target=f"unit:{unit.id}", name=unit.name)
            unit_name = unit.name
    except AccountError as exc:
        _fail(f"单位未添加：{exc.message}")
    click.echo(f"已添加责任单位：{unit_name}")


@unit_group.command("list")
@with_appcontext
@needs("units.manage")
def unit_list() -> None:
    """列出全部责任单位。"""

    with session_scope() as session:
        units = list_units(session)
        counts = handler_counts(session)
        if not units:
            click.echo("还没有责任单位")
        for u in units:
            click.echo(f"{u.name}\t承办人 {counts.get(u.id, 0)} 人\t{'启用' if u.active else '已停用'}")
