"""The one place a submission's state changes: the transition table and ``apply``."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from feedback_app.core.database import utcnow
from feedback_app.core.models import State, Submission, SubmissionEvent
from feedback_app.core.permissions import may

S = State


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[State]  # the states it may be taken from
    target: State | None  # None: the state stays as it is


# From which state each action may be taken, and to which it leads. Who may take it: permissions.PERMISSIONS.
TRANSITIONS = {
    t.action: t
    for t in (
        Transition("accept", frozenset({S.received, S.reopened}), S.accepted),
        Transition("reject", frozenset({S.received, S.reopened}), S.rejected),
        Transition("merge", frozenset({S.received, S.accepted, S.reopened}), S.merged),
        Transition("assign", frozenset({S.accepted, S.assigned, S.reopened}), S.assigned),
        Transition("answer", frozenset({S.accepted, S.assigned, S.reopened}), S.answered),
        Transition("close", frozenset({S.answered}), S.closed),
        Transition("reopen", frozenset({S.answered, S.closed, S.rejected}), S.reopened),
        # Notes and reply drafts change no state; they are listed for the states they may be taken in.
        Transition("note", frozenset(State), None),
        Transition("draft_reply", frozenset({S.accepted, S.assigned, S.reopened}), None),
        # A citizen's follow-up on an answered or closed matter reopens it; otherwise it is noted.
        Transition("follow_up", frozenset(State) - {S.merged}, None),
        Transition("rate", frozenset({S.answered, S.closed}), None),
    )
}
FOLLOW_UP_REOPENS = frozenset({S.answered, S.closed})


class TransitionRefused(Exception):
    """The action is not allowed for this role in this state."""


class StaleSubmission(Exception):
    """The submission changed since the form was shown."""


def allowed(action: str, state: State, role: str) -> bool:
    """Whether ``role`` may take ``action`` (the permissions table) from ``state`` (the transition table)."""
    t = TRANSITIONS.get(action)
    return t is not None and may(role, action) and state in t.sources


def apply(
    session: Session,
    submission: Submission,
    action: str,
    *,
    role: str,
    expected_version: int | None = None,
    text: str | None = None,
    public: bool = True,
) -> SubmissionEvent:
    """Perform ``action`` on ``submission`` as ``role``, record it, and flush."""
    if expected_version is not None and expected_version != submission.version:
        raise StaleSubmission(submission.reference)
    state = State(submission.state)
    if not allowed(action, state, role):
        raise TransitionRefused(f"{action} from {state.value} by {role}")
    target = TRANSITIONS[action].target
    if action == "follow_up" and state in FOLLOW_UP_REOPENS:
        target = S.reopened
    if target is not None:
        submission.state = target.value
    event = SubmissionEvent(
        action=action, state_after=submission.state, public=public, text=text, at=utcnow()
    )
    submission.events.append(event)
    session.flush()
    return event
