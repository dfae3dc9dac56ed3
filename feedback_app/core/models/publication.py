"""Publication: a comment and its reply shown on the bulletin page, personal details removed."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedback_app.core.database import Base, UTCDateTime, utcnow


class Publication(Base):
    __tablename__ = "publication"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)  # the comment as published, after masking and redaction
    reply_text: Mapped[str | None] = mapped_column(Text)
    published_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
