"""Mailbox health: every fetch records when it tried, when it last worked and since when it fails."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import InboundMessage, InboundStatus, MailboxState


def mailbox_key(settings: Settings) -> str:
    """The configured IMAP mailbox as it is named in the records."""
    return f"imap:{settings.imap_username}@{settings.imap_host}/{settings.imap_mailbox}"[:200]


def record_attempt(factory: sessionmaker[Session], mailbox: str, *, error: str | None, started: bool = False,
                   at: datetime | None = None) -> None:
    """A fetch starting (``started``), or its result: ``error`` None for success, else a short text
    without personal data."""
    now = at or utcnow()
    with factory() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        state = session.get(MailboxState, mailbox, with_for_update=True)
        if state is None:
            state = MailboxState(mailbox=mailbox)
            session.add(state)
        state.last_attempt_at = now
        if started:
            pass
        elif error is None:
            state.last_success_at, state.failing_since, state.last_error = now, None, None
        else:
            state.failing_since = state.failing_since or now
            state.last_error = error[:500]
        session.commit()


@dataclass(frozen=True)
class MailboxHealth:
    mailbox: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None
    last_error: str | None
    alarm: bool
    quarantined: int
    configured: bool  # the mailbox ``mail fetch`` reads now (not an old one, nor file imports)


def mailbox_health(session: Session, settings: Settings, *, now: datetime | None = None) -> list[MailboxHealth]:
    """Each mailbox known from fetches, from the settings or from quarantined mail, configured one first."""
    now = now or utcnow()
    limit = timedelta(minutes=settings.mail_alarm_minutes)
    states = {s.mailbox: s for s in session.scalars(select(MailboxState))}
    counts = dict(session.execute(
        select(InboundMessage.mailbox, func.count()).where(InboundMessage.status == InboundStatus.quarantined.value)
        .group_by(InboundMessage.mailbox)).all())
    configured = mailbox_key(settings) if settings.imap_host else None
    names = sorted(set(states) | set(counts) | ({configured} if configured else set()),
                   key=lambda name: (name != configured, name))
    result = []
    for name in names:
        state = states.get(name) or MailboxState(mailbox=name)
        failing = state.failing_since is not None and now - state.failing_since > limit
        stale = (name == configured and not failing and state.last_success_at is not None
                 and now - state.last_success_at > limit)
        result.append(MailboxHealth(name, state.last_attempt_at, state.last_success_at, state.failing_since,
                                    state.last_error, failing or stale, counts.get(name, 0), name == configured))
    return result


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def alarms(session: Session, settings: Settings, *, now: datetime | None = None) -> list[str]:
    """One Chinese line per mailbox in alarm, for /healthz and the dashboard."""
    now = now or utcnow()
    lines = []
    for h in mailbox_health(session, settings, now=now):
        if not h.alarm:
            continue
        if h.failing_since is not None:
            since = h.failing_since.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
            lines.append(f"邮箱 {h.mailbox} 自 {since} 起收取失败（已 {_minutes(now - h.failing_since)} 分钟）："
                         f"{h.last_error or '原因不明'}")
        else:
            assert h.last_success_at is not None  # in alarm without failing: stale since its last success
            lines.append(f"邮箱 {h.mailbox} 已 {_minutes(now - h.last_success_at)} 分钟没有成功收取，"
                         "请检查收信任务是否在运行")
    return lines
