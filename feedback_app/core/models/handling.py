"""What staff add to a submission: deadlines, internal notes, identity reveals."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback_app.core.database import Base, UTCDateTime, utcnow


class Deadline(Base):
    """A statutory clock of one submission, with the rule that produced it."""

    __tablename__ = "deadline"
    __table_args__ = (
        CheckConstraint("kind IN ('inform', 'acceptance_notice', 'conclude', 'feedback')", name="kind"),
        CheckConstraint("extension_days >= 0 AND extension_days <= 30", name="extension_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    rule: Mapped[str] = mapped_column(String(300))
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InternalNote(Base):
    """A note staff keep on a submission; never shown to the citizen."""

    __tablename__ = "internal_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("StaffUser")


class RevealGrant(Base):
    """A reviewer lifted the identity masking of one submission for its handlers, with a reason."""

    __tablename__ = "reveal_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), index=True)
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
