"""The channels at a glance, for staff (the figures: ``moderation.channels``)."""
from __future__ import annotations

from flask import Blueprint, render_template

from feedback_app import current
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.moderation.channels import (
    channel_alarms,
    mailbox_rows,
    outbox_failures,
    quarantined,
    today_counts,
)
from feedback_app.web.access import may_here, require
from feedback_app.web.transaction import get_session

bp = Blueprint("dashboard", __name__, url_prefix="/staff/dashboard")

@bp.get("")
@require("dashboard.view")
def index():
    s: Settings = current.settings()
    db = get_session()
    now = utcnow()
    rows = mailbox_rows(db, s, now)
    count, failures = outbox_failures(db)
    return render_template(
        "dashboard/index.html",
        alarms=channel_alarms(db, s, now),
        channels=today_counts(db, s, now),
        mailboxes=rows,
        imap_configured=bool(s.imap_host),
        alarm_minutes=s.mail_alarm_minutes,
        quarantined=quarantined(db),
        outbox_failed=count,
        outbox=failures,
        show_addresses=may_here("dashboard.contacts"),
        can_log=may_here("intake.register"),
    )
