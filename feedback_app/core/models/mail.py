"""The outbox: mail written in the same transaction as what it reports, delivered later."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from feedback_app.core.database import Base, UTCDateTime, utcnow


class OutboxStatus(str, enum.Enum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.pending.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submission.id", ondelete="SET NULL"), index=True)


class InboundStatus(str, enum.Enum):
    stored = "stored"  # raw bytes kept, not yet turned into a submission
    ingested = "ingested"  # a submission was created from it
    quarantined = "quarantined"  # an auto-reply, a bounce, or a message that could not be read
    released = "released"  # staff looked at a quarantined message and made a submission of it


class InboundMessage(Base):
    """A mail as received, kept raw before anything is parsed; at most one row per message.

    A message over the size limit is kept whole in the attachment store instead: ``raw`` holds its
    header block, ``original_name`` the file's name there, ``original_size`` its size, and ``sha256``
    is still that of the whole message.
    """

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", "sha256"),
        CheckConstraint("status IN ('stored', 'ingested', 'quarantined', 'released')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))  # "imap:user@host/INBOX", or "import" for files
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    uid: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the whole message
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)  # of ``raw``
    status: Mapped[str] = mapped_column(String(12), default=InboundStatus.stored.value, index=True)
    reason: Mapped[str | None] = mapped_column(String(300))  # why it was quarantined
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submission.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # \Seen set on the server
    original_name: Mapped[str | None] = mapped_column(String(32), index=True)  # kept whole in the store
    original_size: Mapped[int | None] = mapped_column(BigInteger)


class MailboxState(Base):
    """The health of one mailbox fetch: when it last worked, and since when it fails."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
