"""Queue mail with the data it reports and deliver it later, one short transaction per message."""
from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.logsafe import redact
from feedback_app.core.models import OutboxMessage, OutboxStatus

log = logging.getLogger("feedback_app.mail")

MAX_BACKOFF = timedelta(hours=6)
_REPLIED = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError)


@dataclass(frozen=True)
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class PermanentError(Exception):
    """The message cannot be delivered as it is; retrying will not help."""


def enqueue(session: Session, *, kind: str, recipient: str, subject: str, body: str,
            submission_id: int | None = None) -> OutboxMessage:
    message = OutboxMessage(kind=kind, recipient=recipient, subject=subject, body=body,
                            submission_id=submission_id, status=OutboxStatus.pending.value,
                            attempts=0, next_attempt_at=utcnow())
    session.add(message)
    session.flush()
    return message


def failed_messages(session: Session) -> list[OutboxMessage]:
    stmt = (select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.failed.value)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()))
    return list(session.scalars(stmt))


def connect(settings: Settings) -> smtplib.SMTP:
    """An open, greeted and (if configured) authenticated connection to the relay."""
    if not settings.smtp_host:
        raise OSError("FEEDBACK_SMTP_HOST is not set")
    cls = smtplib.SMTP_SSL if settings.smtp_security == "tls" else smtplib.SMTP
    smtp = cls(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
    try:
        smtp.ehlo()
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def send_due(session_factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None,
             limit: int = 100, smtp_factory: Callable[[Settings], smtplib.SMTP] | None = None) -> SendReport:
    """Deliver due pending messages over one connection; mail problems never raise."""
    now = now or utcnow()
    counts = {"sent": 0, "retried": 0, "failed": 0}
    smtp: smtplib.SMTP | None = None
    unreachable: str | None = None
    seen: list[int] = []
    try:
        while len(seen) < limit:
            if smtp is None and unreachable is None:
                with session_factory() as peek:
                    if not peek.scalar(select(exists().where(_due(now, seen)))):
                        break
                try:
                    smtp = (smtp_factory or connect)(settings)
                except Exception as exc:
                    unreachable = _describe(exc)
                    log.warning("mail server unreachable (%s); deferring due messages", type(exc).__name__)
            with session_factory() as session:
                if session.get_bind().dialect.name == "sqlite":
                    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
                message = _claim(session, now, seen)
                if message is None:
                    break
                seen.append(message.id)
                if smtp is None:
                    assert unreachable is not None  # no connection: connecting failed, for this reason
                    outcome = _temporary(message, settings, now, unreachable)
                else:
                    try:
                        smtp.send_message(_build(message, settings, now, smtp))
                    except Exception as exc:
                        outcome = _failure(message, settings, now, exc)
                        if not _usable_after(smtp, exc):
                            _close(smtp)
                            smtp = None
                    else:
                        message.status, message.sent_at, message.last_error = OutboxStatus.sent.value, now, None
                        message.attempts += 1
                        outcome = "sent"
                counts[outcome] += 1
                session.commit()
    finally:
        _close(smtp)
    report = SendReport(**counts)
    if seen:
        log.info("outbox: sent=%d retried=%d failed=%d", report.sent, report.retried, report.failed)
    return report


def _due(now: datetime, seen: list[int]):
    return ((OutboxMessage.status == OutboxStatus.pending.value) & (OutboxMessage.next_attempt_at <= now)
            & OutboxMessage.id.not_in(seen))


def _claim(session: Session, now: datetime, seen: list[int]) -> OutboxMessage | None:
    """The oldest due message, locked (PostgreSQL: skipping rows another sender holds)."""
    stmt = (select(OutboxMessage).where(_due(now, seen))
            .order_by(OutboxMessage.created_at, OutboxMessage.id).limit(1)
            .with_for_update(skip_locked=True))
    return session.scalars(stmt).first()


def _build(message: OutboxMessage, settings: Settings, now: datetime, smtp: smtplib.SMTP) -> EmailMessage:
    name, sender = parseaddr(settings.mail_from)
    sender = _deliverable(sender, smtp)
    msg = EmailMessage()
    msg["From"] = Address(display_name=name, addr_spec=sender)
    msg["To"] = _deliverable(message.recipient, smtp)
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].encode("idna").decode() or "localhost")
    msg.set_content(message.body, charset="utf-8", cte="base64")
    return msg


def _deliverable(address: str, smtp: smtplib.SMTP) -> str:
    """The address as the relay takes it: as is with SMTPUTF8 (smtplib then asks for it), else IDNA."""
    if address.isascii() or smtp.has_extn("smtputf8"):
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise PermanentError("邮件服务器不支持 SMTPUTF8，无法投递到用户名含非 ASCII 字符的地址")
    try:
        return f"{local}@{domain.encode('idna').decode()}"
    except UnicodeError as exc:
        raise PermanentError("收件地址的域名无效") from exc


def _failure(message: OutboxMessage, settings: Settings, now: datetime, exc: Exception) -> str:
    error = _describe(exc, message.recipient)
    if not isinstance(exc, (OSError, ValueError, PermanentError)):
        log.warning("outbox: unexpected %s while sending", type(exc).__name__)
    if not _is_permanent(exc):
        return _temporary(message, settings, now, error)
    message.status, message.last_error, message.attempts = OutboxStatus.failed.value, error, message.attempts + 1
    return "failed"


def _is_permanent(exc: Exception) -> bool:
    """5xx replies and messages that cannot be built or addressed; everything else is retried."""
    replies = _replies(exc)
    if replies:
        return min(code for code, _ in replies) >= 500
    return isinstance(exc, (PermanentError, smtplib.SMTPNotSupportedError, ValueError))


def _temporary(message: OutboxMessage, settings: Settings, now: datetime, error: str) -> str:
    message.attempts += 1
    message.last_error = error
    if message.attempts >= settings.outbox_max_attempts:
        message.status = OutboxStatus.failed.value
        return "failed"
    delay = timedelta(seconds=settings.outbox_backoff_seconds * 2 ** min(message.attempts - 1, 20))
    message.next_attempt_at = now + min(delay, MAX_BACKOFF)
    return "retried"


def _describe(exc: Exception, recipient: str | None = None) -> str:
    """A short error for staff: the server's reply without the recipient's address."""
    if isinstance(exc, PermanentError):
        return str(exc)
    detail = "; ".join(f"{code} {text}" for code, text in _replies(exc)) or str(exc)
    if recipient:
        detail = detail.replace(recipient, "[收件人]")
    return redact(f"{type(exc).__name__}: {detail}".strip())[:300]


def _replies(exc: Exception) -> list[tuple[int, str]]:
    pairs: list[tuple[int, bytes | str]]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        pairs = list(exc.recipients.values())
    elif isinstance(exc, smtplib.SMTPResponseException):
        pairs = [(exc.smtp_code, exc.smtp_error)]
    else:
        return []
    return [(code, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)) for code, text in pairs]


def _usable_after(smtp: smtplib.SMTP, exc: Exception) -> bool:
    if isinstance(exc, OSError) and not isinstance(exc, _REPLIED):
        return False
    try:
        smtp.rset()
    except OSError:
        return False
    return True


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except OSError:
            smtp.close()
