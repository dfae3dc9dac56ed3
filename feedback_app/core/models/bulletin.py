"""Published bulletins and their numbered rectification items."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback_app.core.database import Base, UTCDateTime, utcnow


class Bulletin(Base):
    __tablename__ = "bulletin"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    issuers: Mapped[str] = mapped_column(String(300), default="")
    published_on: Mapped[date] = mapped_column(Date, index=True)
    source: Mapped[str | None] = mapped_column(String(200))
    source_text: Mapped[str] = mapped_column(Text, deferred=True)  # loaded only to render the page
    source_sha256: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(200))
    contact_address: Mapped[str | None] = mapped_column(String(300))
    contact_envelope_note: Mapped[str | None] = mapped_column(String(300))
    contact_postcode: Mapped[str | None] = mapped_column(String(12))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[BulletinItem]] = relationship(
        back_populates="bulletin", order_by="BulletinItem.number", cascade="all, delete-orphan"
    )


class BulletinItem(Base):
    __tablename__ = "bulletin_item"
    __table_args__ = (UniqueConstraint("bulletin_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletin.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))

    bulletin: Mapped[Bulletin] = relationship(back_populates="items")
