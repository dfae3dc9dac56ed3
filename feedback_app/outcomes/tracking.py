"""What a citizen holding a reference number and query code may see and do."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback_app.core import querycode, states
from feedback_app.core.config import Settings
from feedback_app.core.models import Kind, Rating, State, Submission
from feedback_app.core.permissions import CITIZEN
from feedback_app.core.querycode import QUERY_CODE_KEY
from feedback_app.core.words import (
    KIND_LABELS,
    PUBLIC_WORDS,
    RATING_LABELS,
    STATE_WORDS,
)

_DUMMY_HASH = "0" * 64


@dataclass(frozen=True)
class Step:
    at: datetime
    words: str
    text: str | None


@dataclass(frozen=True)
class ReplyView:
    at: datetime
    body: str


@dataclass(frozen=True)
class StatusView:
    reference: str
    received_at: datetime
    kind: str
    item_number: int
    state_words: str
    steps: list[Step]
    replies: list[ReplyView]
    can_rate: bool
    rating: str | None
    can_follow_up: bool


def find_for_citizen(session: Session, settings: Settings, reference: str, code: str) -> Submission | None:
    """The submission when both match; the same None (after the same work) when either is wrong."""
    reference = "".join(reference.split()).upper()
    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    stored = submission.query_code_hash if submission is not None else _DUMMY_HASH
    if querycode.matches(settings.subkey(QUERY_CODE_KEY), code, stored) and submission is not None:
        return submission
    return None


def status_view(submission: Submission) -> StatusView:
    replies = [ReplyView(r.approved_at, r.body) for r in submission.replies if r.approved_at is not None]
    steps = [
        Step(e.at, PUBLIC_WORDS.get(e.action, STATE_WORDS[State(e.state_after)]), e.text)
        for e in submission.events
        if e.public
    ]
    state = State(submission.state)
    return StatusView(
        reference=submission.reference,
        received_at=submission.received_at,
        kind=KIND_LABELS[Kind(submission.kind)],
        item_number=submission.item_number,
        state_words=STATE_WORDS[state],
        steps=steps,
        replies=replies,
        can_rate=bool(replies) and states.allowed("rate", state, CITIZEN),
        rating=RATING_LABELS[Rating(submission.rating)] if submission.rating else None,
        can_follow_up=states.allowed("follow_up", state, CITIZEN),
    )


def add_follow_up(session: Session, submission: Submission, text: str) -> None:
    states.apply(session, submission, "follow_up", role=CITIZEN, text=text)


def rate(session: Session, submission: Submission, rating: str) -> bool:
    """Record the citizen's rating of the reply; False when there is no reply to rate yet."""
    if not status_view(submission).can_rate:
        return False
    submission.rating = Rating(rating).value
    states.apply(session, submission, "rate", role=CITIZEN, text=RATING_LABELS[Rating(rating)])
    return True
