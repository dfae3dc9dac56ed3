"""Publication: a citizen's comment and the office's reply shown under its rectification item.

Only with the citizen's consent (``Submission.publish_consent``), only by a reviewer or an
administrator, and only after personal details are removed: the text is masked automatically
(:mod:`feedback_app.outcomes.redaction`), the reviewer edits it side by side with the original, and
``publish`` checks the final text again and refuses it while it still holds any detail of the
submission, or a phone, e-mail or ID card number. Withdrawing keeps the row (``withdrawn_at``) so
the audit log and the page history agree; publishing again after a withdrawal reuses it.

Services flush; the request commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import SQLColumnExpression, case, select
from sqlalchemy.orm import Session

from feedback_app.audit.log import record_action
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.errors import ActionError
from feedback_app.core.models import (
    Bulletin,
    Publication,
    Reply,
    StaffUser,
    Submission,
)
from feedback_app.core.permissions import Actor, may
from feedback_app.outcomes import redaction
from feedback_app.outcomes.published import ANSWERED, BY_PUBLICATION, NOT_ACCEPTED

MAX_CHARS = 5000


class PublicationRefused(ActionError):
    """Publishing or withdrawing is not allowed as asked; the message says why, in Chinese."""


class RedactionIncomplete(PublicationRefused):
    """The final text still holds personal details."""

    def __init__(self, comment: list[redaction.Problem], reply: list[redaction.Problem]):
        self.comment, self.reply = comment, reply
        super().__init__("公开文本中仍有个人信息，请删除后再公开")


# ---------- who may, and what ----------

def refusal(submission: Submission, role: str | None) -> str | None:
    """Why this submission may not be published by this role, or None when it may."""
    if not may(role, "publication.manage"):
        return "只有审核员或管理员可以公开意见。"
    if not submission.publish_consent:
        return "反映人未同意公开其意见，不能公开。"
    if submission.state in NOT_ACCEPTED:
        return "未受理、不予受理或已合并的意见不能公开。"
    return None


def approved_reply(submission: Submission) -> Reply | None:
    """The latest approved reply: the one published with the comment."""
    approved = [r for r in submission.replies if r.approved_at is not None]
    return max(approved, key=lambda r: (r.approved_at, r.id)) if approved else None


def publication_of(session: Session, submission: Submission) -> Publication | None:
    return session.scalar(select(Publication).where(Publication.submission_id == submission.id))


def public_contacts(session: Session, submission: Submission) -> tuple[str, ...]:
    """The office's own contact details, which a comment may quote and the page may keep."""
    bulletin = session.get(Bulletin, submission.bulletin_id)
    if bulletin is None:
        return ()
    return tuple(v for v in (bulletin.contact_phone, bulletin.contact_email, bulletin.contact_address) if v)


@dataclass(frozen=True)
class Proposal:
    """What the redaction page shows: the originals, and the automatically masked texts to edit."""

    original: str
    text: str
    original_reply: str | None
    reply_text: str | None
    found: list[redaction.Finding] = field(default_factory=list)

    @property
    def segments(self) -> list[tuple[str, str | None]]:
        """The original comment in pieces, each found detail marked with what it is."""
        out: list[tuple[str, str | None]] = []
        pos = 0
        for f in self.found:
            if f.start > pos:
                out.append((self.original[pos:f.start], None))
            out.append((self.original[f.start:f.end], redaction.KIND_WORDS[f.kind]))
            pos = f.end
        if pos < len(self.original):
            out.append((self.original[pos:], None))
        return out

    @property
    def found_kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.found:
            counts[redaction.KIND_WORDS[f.kind]] = counts.get(redaction.KIND_WORDS[f.kind], 0) + 1
        return counts


def propose(session: Session, submission: Submission) -> Proposal:
    personal = redaction.Personal.of(submission)
    allowed = public_contacts(session, submission)
    found = redaction.find(submission.body, personal, allowed)
    reply = approved_reply(submission)
    return Proposal(
        original=submission.body,
        text=redaction.apply(submission.body, found),
        original_reply=reply.body if reply else None,
        reply_text=redaction.mask_text(reply.body, personal, allowed) if reply else None,
        found=found,
    )


def check(session: Session, submission: Submission, text: str, reply_text: str | None
          ) -> tuple[list[redaction.Problem], list[redaction.Problem]]:
    personal = redaction.Personal.of(submission)
    allowed = public_contacts(session, submission)
    return (redaction.problems(text, personal, allowed),
            redaction.problems(reply_text, personal, allowed) if reply_text else [])


def _clean(text: str | None) -> str:
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


# ---------- publishing and withdrawing ----------

def publish(session: Session, settings: Settings, actor: Actor, submission: Submission, *, text: str,
            reply_text: str | None) -> Publication:
    """Publish the edited texts, after checking them once more; flush."""
    reason = refusal(submission, actor.role)
    if reason:
        raise PublicationRefused(reason)
    existing = publication_of(session, submission)
    if existing is not None and existing.withdrawn_at is None:
        raise PublicationRefused("此件已经公开。如需修改，请先撤回再重新公开。")
    text = _clean(text)
    if not text:
        raise PublicationRefused("请填写要公开的意见内容。")
    reply = approved_reply(submission)
    reply_text = _clean(reply_text) if reply is not None else ""
    if reply is not None and not reply_text:
        raise PublicationRefused("请填写要公开的答复内容。")
    if len(text) > MAX_CHARS or len(reply_text) > MAX_CHARS:
        raise PublicationRefused(f"公开的内容不能超过 {MAX_CHARS} 字。")
    comment_problems, reply_problems = check(session, submission, text, reply_text)
    if comment_problems or reply_problems:
        raise RedactionIncomplete(comment_problems, reply_problems)
    now = utcnow()
    if existing is None:
        existing = Publication(submission_id=submission.id, text=text, reply_text=reply_text or None,
                               published_by_id=actor.user.id, published_at=now)
        session.add(existing)
    else:
        existing.text, existing.reply_text = text, reply_text or None
        existing.published_by_id, existing.published_at, existing.withdrawn_at = actor.user.id, now, None
    session.flush()
    record_action(session, settings, actor, "published", submission, publication=existing.id,
           reply=reply.id if reply else None, chars=len(text))
    session.flush()
    return existing


def withdraw(session: Session, settings: Settings, actor: Actor, submission: Submission, *,
             reason: str = "") -> Publication:
    if not actor.may("publication.manage"):
        raise PublicationRefused("只有审核员或管理员可以撤回公开。")
    existing = publication_of(session, submission)
    if existing is None or existing.withdrawn_at is not None:
        raise PublicationRefused("此件当前没有公开。")
    existing.withdrawn_at = utcnow()
    record_action(session, settings, actor, "publication_withdrawn", submission, publication=existing.id,
           reason=reason.strip()[:300] or None)
    session.flush()
    return existing


# ---------- for staff ----------

@dataclass(frozen=True)
class PublicationRow:
    reference: str
    item_number: int
    published_at: datetime
    withdrawn_at: datetime | None
    published_by: str


def recent(session: Session, *, limit: int = 100) -> list[PublicationRow]:
    label = case((StaffUser.display_name != "", StaffUser.display_name), else_=StaffUser.username)
    rows = session.execute(
        select(Submission.reference, Submission.item_number, Publication.published_at, Publication.withdrawn_at,
               label)
        .select_from(Publication)
        .join(Submission, BY_PUBLICATION)
        .join(StaffUser, StaffUser.id == Publication.published_by_id)
        .order_by(Publication.published_at.desc(), Publication.id.desc())
        .limit(limit)
    ).all()
    return [PublicationRow(*r) for r in rows]


def candidates(session: Session, *, limit: int = 50) -> list[Submission]:
    """Answered or closed submissions whose authors consented and which were never published, newest
    first (walked down the primary key, so that it stops after ``limit`` rows)."""
    state: SQLColumnExpression[str] = Submission.state
    if session.get_bind().dialect.name == "sqlite":
        # state || '': SQLite (no statistics) would otherwise collect every answered row through the
        # state index and sort them; this way it walks the primary key from the newest and stops.
        state = state.concat("")
    return list(session.scalars(
        select(Submission)
        .outerjoin(Publication, Publication.submission_id == Submission.id)
        .where(Submission.publish_consent.is_(True), state.in_(ANSWERED), Publication.id.is_(None))
        .order_by(Submission.id.desc())
        .limit(limit)
    ))
