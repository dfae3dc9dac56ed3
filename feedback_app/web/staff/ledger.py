"""The ledger pages: how many submissions the queue's filters match, and the CSV / XLSX downloads.

A POST to ``/staff/ledger/export.csv`` with the queue's filters as its fields exports what the queue
shows under them (the search words come, as in the queue, from the session when ``search=1``), in
order of receipt and without paging. It is a POST because it is recorded: the audit entry is committed
before the first row leaves. Handlers get their unit's submissions; only admins get personal details.
"""
from __future__ import annotations

from collections.abc import Mapping

from flask import (
    Blueprint,
    Response,
    render_template,
    request,
    stream_with_context,
)
from flask import session as cookie
from sqlalchemy import select

from feedback_app import current
from feedback_app.bulletin.service import latest
from feedback_app.core.models import Unit
from feedback_app.current import settings
from feedback_app.moderation import queue
from feedback_app.outcomes import ledger
from feedback_app.web.access import current_staff, may_here, require
from feedback_app.web.transaction import get_session

bp = Blueprint("ledger", __name__, url_prefix="/staff/ledger")

# the queue's arguments the ledger honours (sort and the page cursor do not apply)
FILTER_ARGS = ("state", "channel", "item", "kind", "unit", "due", "from", "to", "search")



def _filters(values: Mapping[str, str]) -> queue.Filters:
    q = cookie.get("queue_q") if values.get("search") else None
    return queue.parse_filters(values, q)


def _args() -> dict[str, str]:
    return {k: v for k, v in request.args.items() if k in FILTER_ARGS and v}


@bp.get("", endpoint="index")
@require("ledger.export")
def index():
    viewer = current_staff()
    assert viewer is not None  # behind require
    db = get_session()
    filters = _filters(request.args)
    stmt = ledger.statement(db, settings(), viewer, filters, personal=False)
    bulletin = latest(db)
    return render_template(
        "ledger/index.html",
        filters=filters,
        args=_args(),
        matching=ledger.count(db, stmt),
        personal=ledger.may_see_personal(viewer),
        columns=ledger.columns(ledger.may_see_personal(viewer)),
        units=db.scalars(select(Unit).order_by(Unit.name)).all() if may_here("submissions.all_units") else [],
        items=[(i.number, i.title) for i in bulletin.items] if bulletin else [],
    )


@bp.post("/export.<any(csv, xlsx):fmt>", endpoint="export")
@require("ledger.export")
def export(fmt: str):
    viewer = current_staff()
    assert viewer is not None  # behind require
    s = settings()
    prepared = ledger.prepare(
        get_session(), s, viewer, _filters(request.form), fmt=fmt, personal=ledger.may_see_personal(viewer),
        actor=viewer.username, actor_id=viewer.id, client=request.remote_addr,
    )
    # The audit entry is committed when this view returns (before the body is sent); the body is
    # read with a session of its own.
    body = ledger.stream(current.sessions(), s, prepared)
    response = Response(stream_with_context(body), content_type=prepared.content_type)
    response.headers["Content-Disposition"] = prepared.content_disposition
    response.headers["Cache-Control"] = "no-store"
    return response
