"""The public monthly figures: what the office received in a month that has ended, and what became of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.models import Reply, State, Submission
from feedback_app.outcomes.statistics import NOT_ACCEPTED, Count, Period, Satisfaction, days_between, labels


@dataclass
class MonthlyStats:
    month: date  # the first day
    received: int = 0
    by_channel: list[Count] = field(default_factory=list)
    by_kind: list[Count] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    concluded: int = 0
    replied: int = 0
    average_days_to_reply: float | None = None
    satisfaction: Satisfaction = field(default_factory=lambda: Satisfaction([]))

    @property
    def label(self) -> str:
        return f"{self.month.year}年{self.month.month}月"


def month_period(month: date) -> Period:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following)


def last_complete_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def parse_month(value: str | None, today: date) -> date | None:
    """``YYYY-MM`` → its first day; None when absent; ValueError when malformed or not yet complete."""
    if not value:
        return None
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(value)
        first = date(int(year), int(month), 1)
    except (TypeError, ValueError) as exc:
        raise ValueError(value) from exc
    if first.year < 2000 or first > today.replace(day=1):
        raise ValueError(value)
    return first


def monthly_stats(session: Session, settings: Settings, month: date) -> MonthlyStats:
    """What the public page shows for one month: received (by channel and kind), accepted,
    rejected, concluded, replied and the average days to reply, and the satisfaction ratings.

    Received, accepted and rejected count the month's submissions (by receipt); concluded counts
    those whose handling was concluded in the month (``concluded_at``); replied and the average
    count the replies approved in the month (the first of each submission in the month, from its
    receipt); satisfaction counts the ratings of the submissions concluded in the month.
    """
    period = month_period(month)
    start, end = period.bounds(settings)
    stats = MonthlyStats(month=period.start)
    channel_words, kind_words, _states, rating_words = labels()
    in_month = [Submission.received_at >= start, Submission.received_at < end]

    rows = session.execute(
        select(Submission.channel, Submission.kind, Submission.state, func.count())
        .where(*in_month).group_by(Submission.channel, Submission.kind, Submission.state)
    ).all()
    channels: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for channel, kind, state, n in rows:
        stats.received += n
        channels[channel] = channels.get(channel, 0) + n
        kinds[kind] = kinds.get(kind, 0) + n
        if state == State.rejected.value:
            stats.rejected += n
        elif state not in NOT_ACCEPTED:
            stats.accepted += n
    stats.by_channel = [Count(k, v, channels.get(k, 0)) for k, v in channel_words.items()]
    stats.by_kind = [Count(k, v, kinds.get(k, 0)) for k, v in kind_words.items()]

    concluded = and_(Submission.concluded_at >= start, Submission.concluded_at < end)
    ratings = dict(session.execute(
        select(Submission.rating, func.count()).where(concluded).group_by(Submission.rating)
    ).all())
    stats.concluded = sum(ratings.values())
    stats.satisfaction = Satisfaction([Count(k, v, ratings.get(k, 0)) for k, v in rating_words.items()])

    first_reply = (
        select(Reply.submission_id, func.min(Reply.approved_at).label("at"))
        .where(Reply.approved_at >= start, Reply.approved_at < end)
        .group_by(Reply.submission_id)
        .subquery()
    )
    replied, average = session.execute(
        select(func.count(), func.avg(days_between(session, first_reply.c.at, Submission.received_at)))
        .select_from(first_reply).join(Submission, Submission.id == first_reply.c.submission_id)
    ).one()
    stats.replied = replied or 0
    stats.average_days_to_reply = float(average) if average is not None else None
    return stats
