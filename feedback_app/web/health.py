"""``/healthz``: can the service take a submission now: can the database be written, is there disk.

Polled every few seconds by a load balancer or a monitor, so it is cheap: the probes of
``core.probes`` (a write rolled back, two ``statvfs``), run at most once per ``PROBE_SECONDS`` in each
worker (a flood of requests to this public address cannot turn into a flood of write locks), and a
handful of small aggregate reads. It answers JSON, never cached, with no personal data (counts and
ages, no addresses, paths or error texts).

**200 or 503 is decided by the database and the disk alone** (``core.probes``). **Reported, never a
503**: the outbox (how many mails wait, the oldest, failures), the mailboxes (``mailbox.health``) and
``alarms``, one Chinese line each (the channel alarms, a search backlog that no longer shrinks, mail due
and not sent). A stuck outbox or a failing mailbox is an alarm for the operator; the site still takes
submissions, so it is not taken out of the load balancer for it.

The probe runs before the request's own (read-only) transaction begins, so it waits on nothing this
request holds.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from feedback_app import current
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.probes import DATABASE_PROBLEMS, OK, UNREACHABLE, disk_state, error_name, probe_database
from feedback_app.mailbox.health import mailbox_health
from feedback_app.moderation.channels import channel_alarms
from feedback_app.outbox.health import OutboxState, outbox_state, overdue_seconds
from feedback_app.search import backlog as search_backlog
from feedback_app.web.access import public
from feedback_app.web.transaction import get_session

bp = Blueprint("health", __name__)

PROBE_SECONDS = 2.0  # a worker probes the database and the disk at most this often
_probed = threading.Lock()


def _probes() -> tuple[str, dict[str, Any]]:
    """The database's and the disk's state, probed anew when the last probe of this app is older than
    ``PROBE_SECONDS`` (one probe at a time; the others take its answer)."""
    with _probed:
        last = current_app.extensions.get("health_probe")
        if last is not None and time.monotonic() - last[0] < PROBE_SECONDS:
            return last[1], dict(last[2])
        engine = current.engine()
        database = probe_database(engine)
        disk = disk_state(engine, current.settings())
        current_app.extensions["health_probe"] = (time.monotonic(), database, disk)
        return database, dict(disk)


@bp.get("/healthz")
@public
def healthz():
    settings = current.settings()
    database, disk = _probes()  # first: before this request's own transaction begins
    problems = [DATABASE_PROBLEMS[database]] if database != OK else []
    problems += disk.pop("problems")
    body: dict[str, Any] = {"status": "error" if problems else "ok", "database": database, "disk": disk}
    if database != UNREACHABLE:  # reading would fail (or wait) the same way
        body.update(_reported(settings))
    else:
        body.update(outbox=None, mailbox=None, alarms=[])
    body["problems"] = problems
    response = jsonify(body)
    response.status_code = 503 if problems else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def _seconds_since(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, int((now - moment).total_seconds()))


def _outbox(state: OutboxState, now: datetime) -> dict[str, Any]:
    return {
        "waiting": state.waiting,
        "retrying": state.retrying,
        "oldest_waiting_seconds": _seconds_since(state.oldest_waiting_at, now),
        "overdue_seconds": overdue_seconds(state, now),
        "failed": state.failed,
        "last_failure_seconds": _seconds_since(state.last_failure_due_at, now),
    }


def _reported(settings: Settings) -> dict[str, Any]:
    """The outbox, the mailboxes and the alarms, read in the request's read-only transaction."""
    now = utcnow()
    try:
        session = get_session()
        alarms = channel_alarms(session, settings, now)
        backlog = search_backlog.alarm(session.connection())
        outbox = outbox_state(session)
        mailboxes = mailbox_health(session, settings, now=now)
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: state unreadable (%s)", error_name(exc))
        return {"outbox": None, "mailbox": None, "alarms": ["无法读取渠道状态"]}
    if backlog:
        alarms.append(backlog)
    overdue = overdue_seconds(outbox, now)
    if overdue is not None and overdue > settings.mail_alarm_minutes * 60:
        alarms.append(f"发件箱有邮件到期 {overdue // 60} 分钟仍未发送，请检查发信任务是否在运行")
    configured = next((m for m in mailboxes if m.configured), None)
    mailbox: dict[str, Any] = {
        "known": len(mailboxes),
        "in_alarm": sum(m.alarm for m in mailboxes),
        "quarantined": sum(m.quarantined for m in mailboxes),
        "configured": None if configured is None else {
            "alarm": configured.alarm,
            "last_attempt_seconds": _seconds_since(configured.last_attempt_at, now),
            "last_success_seconds": _seconds_since(configured.last_success_at, now),
            "failing_seconds": _seconds_since(configured.failing_since, now),
        },
    }
    return {"outbox": _outbox(outbox, now), "mailbox": mailbox, "alarms": alarms}
