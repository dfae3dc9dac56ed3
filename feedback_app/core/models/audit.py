"""The append-only audit log, each entry chained to the one before by a keyed hash; and the count of
refused requests, kept beside it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedback_app.core.database import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # the username, or "system", or "citizen"
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(80), index=True)  # e.g. a reference number
    client: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row: the end of the chain. Updating it serialises writers, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_hash: Mapped[str] = mapped_column(String(64))
    last_id: Mapped[int] = mapped_column(Integer, default=0)


class RefusalCount(Base):
    """Refused requests (403, 409, 429), one row per minute, actor, status and route with how many there
    were: a flood adds to a count instead of a row each, so it cannot bloat the log (``audit.refusals``).

    Not in the hash chain: a row changes with every refusal it counts, and the chain is for what staff did.
    ``actor`` is a staff username or, for anybody else, a keyed hash of the client's address (never the
    address itself)."""

    __tablename__ = "refusal_count"

    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)  # UTC, seconds cut off
    actor: Mapped[str] = mapped_column(String(80), primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    route: Mapped[str] = mapped_column(String(200), primary_key=True)  # the rule, e.g. /staff/admin/users
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
