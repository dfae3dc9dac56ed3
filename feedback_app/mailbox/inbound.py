"""Inbound mail in idempotent steps: store the raw message; ingest it (one submission, or quarantine);
and, for staff, release a quarantined message. Each step may be repeated after a crash at any point.

A message is known by the SHA-256 of its raw bytes: the same bytes fetched again (another UID, another
UIDVALIDITY, or an exported file) are the same message, and never become a second submission. A message
over the size limit is known the same way, by the SHA-256 of the whole message kept in the store.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, defer, sessionmaker

from feedback_app.audit.log import record
from feedback_app.bulletin.service import latest
from feedback_app.core.config import Settings
from feedback_app.core.database import run_after_commit, utcnow
from feedback_app.core.models import InboundMessage, InboundStatus, Submission
from feedback_app.intake.attachments import sniff
from feedback_app.intake.service import Receipt, create_submission
from feedback_app.mailbox.draft import build_draft
from feedback_app.mailbox.original import Original, discard, oversized_reason, put_in_place
from feedback_app.mailbox.parse import Limits, Parsed, headers_only, parse_message

log = logging.getLogger("feedback_app.mail")

NO_BULLETIN = "尚无已发布的通报，无法登记"


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    status: str
    reference: str | None = None
    reason: str | None = None
    done_now: bool = False  # this call did the work (False: it had been done before)


def pause() -> None:
    """Tests only: FEEDBACK_MAIL_TEST_PAUSE seconds between steps, so a test can kill the process mid-run."""
    seconds = float(os.environ.get("FEEDBACK_MAIL_TEST_PAUSE") or 0)
    if seconds > 0:
        time.sleep(seconds)


def _begin_write(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def store_raw(factory: sessionmaker[Session], raw: bytes, *, mailbox: str, uidvalidity: int = 0, uid: int = 0,
              received_at: datetime | None = None) -> tuple[int, bool]:
    """Step 1: keep the raw bytes, committed. Returns (row id, whether it is new)."""
    return _store(factory, hashlib.sha256(raw).hexdigest(), {"raw": raw, "size": len(raw)}, mailbox=mailbox,
                  uidvalidity=uidvalidity, uid=uid, received_at=received_at, quarantine=None)


def store_original(factory: sessionmaker[Session], original: Original, quarantine: Parsed, *, mailbox: str,
                   uidvalidity: int = 0, uid: int = 0, received_at: datetime | None = None) -> tuple[int, bool]:
    """Step 1 for a message kept whole (see ``original``): its row committed, quarantined, with the
    header block as ``raw``, then its file put in place. Returns (row id, whether it is new); when the
    message was known already, or the row cannot be stored, this copy of it is removed."""
    pause()
    try:
        inbound_id, new = _store(
            factory, original.sha256, {"raw": original.head, "size": len(original.head),
                                       "original_name": original.name, "original_size": original.size},
            mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, received_at=received_at, quarantine=quarantine)
    except BaseException:
        discard(original)
        raise
    if not new:  # the earlier row keeps its own file
        discard(original)
        return inbound_id, False
    pause()
    put_in_place(original.directory, original.name)
    return inbound_id, True


def _store(factory: sessionmaker[Session], digest: str, content: dict, *, mailbox: str, uidvalidity: int,
           uid: int, received_at: datetime | None, quarantine: Parsed | None) -> tuple[int, bool]:
    """The row of a message not known yet, committed. ``quarantine``: what a message not to be read
    further tells of itself; the row is stored quarantined at once, with that reason."""
    with factory() as session:  # the common case of a message seen before, without taking the write lock
        existing = _known(session, digest)
    if existing is not None:
        return existing, False
    for attempt in range(2):
        with factory() as session:
            _begin_write(session)
            if session.get_bind().dialect.name == "postgresql":
                key = int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            existing = _known(session, digest)
            if existing is not None:
                return existing, False
            row = InboundMessage(mailbox=mailbox[:200], uidvalidity=uidvalidity, uid=uid, sha256=digest, **content,
                                 status=InboundStatus.stored.value, received_at=min(received_at or utcnow(), utcnow()))
            if quarantine is not None:
                _describe(row, quarantine)
                row.status, row.reason = InboundStatus.quarantined.value, (quarantine.problem or "")[:300]
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                if attempt:
                    raise
                continue
            return row.id, True
    raise AssertionError("unreachable")


def _known(session: Session, digest: str) -> int | None:
    return session.scalar(select(InboundMessage.id).where(InboundMessage.sha256 == digest)
                          .order_by(InboundMessage.id).limit(1))


def _describe(row: InboundMessage, parsed: Parsed) -> None:
    row.message_id = parsed.message_id
    row.sender = (parsed.sender or "")[:320] or None
    row.subject = parsed.subject[:500] or None


def ingest(factory: sessionmaker[Session], settings: Settings, inbound_id: int) -> Outcome:
    """Step 2: parse a stored message and, in one transaction, create its submission and mark it
    ingested, or quarantine it. Done already: nothing happens."""
    with factory() as session:
        status = session.scalar(select(InboundMessage.status).where(InboundMessage.id == inbound_id))
        if status != InboundStatus.stored.value:  # done before: answer without taking the write lock
            row = session.scalars(select(InboundMessage).where(InboundMessage.id == inbound_id)
                                  .options(defer(InboundMessage.raw))).one()
            return _outcome(session, row, done_now=False)
        session.rollback()
        row = _locked(session, inbound_id)
        if row.status != InboundStatus.stored.value:
            return _outcome(session, row, done_now=False)
        parsed = parse_message(row.raw, Limits.of(settings))
        _describe(row, parsed)
        bulletin = latest(session)
        reason = parsed.problem or parsed.bounce or parsed.auto_reply or _unreadable(parsed)
        reason = reason or (None if bulletin else NO_BULLETIN)
        if reason is None:
            assert bulletin is not None  # else the reason is NO_BULLETIN
            try:
                receipt = create_submission(session, settings, build_draft(parsed, row, bulletin, settings))
            except SQLAlchemyError:
                raise
            except Exception as exc:
                log.exception("inbound %s: registering failed", row.id)
                session.rollback()
                row = _locked(session, inbound_id)
                if row.status != InboundStatus.stored.value:  # another process got there meanwhile
                    return _outcome(session, row, done_now=False)
                _describe(row, parsed)
                reason = f"登记失败（{type(exc).__name__}），请人工处理"
            else:
                _link(session, row, receipt, InboundStatus.ingested)
        if reason is not None:
            row.status, row.reason = InboundStatus.quarantined.value, reason[:300]
        session.commit()
        run_after_commit(session)
        return _outcome(session, row, done_now=True)


def _locked(session: Session, inbound_id: int) -> InboundMessage:
    """The row, read afresh in a new writing transaction that holds it (PostgreSQL: FOR UPDATE)."""
    _begin_write(session)
    row = session.scalars(select(InboundMessage).where(InboundMessage.id == inbound_id).with_for_update()
                          .execution_options(populate_existing=True)).first()
    assert row is not None  # read before in this session; a stored message is never deleted
    return row


def _unreadable(parsed: Parsed) -> str | None:
    if not parsed.text and not parsed.subject and not any(sniff(p.data) for p in parsed.parts):
        return "邮件没有可读的内容"
    return None


def _link(session: Session, row: InboundMessage, receipt: Receipt, status: InboundStatus) -> None:
    row.submission_id = session.scalar(select(Submission.id).where(Submission.reference == receipt.reference))
    row.status, row.reason = status.value, row.reason if status is InboundStatus.released else None


def _outcome(session: Session, row: InboundMessage, *, done_now: bool) -> Outcome:
    reference = None
    if row.submission_id:
        reference = session.scalar(select(Submission.reference).where(Submission.id == row.submission_id))
    return Outcome(row.id, row.status, reference, row.reason, done_now)


def take(factory: sessionmaker[Session], settings: Settings, raw: bytes, *, mailbox: str, uidvalidity: int = 0,
         uid: int = 0, received_at: datetime | None = None) -> Outcome:
    """Steps 1 and 2 for one message: store it raw (committed), then ingest it (committed)."""
    inbound_id, new = store_raw(factory, raw, mailbox=mailbox, uidvalidity=uidvalidity, uid=uid,
                                received_at=received_at)
    pause()
    outcome = ingest(factory, settings, inbound_id)
    return replace(outcome, done_now=True) if new and not outcome.done_now else outcome


def take_original(factory: sessionmaker[Session], settings: Settings, original: Original, *, mailbox: str,
                  uidvalidity: int = 0, uid: int = 0, received_at: datetime | None = None) -> Outcome:
    """Steps 1 and 2 for a message over the size limit, kept whole: stored quarantined, with the reason."""
    quarantine = headers_only(original.head)
    quarantine.problem = oversized_reason(original.size, settings.mail_max_bytes)
    inbound_id, new = store_original(factory, original, quarantine, mailbox=mailbox, uidvalidity=uidvalidity,
                                     uid=uid, received_at=received_at)
    outcome = ingest(factory, settings, inbound_id)
    return replace(outcome, done_now=True) if new and not outcome.done_now else outcome


def finish_stored(factory: sessionmaker[Session], settings: Settings) -> list[Outcome]:
    """Ingest every message a crashed run left stored but not yet read."""
    with factory() as session:
        ids = session.scalars(select(InboundMessage.id).where(InboundMessage.status == InboundStatus.stored.value)
                              .order_by(InboundMessage.id)).all()
    return [ingest(factory, settings, inbound_id) for inbound_id in ids]


# --- release by staff ----------------------------------------------------------------------------

class ReleaseError(Exception):
    """The message cannot be released (already released, or nothing to register it under)."""


def preview(row: InboundMessage, settings: Settings) -> Parsed:
    """What a release would register, read leniently (no limits, broken structure read as far as it goes)."""
    return parse_message(row.raw, Limits.of(settings), lenient=True)


def release(session: Session, settings: Settings, inbound_id: int, *, actor, client: str | None = None,
            acknowledge: bool = True) -> Receipt:
    """Make the submission of a quarantined message, audited; the caller commits."""
    row = session.scalars(select(InboundMessage).where(InboundMessage.id == inbound_id).with_for_update()
                          .execution_options(populate_existing=True)).first()
    if row is None or row.status != InboundStatus.quarantined.value:
        raise ReleaseError("这封邮件不在隔离区，可能已被其他人处理")
    bulletin = latest(session)
    if bulletin is None:
        raise ReleaseError(NO_BULLETIN)
    facts = {"released": {"by": actor.username, "quarantine_reason": row.reason}}
    draft = build_draft(preview(row, settings), row, bulletin, settings, acknowledge=acknowledge, facts=facts)
    receipt = create_submission(session, settings, draft)
    _link(session, row, receipt, InboundStatus.released)
    record(session, settings, action="mail_released", actor=actor.username, actor_id=actor.id,
           target=receipt.reference, client=client,
           details={"inbound_id": row.id, "reason": row.reason, "acknowledged": draft.email is not None})
    session.flush()
    return receipt
