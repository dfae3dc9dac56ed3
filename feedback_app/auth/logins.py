"""Staff logins kept on the server: the browser holds a random token, the table only its hash.

Logging out, changing a password or disabling an account ends the rows, so a copied cookie stops
working. A login ends after ``staff_idle_minutes`` without a request and ``staff_absolute_hours``
after it began. Services flush; the caller commits.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import StaffSession, StaffUser

SEEN_EVERY = timedelta(seconds=30)  # "last seen" is written at most this often


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needs_second_factor(settings: Settings, user: StaffUser) -> bool:
    return user.role in settings.twofa_role_set


def open_login(db: Session, user: StaffUser, client: str | None, *, second_factor: bool = False) -> str:
    """A fresh login for ``user`` (never one from before); the token for the browser."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(StaffSession(id=digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                        second_factor_at=now if second_factor else None, client=client))
    db.flush()
    return token


def end_login(db: Session, row: StaffSession) -> None:
    if row.ended_at is None:
        row.ended_at = utcnow()
        db.flush()


def end_sessions_of(db: Session, user: StaffUser) -> None:
    """End every login of ``user`` on the server."""
    db.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


@dataclass(frozen=True)
class Found:
    row: StaffSession | None  # the login in force, or None
    lapsed: str | None  # the id of a login that has just run out (to be ended), or None


def find_login(db: Session, settings: Settings, token: str, now: datetime | None = None) -> Found:
    """The login a browser's token stands for, reading only: a login that has run out (idle, too old,
    the account disabled) is not in force, and its id is given back so that it can be ended later."""
    row = db.get(StaffSession, digest(token))
    if row is None or row.ended_at is not None:
        return Found(None, None)
    now = now or utcnow()
    idle = now - row.last_seen_at > timedelta(minutes=settings.staff_idle_minutes)
    too_old = now - row.created_at > timedelta(hours=settings.staff_absolute_hours)
    if idle or too_old or not row.user.active:
        return Found(None, row.id)
    return Found(row, None)


def seen(db: Session, session_id: str, at: datetime) -> None:
    """Record that a login was used at ``at`` (a job after the response: a GET writes nothing)."""
    db.execute(update(StaffSession).where(StaffSession.id == session_id, StaffSession.last_seen_at < at)
               .values(last_seen_at=at))


def lapse(db: Session, session_id: str, at: datetime) -> None:
    """End a login that ran out (a job after the response)."""
    db.execute(update(StaffSession).where(StaffSession.id == session_id, StaffSession.ended_at.is_(None))
               .values(ended_at=at))
