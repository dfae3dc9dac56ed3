"""Writing and verifying the audit chain.

Each entry's hash is an HMAC, under a key that is not in the database, of the previous entry's hash
and the entry's own fields. Editing, deleting or reordering entries breaks the chain at that point.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import AuditEntry, AuditHead, Submission
from feedback_app.core.permissions import Actor

GENESIS = "0" * 64


def audit_key(settings: Settings) -> bytes:
    return settings.audit_key.encode() if settings.audit_key else settings.subkey("audit-chain")


def _canonical(entry: AuditEntry) -> bytes:
    fields = [entry.id, entry.at.isoformat(timespec="microseconds"), entry.actor_id, entry.actor,
              entry.action, entry.target, entry.client, entry.details]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def _hash(key: bytes, prev_hash: str, entry: AuditEntry) -> str:
    return hmac.new(key, prev_hash.encode() + b"|" + _canonical(entry), hashlib.sha256).hexdigest()


def record(
    session: Session,
    settings: Settings,
    *,
    action: str,
    actor: str,
    actor_id: int | None = None,
    target: str | None = None,
    client: str | None = None,
    details: dict | None = None,
) -> AuditEntry:
    """Append one entry in the current transaction, and flush."""
    head = session.execute(
        update(AuditHead).where(AuditHead.id == 1)
        .values(last_id=AuditHead.last_id + 1)
        .returning(AuditHead.last_id, AuditHead.last_hash)
    ).one()  # the head row is created by the migration
    entry_id, prev_hash = head
    now: datetime = utcnow()
    entry = AuditEntry(
        id=entry_id, at=now, actor_id=actor_id, actor=actor,
        action=action, target=target, client=client,
        details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        prev_hash=prev_hash,
    )
    entry.entry_hash = _hash(audit_key(settings), prev_hash, entry)
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=entry.entry_hash))
    session.flush()
    return entry


def record_action(session: Session, settings: Settings, actor: Actor, action: str, submission: Submission,
                  **details: object) -> AuditEntry:
    """Append what ``actor`` did to ``submission``."""
    return record(session, settings, action=action, actor=actor.user.username, actor_id=actor.user.id,
                  target=submission.reference, client=actor.client, details=details)


@dataclass(frozen=True)
class Verification:
    checked: int
    broken_id: int | None
    reason: str | None


def verify(session: Session, settings: Settings) -> Verification:
    """Walk the chain from the start; name the first entry that does not fit."""
    key = audit_key(settings)
    prev_hash, expected_id, checked = GENESIS, 1, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
        if entry.id != expected_id:
            return Verification(checked, expected_id, f"条目 {expected_id} 缺失")
        if entry.prev_hash != prev_hash:
            return Verification(checked, entry.id, "与前一条目的链接不符")
        if not hmac.compare_digest(entry.entry_hash, _hash(key, prev_hash, entry)):
            return Verification(checked, entry.id, "内容已被改动")
        prev_hash, expected_id, checked = entry.entry_hash, expected_id + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is not None and head.last_id != checked:
        return Verification(checked, checked + 1, f"末尾缺少条目（应有 {head.last_id} 条）")
    return Verification(checked, None, None)
