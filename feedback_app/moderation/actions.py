"""What staff do to a submission. Each action checks the permissions table, moves the state through
``states.apply``, keeps the clocks, writes the audit log, and flushes."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback_app.audit.log import record_action
from feedback_app.core import clocks, states
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.errors import ActionError
from feedback_app.core.models import (
    InternalNote,
    Kind,
    RevealGrant,
    Role,
    StaffUser,
    State,
    Submission,
    Unit,
)
from feedback_app.core.permissions import Actor
from feedback_app.core.words import REJECT_REASONS


def _transition(session, settings, actor, submission, action, expected_version, *, public_text=None,
                **details):
    states.apply(session, submission, action, role=actor.role, expected_version=expected_version,
                 text=public_text)
    record_action(session, settings, actor, action, submission, state=submission.state, **details)


def accept(session: Session, settings: Settings, actor: Actor, submission: Submission, *, kind: str,
           expected_version: int) -> None:
    """Accept and classify by kind; the acceptance clocks start."""
    if kind not in {k.value for k in Kind}:
        raise ActionError("请选择类型")
    _transition(session, settings, actor, submission, "accept", expected_version, kind=kind)
    submission.kind = kind
    now = utcnow()
    submission.accepted_at = now
    today = now.astimezone(settings.tz).date()
    for met in ("inform", "acceptance_notice"):
        clocks.mark_met(session, submission, met, now)
    clocks.deadlines_on_acceptance(session, settings, submission, today)
    session.flush()


def reject(session: Session, settings: Settings, actor: Actor, submission: Submission, *, reason: str,
           note: str, expected_version: int) -> None:
    if reason not in REJECT_REASONS:
        raise ActionError("请选择不予受理的理由")
    if not note.strip():
        raise ActionError("请填写不予受理的说明")
    public = f"不予受理：{REJECT_REASONS[reason]}。{note.strip()}"
    _transition(session, settings, actor, submission, "reject", expected_version, public_text=public,
                reason=reason)
    submission.reject_reason = reason
    now = utcnow()
    for met in ("inform", "acceptance_notice"):
        clocks.mark_met(session, submission, met, now)
    clocks.refresh_next_due(submission)
    session.flush()


def assign(session: Session, settings: Settings, actor: Actor, submission: Submission, *, unit_id: int,
           handler_id: int | None, expected_version: int) -> None:
    unit = session.get(Unit, unit_id)
    if unit is None or not unit.active:
        raise ActionError("请选择责任单位")
    handler = session.get(StaffUser, handler_id) if handler_id else None
    if handler is not None and (handler.role != Role.handler.value or handler.unit_id != unit.id
                                or not handler.active):
        raise ActionError("承办人必须是该责任单位的在岗承办人")
    _transition(session, settings, actor, submission, "assign", expected_version, unit=unit.name,
                handler=handler.username if handler else None)
    submission.unit_id = unit.id
    submission.handler_id = handler.id if handler else None
    session.flush()


def merge(session: Session, settings: Settings, actor: Actor, submission: Submission, *,
          into_reference: str, expected_version: int) -> Submission:
    target = session.scalar(select(Submission).where(Submission.reference == into_reference.strip().upper()))
    if target is None or target.id == submission.id:
        raise ActionError("请填写要合并到的另一件的受理编号")
    if target.received_at > submission.received_at:
        raise ActionError("只能合并到更早收到的一件")
    if target.state == State.merged.value:
        raise ActionError("目标件本身已被合并，请合并到它所合并到的那一件")
    _transition(session, settings, actor, submission, "merge", expected_version,
                public_text=f"与受理编号 {target.reference} 合并办理", into=target.reference)
    submission.merged_into_id = target.id
    now = utcnow()
    for kind in ("inform", "acceptance_notice", "conclude", "feedback"):
        clocks.mark_met(session, submission, kind, now)
    clocks.refresh_next_due(submission)
    session.flush()
    return target


def reopen(session: Session, settings: Settings, actor: Actor, submission: Submission, *, note: str,
           expected_version: int) -> None:
    if not note.strip():
        raise ActionError("请填写重新办理的原因")
    _transition(session, settings, actor, submission, "reopen", expected_version, note=note.strip())


def close(session: Session, settings: Settings, actor: Actor, submission: Submission, *,
          expected_version: int) -> None:
    _transition(session, settings, actor, submission, "close", expected_version)


def add_note(session: Session, settings: Settings, actor: Actor, submission: Submission, body: str) -> None:
    if not states.allowed("note", State(submission.state), actor.role):
        raise states.TransitionRefused("note")
    if not body.strip():
        raise ActionError("请填写备注内容")
    session.add(InternalNote(submission_id=submission.id, author_id=actor.user.id, body=body.strip()))
    record_action(session, settings, actor, "note_added", submission)
    session.flush()


def reveal(session: Session, settings: Settings, actor: Actor, submission: Submission, reason: str) -> None:
    """A reviewer lifts the identity masking of this one submission for its handlers."""
    if not actor.may("reveal"):
        raise states.TransitionRefused("reveal")
    if not reason.strip():
        raise ActionError("请填写解除遮盖的理由")
    session.add(RevealGrant(submission_id=submission.id, granted_by_id=actor.user.id, reason=reason.strip()))
    record_action(session, settings, actor, "identity_revealed", submission, reason=reason.strip())
    session.flush()


def is_revealed(session: Session, submission: Submission) -> bool:
    return session.scalar(
        select(RevealGrant.id).where(RevealGrant.submission_id == submission.id).limit(1)
    ) is not None


def extend_deadline(session: Session, settings: Settings, actor: Actor, submission: Submission, *,
                    days: int, reason: str) -> None:
    if not actor.may("extend"):
        raise states.TransitionRefused("extend")
    clocks.extend(session, settings, submission, days, reason, actor.user)
    record_action(session, settings, actor, "deadline_extended", submission, days=days, reason=reason)
