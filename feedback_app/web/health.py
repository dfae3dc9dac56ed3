"""``/healthz``: is the database reachable."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from feedback_app import current
from feedback_app.moderation.channels import channel_alarms
from feedback_app.search import backlog as search_backlog
from feedback_app.web.access import public
from feedback_app.web.transaction import get_session

bp = Blueprint("health", __name__)


def _alarms() -> list[str]:
    """Channel alarms (a mailbox failing too long) and a search backlog that no longer shrinks:
    reported, while the service itself answers."""
    session = get_session()
    try:
        alarms = channel_alarms(session, current.settings())
        backlog = search_backlog.alarm(session.connection())
    except SQLAlchemyError:
        return ["无法读取渠道状态"]
    return [*alarms, backlog] if backlog else alarms


@bp.get("/healthz")
@public
def healthz():
    engine = current.engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        current_app.logger.warning("health check: database unreachable")
        response = jsonify(status="error", database="unreachable")
        response.status_code = 503
    else:
        response = jsonify(status="ok", database="ok", alarms=_alarms())
    response.headers["Cache-Control"] = "no-store"
    return response
