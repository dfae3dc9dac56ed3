"""The submission record every channel produces, with its attachments and public history."""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback_app.core.database import Base, UTCDateTime, utcnow
from feedback_app.core.enums import Channel, Kind, Rating, ReplyBy, State


def _check_in(column: str, enum_cls: type[enum.Enum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum_cls)})"


class ReferenceCounter(Base):
    """The last reference number issued in a year."""

    __tablename__ = "reference_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(Integer, default=0)


# the deadline sort key (queue.DUE_ORDER renders the same SQL): no open deadline sorts last
_DUE_ORDER = text("coalesce(next_due_on, '9999-12-31')")


class Submission(Base):
    __tablename__ = "submission"
    __table_args__ = (
        CheckConstraint(_check_in("channel", Channel), name="channel"),
        CheckConstraint(_check_in("kind", Kind), name="kind"),
        CheckConstraint(_check_in("reply_by", ReplyBy), name="reply_by"),
        CheckConstraint(_check_in("state", State), name="state"),
        CheckConstraint(f"rating IS NULL OR {_check_in('rating', Rating)}", name="rating"),
        CheckConstraint("item_number >= 0", name="item_number"),
        UniqueConstraint("year", "seq"),
        # the staff queue (migration 0004): each page order under its usual filters, and the per-state
        # counts under any filter read from one index
        Index("ix_submission_state_received_at", "state", "received_at", "id"),
        Index("ix_submission_unit_id_received_at", "unit_id", "received_at", "id"),
        Index("ix_submission_unit_id_state_received_at", "unit_id", "state", "received_at", "id"),
        Index("ix_submission_due_order", _DUE_ORDER, "id"),
        Index("ix_submission_state_due_order", "state", _DUE_ORDER, "id"),
        Index("ix_submission_unit_id_due_order", "unit_id", _DUE_ORDER, "id"),
        # the citizen form's repeat check (same text, same client), and the duplicate proposal's look-up
        # by text (migration 0010)
        Index("ix_submission_repeat", "body_hash", "client_hash"),
        Index("ix_submission_state_filters", "state", "kind", "channel", "item_number", "unit_id", "next_due_on",
              "received_at", "id"),
        # the duplicate proposal's exact matches over the whole table (migration 0007); most rows have no
        # phone or email, so these indexes hold only the rows that do
        Index("ix_submission_phone", "phone", sqlite_where=text("phone IS NOT NULL"),
              postgresql_where=text("phone IS NOT NULL")),
        Index("ix_submission_email_lower", text("lower(email)"), sqlite_where=text("email IS NOT NULL"),
              postgresql_where=text("email IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id"), index=True)
    item_number: Mapped[int] = mapped_column(Integer, default=0)  # 0: the rectification as a whole
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(12))
    body: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(String(300))
    reply_by: Mapped[str] = mapped_column(String(10))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    publish_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    privacy_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default=State.received.value)  # indexed by the queue's
    rating: Mapped[str | None] = mapped_column(String(20))
    query_code_hash: Mapped[str] = mapped_column(String(64))
    form_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_hash: Mapped[str | None] = mapped_column(String(64))
    body_hash: Mapped[str] = mapped_column(String(64))
    channel_facts: Mapped[str | None] = mapped_column(Text)  # JSON: what the channel itself recorded
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # routing and outcome, written by moderation
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))  # indexed by the queue's
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("submission.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reject_reason: Mapped[str | None] = mapped_column(String(40))
    next_due_on: Mapped[date | None] = mapped_column(Date, index=True)  # the earliest open deadline

    # SQLAlchemy types __mapper_args__ as an attribute of its declarative base, not a ClassVar
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="submission", order_by="Attachment.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[SubmissionEvent]] = relationship(
        back_populates="submission", order_by="SubmissionEvent.id", cascade="all, delete-orphan"
    )
    replies: Mapped[list[Reply]] = relationship(
        back_populates="submission", order_by="Reply.id", cascade="all, delete-orphan"
    )


class Attachment(Base):
    """A file kept outside ``static/`` under a generated name; the original name is display text only."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="attachments")


class SubmissionEvent(Base):
    """One step in a submission's history; ``public`` steps are shown to the citizen."""

    __tablename__ = "submission_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(30))
    state_after: Mapped[str] = mapped_column(String(10))
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    text: Mapped[str | None] = mapped_column(Text)  # a citizen's follow-up, or a public note

    submission: Mapped[Submission] = relationship(back_populates="events")


class Reply(Base):
    """The office's answer: drafted by a handler, approved by a reviewer, then delivered."""

    __tablename__ = "reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    drafted_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_note: Mapped[str | None] = mapped_column(Text)  # how a call back or a letter went

    submission: Mapped[Submission] = relationship(back_populates="replies")
