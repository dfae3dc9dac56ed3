"""Accounts and units through the service: validation, authentication, replay protection."""
from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from feedback_app.auth import accounts as service
from feedback_app.auth import passwords, totp
from feedback_app.auth.accounts import AccountError, authenticate, create_unit, create_user
from feedback_app.core.database import utcnow
from feedback_app.core.models import StaffSession, StaffUser
from tests.auth.helpers import PASSWORD, create_staff


def test_handler_needs_a_unit_and_others_must_not_have_one(session):
    with pytest.raises(AccountError) as exc:
        create_user(session, "cheng.ban", PASSWORD, "handler")
    assert exc.value.message == "承办人必须属于一个责任单位" and exc.value.field == "unit"
    unit = create_unit(session, "区住房和城乡建设局")
    with pytest.raises(AccountError) as exc:
        create_user(session, "deng.ji", PASSWORD, "clerk", unit=unit)
    assert "只有承办人属于责任单位" in exc.value.message
    handler = create_user(session, "cheng.ban", PASSWORD, "handler", unit=unit, display_name=" 程办 ")
    session.commit()
    assert handler.unit_id == unit.id and handler.display_name == "程办"


@pytest.mark.parametrize("username", ["ab", "张三", "has space", "a" * 65, "semi;colon", "ab/cd"])
def test_usernames_follow_the_pattern(session, username):
    with pytest.raises(AccountError) as exc:
        create_user(session, username, PASSWORD, "clerk")
    assert exc.value.field == "username" and "用户名" in exc.value.message


def test_usernames_are_folded_to_lower_case_and_unique(session):
    user = create_user(session, "  Zhang.San ", PASSWORD, "clerk")
    assert user.username == "zhang.san"
    with pytest.raises(AccountError) as exc:
        create_user(session, "ZHANG.SAN", PASSWORD, "reviewer")
    assert "已被使用" in exc.value.message


def test_unknown_role_and_short_password_are_refused(session):
    with pytest.raises(AccountError) as exc:
        create_user(session, "zhang.san", PASSWORD, "superuser")
    assert exc.value.field == "role" and "角色无效" in exc.value.message
    with pytest.raises(AccountError) as exc:
        create_user(session, "zhang.san", "short", "clerk")
    assert exc.value.field == "password" and "至少 12 个字符" in exc.value.message


def test_units_need_a_unique_name(session):
    create_unit(session, "区教育局")
    with pytest.raises(AccountError, match="已有名为“区教育局”的责任单位"):
        create_unit(session, " 区教育局 ")
    with pytest.raises(AccountError, match="请填写单位名称"):
        create_unit(session, "  ")


def test_authenticate(session):
    user = create_staff(session, username="zhang.san", role="clerk")
    assert authenticate(session, "zhang.san", PASSWORD) is user
    assert authenticate(session, "ZHANG.SAN", PASSWORD) is user
    assert authenticate(session, "zhang.san", "wrong password!") is None
    assert authenticate(session, "nobody.here", PASSWORD) is None
    assert authenticate(session, "zhang.san", "") is None
    service.set_active(session, user, False)
    assert authenticate(session, "zhang.san", PASSWORD) is None


def test_unknown_user_costs_the_same_argon2_verification(session, monkeypatch):
    create_staff(session, username="zhang.san", role="clerk")
    calls = []

    class Counting:
        def __init__(self, real):
            self.real = real

        def verify(self, hash_, password):
            calls.append(hash_.split("$")[3])  # the parameters used
            return self.real.verify(hash_, password)

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(passwords, "_hasher", Counting(passwords._hasher))
    for name, pw in (("nobody.here", PASSWORD), ("zhang.san", "wrong password!"), ("zhang.san", PASSWORD),
                     ("not valid!", PASSWORD)):
        calls.clear()
        authenticate(session, name, pw)
        assert len(calls) == 1, name
        assert calls[0] == "m=65536,t=3,p=4"


def test_login_rehashes_an_old_hash(session):
    user = create_staff(session, username="zhang.san", role="clerk")
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    session.commit()
    assert authenticate(session, "zhang.san", PASSWORD) is user
    session.commit()
    assert not passwords.needs_rehash(user.password_hash)
    assert passwords.verify_password(user.password_hash, PASSWORD)


def _open_session(session, user):
    row = StaffSession(id=f"{user.id:064d}", user_id=user.id, created_at=utcnow(), last_seen_at=utcnow())
    session.add(row)
    session.commit()
    return row


def test_password_change_disabling_and_role_change_end_sessions(session):
    unit = create_unit(session, "区教育局")
    user = create_staff(session, username="zhang.san", role="clerk")
    for change in (
        lambda: service.set_password(session, user, "another long password"),
        lambda: service.set_active(session, user, False),
        lambda: service.set_role(session, user, "handler", unit),
    ):
        row = _open_session(session, user)
        change()
        session.commit()
        session.refresh(row)
        assert row.ended_at is not None
        session.delete(row)
        session.commit()
    assert user.role == "handler" and user.unit_id == unit.id
    assert authenticate(session, "zhang.san", "another long password") is None  # disabled
    service.set_active(session, user, True)
    assert authenticate(session, "zhang.san", "another long password") is user


def test_a_code_is_accepted_once(session):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    now = 1_800_000_000
    code = pyotp.TOTP(user.totp_secret).at(now)
    assert totp.accept_code(session, user, code, at=now)
    assert user.totp_last_step == now // 30
    assert not totp.accept_code(session, user, code, at=now)
    assert not totp.accept_code(session, user, code, at=now + 20)  # the same step, later
    older = pyotp.TOTP(user.totp_secret).at(now - 30)  # inside the window but older than the used one
    assert not totp.accept_code(session, user, older, at=now)
    newer = pyotp.TOTP(user.totp_secret).at(now + 30)
    assert totp.accept_code(session, user, newer, at=now + 30)
    session.commit()
    assert session.scalar(select(StaffUser.totp_last_step).where(StaffUser.id == user.id)) == now // 30 + 1


def test_enrolment_keeps_the_secret_until_confirmed(session):
    user = create_staff(session, username="li.shenhe", role="reviewer")
    secret = totp.begin_enrolment(session, user)
    assert totp.begin_enrolment(session, user) == secret
    assert user.totp_confirmed_at is None
    assert not totp.confirm_enrolment(session, user, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert totp.confirm_enrolment(session, user, pyotp.TOTP(secret).now())
    assert user.totp_confirmed_at is not None
    totp.reset(session, user)
    assert user.totp_secret is None and user.totp_confirmed_at is None
