"""Staff accounts and responsible units: creating, changing and checking them. Callers commit."""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback_app.auth import passwords
from feedback_app.auth.logins import end_sessions_of
from feedback_app.core.database import utcnow
from feedback_app.core.models import Role, StaffUser, Unit
from feedback_app.core.words import ROLE_LABELS

USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,64}")
USERNAME_RULE = "用户名须为 3 至 64 位小写字母、数字、下划线、点或短横线"
HANDLER_NEEDS_UNIT = "承办人必须属于一个责任单位"
ONLY_HANDLERS_HAVE_UNIT = "只有承办人属于责任单位，其他角色请不要选择单位"
UNIT_NAME_MAX = 100
DISPLAY_NAME_MAX = 100


class AccountError(ValueError):
    """An account or unit change that is not allowed; the message is for people, ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def normalize_username(raw: str | None) -> str:
    """What a username typed in any width or case is stored as."""
    return unicodedata.normalize("NFKC", raw or "").strip().lower()


def _clean(value: str | None) -> str:
    return unicodedata.normalize("NFC", value or "").strip()


def _role(role: Role | str) -> Role:
    try:
        return Role(role.value if isinstance(role, Role) else str(role).strip().lower())
    except ValueError:
        choices = "、".join(f"{r.value}（{ROLE_LABELS[r]}）" for r in Role)
        raise AccountError(f"角色无效，可选：{choices}", "role") from None


def _check_unit(role: Role, unit: Unit | None) -> None:
    if role is Role.handler:
        if unit is None:
            raise AccountError(HANDLER_NEEDS_UNIT, "unit")
        if not unit.active:
            raise AccountError(f"责任单位“{unit.name}”已停用", "unit")
    elif unit is not None:
        raise AccountError(ONLY_HANDLERS_HAVE_UNIT, "unit")


# units


def find_unit(session: Session, name: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.name == _clean(name)))


def list_units(session: Session) -> list[Unit]:
    return list(session.scalars(select(Unit).order_by(Unit.name)))


def create_unit(session: Session, name: str) -> Unit:
    name = _clean(name)
    if not name:
        raise AccountError("请填写单位名称", "name")
    if len(name) > UNIT_NAME_MAX:
        raise AccountError(f"单位名称不超过 {UNIT_NAME_MAX} 个字", "name")
    if find_unit(session, name) is not None:
        raise AccountError(f"已有名为“{name}”的责任单位", "name")
    unit = Unit(name=name, active=True)
    session.add(unit)
    session.flush()
    return unit


def handler_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(StaffUser.unit_id, func.count()).where(StaffUser.unit_id.is_not(None)).group_by(StaffUser.unit_id)
    )
    return {unit_id: count for unit_id, count in rows if unit_id is not None}  # the query has none


# users


def find_user(session: Session, username: str) -> StaffUser | None:
    name = normalize_username(username)
    if not USERNAME_RE.fullmatch(name):
        return None
    return session.scalar(select(StaffUser).where(StaffUser.username == name))


def list_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    unit: Unit | None = None,
    display_name: str = "",
) -> StaffUser:
    name = normalize_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise AccountError(USERNAME_RULE, "username")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise AccountError(f"用户名“{name}”已被使用", "username")
    display = _clean(display_name)
    if len(display) > DISPLAY_NAME_MAX:
        raise AccountError(f"姓名不超过 {DISPLAY_NAME_MAX} 个字", "display_name")
    role_ = _role(role)
    _check_unit(role_, unit)
    problem = passwords.password_problem(password, username=name)
    if problem:
        raise AccountError(problem, "password")
    now = utcnow()
    user = StaffUser(
        username=name,
        display_name=display,
        password_hash=passwords.hash_password(password),
        role=role_.value,
        unit_id=unit.id if unit is not None else None,
        active=True,
        created_at=now,
        password_changed_at=now,
    )
    user.unit = unit
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: StaffUser, new: str) -> None:
    """Change the password and end every session of the user (other copies of the cookie stop working)."""
    problem = passwords.password_problem(new, username=user.username)
    if problem:
        raise AccountError(problem, "new_password")
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = utcnow()
    session.flush()
    end_sessions_of(session, user)


def set_active(session: Session, user: StaffUser, active: bool) -> None:
    user.active = active
    session.flush()
    if not active:
        end_sessions_of(session, user)


def set_role(session: Session, user: StaffUser, role: Role | str, unit: Unit | None = None) -> None:
    """Change role and unit together (a handler needs a unit, nobody else has one); ends the user's sessions."""
    role_ = _role(role)
    _check_unit(role_, unit)
    user.role = role_.value
    user.unit = unit
    user.unit_id = unit.id if unit is not None else None
    session.flush()
    end_sessions_of(session, user)


def set_unit(session: Session, user: StaffUser, unit: Unit | None) -> None:
    set_role(session, user, user.role, unit)


def active_admins(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(StaffUser)
        .where(StaffUser.role == Role.admin.value, StaffUser.active.is_(True))
    ) or 0


def authenticate(session: Session, username: str, password: str) -> StaffUser | None:
    """The active account with this username and password, or None.

    An unknown user, a wrong password and a disabled account take the same argon2 time and give the
    same answer. A hash made with older parameters is replaced on success.
    """
    password = password or ""
    if len(password) > passwords.MAX_LENGTH * 4:
        passwords.spend_verify_time(password[: passwords.MAX_LENGTH])
        return None
    user = find_user(session, username)
    if user is None:
        passwords.spend_verify_time(password)
        return None
    if not passwords.verify_password(user.password_hash, password) or not user.active:
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        session.flush()
    return user
