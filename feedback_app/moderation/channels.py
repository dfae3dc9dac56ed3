"""The channels at a glance: what came in today by each channel, the mailbox fetch, quarantine, the outbox.

``channel_alarms`` gives the same alarms as Chinese lines for ``/healthz``. A mailbox alarms when its
fetch has been failing for longer than ``settings.mail_alarm_minutes``, and, when a mailbox is
configured, when no fetch at all has been tried for that long.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import (
    AuditEntry,
    Channel,
    InboundMessage,
    InboundStatus,
    MailboxState,
    OutboxMessage,
    OutboxStatus,
    Submission,
)
from feedback_app.core.words import CHANNEL_LABELS

OUTBOX_SHOWN = 20
OUTBOX_KIND_LABELS = {"acknowledgement": "受理回执", "reply": "答复"}
# Logged by a clerk: counted from the audit log (the day it was logged, not the day of the call).
LOGGED = {Channel.phone: "intake_phone", Channel.letter: "intake_letter", Channel.visit: "intake_visit"}


@dataclass(frozen=True)
class MailboxRow:
    mailbox: str
    label: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None
    last_error: str | None
    failing_minutes: int | None  # how long it has been failing, when it is
    alarm: bool


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    label: str
    today: int
    counted: str  # what the number counts


@dataclass(frozen=True)
class OutboxFailure:
    kind: str
    kind_label: str
    attempts: int
    created_at: datetime
    recipient: str
    last_error: str | None
    reference: str | None


def mailbox_label(name: str) -> str:
    return name[len("imap:"):] if name.startswith("imap:") else name


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


def mailbox_rows(session: Session, settings: Settings, now: datetime | None = None) -> list[MailboxRow]:
    now = now or utcnow()
    limit = timedelta(minutes=settings.mail_alarm_minutes)
    rows = []
    for state in session.scalars(select(MailboxState).order_by(MailboxState.mailbox)):
        failing = _minutes(now - state.failing_since) if state.failing_since else None
        rows.append(MailboxRow(
            mailbox=state.mailbox, label=mailbox_label(state.mailbox), last_attempt_at=state.last_attempt_at,
            last_success_at=state.last_success_at, failing_since=state.failing_since,
            last_error=state.last_error, failing_minutes=failing,
            alarm=state.failing_since is not None and now - state.failing_since > limit,
        ))
    return rows


def _stalled(rows: list[MailboxRow], settings: Settings, now: datetime) -> str | None:
    """A configured mailbox that nobody has tried to fetch for too long."""
    if not settings.imap_host:
        return None
    attempts = [r.last_attempt_at for r in rows if r.last_attempt_at is not None]
    if not attempts:
        return "已配置收件邮箱，但邮件收取从未运行"
    quiet = now - max(attempts)
    if quiet > timedelta(minutes=settings.mail_alarm_minutes):
        return f"邮件收取已 {_minutes(quiet)} 分钟没有运行"
    return None


def channel_alarms(session: Session, settings: Settings, now: datetime | None = None) -> list[str]:
    """Every channel alarm, one Chinese line each; empty when all is well."""
    now = now or utcnow()
    rows = mailbox_rows(session, settings, now)
    alarms = [f"邮箱 {r.label} 已连续 {r.failing_minutes} 分钟收取失败" for r in rows if r.alarm]
    stalled = _stalled(rows, settings, now)
    if stalled:
        alarms.append(stalled)
    return alarms


def _local_midnight(settings: Settings, now: datetime) -> datetime:
    return datetime.combine(now.astimezone(settings.tz).date(), time.min, tzinfo=settings.tz)


def today_counts(session: Session, settings: Settings, now: datetime | None = None) -> list[ChannelRow]:
    """Web and email: received since local midnight; phone, letter, visit: logged since local midnight."""
    since = _local_midnight(settings, now or utcnow())
    received = dict(session.execute(
        select(Submission.channel, func.count()).where(
            Submission.received_at >= since, Submission.channel.in_([Channel.web.value, Channel.email.value]))
        .group_by(Submission.channel)).all())
    logged = dict(session.execute(
        select(AuditEntry.action, func.count()).where(AuditEntry.at >= since,
                                                      AuditEntry.action.in_(list(LOGGED.values())))
        .group_by(AuditEntry.action)).all())
    rows = [ChannelRow(Channel.web.value, CHANNEL_LABELS[Channel.web], received.get(Channel.web.value, 0),
                       "今日收到")]
    for channel, action in LOGGED.items():
        rows.append(ChannelRow(channel.value, CHANNEL_LABELS[channel], logged.get(action, 0), "今日登记"))
    rows.append(ChannelRow(Channel.email.value, CHANNEL_LABELS[Channel.email],
                           received.get(Channel.email.value, 0), "今日收到"))
    return rows


def quarantined(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(InboundMessage)
                          .where(InboundMessage.status == InboundStatus.quarantined.value)) or 0


def outbox_failures(session: Session, shown: int = OUTBOX_SHOWN) -> tuple[int, list[OutboxFailure]]:
    """How many outgoing mails failed for good, and the latest ``shown`` of them."""
    failed = OutboxMessage.status == OutboxStatus.failed.value
    count = session.scalar(select(func.count()).select_from(OutboxMessage).where(failed)) or 0
    rows = session.execute(
        select(OutboxMessage, Submission.reference)
        .outerjoin(Submission, Submission.id == OutboxMessage.submission_id)
        .where(failed).order_by(OutboxMessage.id.desc()).limit(shown)
    ).all()
    return count, [
        OutboxFailure(m.kind, OUTBOX_KIND_LABELS.get(m.kind, m.kind), m.attempts, m.created_at, m.recipient,
                      m.last_error, reference)
        for m, reference in rows
    ]
