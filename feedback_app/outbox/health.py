"""The outbox at a glance, for ``/healthz``: what waits, since when, and what failed. Reads only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from feedback_app.core.database import utcnow
from feedback_app.core.models import OutboxMessage, OutboxStatus


@dataclass(frozen=True)
class OutboxState:
    waiting: int  # pending: not yet sent, still to be tried
    retrying: int  # of those, tried at least once and failed
    oldest_waiting_at: datetime | None  # when the oldest waiting message was queued
    oldest_due_at: datetime | None  # the earliest time a waiting message is due at (past: it waits for a sender)
    failed: int  # given up for good
    # when the newest given-up message was due for its last attempt: the table keeps no time of failure,
    # and that attempt ran at this time or soon after
    last_failure_due_at: datetime | None


def outbox_state(session: Session) -> OutboxState:
    """One aggregate over the waiting and the failed messages (both found through the status index)."""
    M = OutboxMessage
    rows = session.execute(
        select(M.status, func.count(), func.sum(case((M.attempts > 0, 1), else_=0)),
               func.min(M.created_at), func.min(M.next_attempt_at), func.max(M.next_attempt_at))
        .where(M.status.in_([OutboxStatus.pending.value, OutboxStatus.failed.value]))
        .group_by(M.status)
    ).all()
    by_status = {row[0]: row for row in rows}
    pending = by_status.get(OutboxStatus.pending.value)
    failed = by_status.get(OutboxStatus.failed.value)
    return OutboxState(
        waiting=pending[1] if pending else 0,
        retrying=int(pending[2] or 0) if pending else 0,
        oldest_waiting_at=pending[3] if pending else None,
        oldest_due_at=pending[4] if pending else None,
        failed=failed[1] if failed else 0,
        last_failure_due_at=failed[5] if failed else None,
    )


def overdue_seconds(state: OutboxState, now: datetime | None = None) -> int | None:
    """How long the most overdue waiting message has been due; None when none is due yet."""
    if state.oldest_due_at is None:
        return None
    overdue = ((now or utcnow()) - state.oldest_due_at).total_seconds()
    return int(overdue) if overdue >= 0 else None
