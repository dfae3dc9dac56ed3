"""Storing and finding bulletins. Services flush; the caller commits."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback_app.bulletin.parser import ParsedBulletin, parse_bulletin
from feedback_app.core.models import Bulletin, BulletinItem

BUNDLED = Path(__file__).resolve().parent / "seed" / "huangpu-2025-03-28.txt"  # the bulletin shipped
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


class BulletinImportError(ValueError):
    """The bulletin cannot be stored; nothing was written."""


@dataclass(frozen=True)
class ImportResult:
    bulletin: Bulletin
    created: bool


def import_bulletin(session: Session, text: str, slug: str) -> ImportResult:
    """Parse ``text`` and store it under ``slug``; the same text again changes nothing."""
    if not SLUG_RE.match(slug):
        raise BulletinImportError(f"标识 {slug!r} 无效：只能使用小写字母、数字和连字符")
    parsed = parse_bulletin(text)  # raises BulletinParseError naming the line
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    existing = session.scalar(select(Bulletin).where(Bulletin.slug == slug))
    if existing is not None:
        if existing.source_sha256 == digest:
            return ImportResult(existing, created=False)
        raise BulletinImportError(f"标识 {slug!r} 已被另一份通报使用")
    c = parsed.contacts
    bulletin = Bulletin(
        slug=slug,
        title=parsed.title,
        issuers=" ".join(parsed.issuers),
        published_on=parsed.published_on,
        source=parsed.source,
        source_text=text,
        source_sha256=digest,
        contact_phone=c.phone,
        contact_email=c.email,
        contact_address=c.address,
        contact_envelope_note=c.envelope_note,
        contact_postcode=c.postcode,
        items=[BulletinItem(number=i.number, title=i.title) for i in parsed.items],
    )
    session.add(bulletin)
    session.flush()
    return ImportResult(bulletin, created=True)


NEWEST_FIRST = (Bulletin.published_on.desc(), Bulletin.id.desc())  # two of one day: the later imported first


def list_bulletins(session: Session) -> list[Bulletin]:
    return list(session.scalars(select(Bulletin).order_by(*NEWEST_FIRST)))


def latest(session: Session) -> Bulletin | None:
    """The bulletin published last: what comments that name none are about."""
    return session.scalar(select(Bulletin).order_by(*NEWEST_FIRST).limit(1))


def get_bulletin(session: Session, slug: str) -> Bulletin | None:
    return session.scalar(select(Bulletin).where(Bulletin.slug == slug))


@lru_cache(maxsize=32)
def _parse_cached(sha: str, text: str) -> ParsedBulletin:
    return parse_bulletin(text)


def structure_of(bulletin: Bulletin) -> ParsedBulletin:
    """The parsed structure of a stored bulletin (parsed once per text and process)."""
    return _parse_cached(bulletin.source_sha256, bulletin.source_text)


WHOLE = "整改工作整体"  # item 0: the rectification as a whole


def item_title(bulletin: Bulletin, number: int) -> str | None:
    """The title of item ``number`` (0: the rectification as a whole), or None when there is no such item."""
    if number == 0:
        return WHOLE
    return next((i.title for i in bulletin.items if i.number == number), None)
