"""Staff pages: the queue, one submission, its attachments, a reply letter to print."""
from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask import session as cookie
from sqlalchemy import select
from wtforms import StringField

from feedback_app.audit.log import record_action
from feedback_app.bulletin.service import latest
from feedback_app.core.models import Attachment, State, Unit
from feedback_app.current import settings
from feedback_app.intake.attachments import path_of
from feedback_app.moderation import queue
from feedback_app.web.access import actor, current_staff, require
from feedback_app.web.forms import Form
from feedback_app.web.staff.case_page import load_visible, render_detail
from feedback_app.web.transaction import get_session

SEARCH_MAX_CHARS = 100

bp = Blueprint("staff", __name__, url_prefix="/staff")

@bp.get("/", endpoint="queue")
@require("queue.view")
def queue_page():
    viewer = current_staff()
    assert viewer is not None  # behind require
    db = get_session()
    q = cookie.get("queue_q") if request.args.get("search") else None
    filters = queue.parse_filters(request.args, q)
    result = queue.page(db, settings(), viewer, filters)
    today = datetime.now(settings().tz).date()
    return render_template(
        "staff/queue.html",
        filters=filters,
        page=result,
        counts=queue.search_counts(db, settings(), viewer, filters),
        states=[s.value for s in State],
        units=db.scalars(select(Unit).order_by(Unit.name)).all(),
        items=_items(db),
        today=today,
        due_status=lambda s: queue.due_status(s.next_due_on, today),
        args={k: v for k, v in request.args.items() if k != "after"},
    )


def _items(db) -> list[tuple[int, str]]:
    bulletin = latest(db)
    return [(i.number, i.title) for i in bulletin.items] if bulletin else []


class SearchForm(Form):
    q = StringField("搜索", filters=[lambda text: (text or "").strip()[:SEARCH_MAX_CHARS]])


@bp.post("/search")
@require("queue.view")
def search():
    """The search words travel in the signed session cookie, never in a URL or an access log."""
    form = SearchForm()
    if not form.validate():
        abort(400)
    q = form.q.data
    if q:
        cookie["queue_q"] = q
        return redirect(url_for("staff.queue", search=1), code=303)
    cookie.pop("queue_q", None)
    return redirect(url_for("staff.queue"), code=303)


@bp.get("/submissions/<reference>")
@require("submission.view")
def detail(reference: str):
    submission = load_visible(reference)
    return render_detail(submission)


@bp.post("/submissions/<reference>/attachments/<int:attachment_id>")
@require("attachment.download")
def attachment(reference: str, attachment_id: int):
    submission = load_visible(reference)
    db = get_session()
    item = db.scalar(select(Attachment).where(Attachment.id == attachment_id,
                                              Attachment.submission_id == submission.id))
    if item is None:
        abort(404)
    record_action(db, settings(), actor(), "attachment_downloaded", submission,
           attachment=item.id, sha256=item.sha256)
    response = send_file(
        path_of(settings().attachments_path, item.stored_name),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=item.display_name,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/submissions/<reference>/replies/<int:reply_id>/letter")
@require("print_letter")
def reply_letter(reference: str, reply_id: int):
    submission = load_visible(reference)
    reply = next((r for r in submission.replies if r.id == reply_id and r.approved_at), None)
    if reply is None:
        abort(404)
    return render_template("staff/letter.html", s=submission, reply=reply)
