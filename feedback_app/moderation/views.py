"""Staff pages: the queue, one submission, its attachments, a reply letter to print."""
from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session as cookie,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy import select

from feedback_app.auth.models import ROLE_LABELS, Role, StaffUser, Unit
from feedback_app.auth.sessions import current_staff, require_roles
from feedback_app.bulletin.models import Bulletin
from feedback_app.db import get_session
from feedback_app.intake.attachments import path_of
from feedback_app.intake.models import (
    CHANNEL_LABELS,
    KIND_LABELS,
    REPLY_BY_LABELS,
    Attachment,
    Channel,
    Kind,
    ReplyBy,
    State,
    Submission,
)
from feedback_app.moderation import clocks, query_codes, queue, states
from feedback_app.moderation.actions import REJECT_REASONS, actor_for, is_revealed
from feedback_app.moderation.masking import identity_of
from feedback_app.moderation.models import Deadline, InternalNote
from feedback_app.public.tracking import STATE_WORDS

bp = Blueprint("staff", __name__, url_prefix="/staff")

ALL_STAFF = tuple(r.value for r in Role)


def settings():
    return current_app.extensions["settings"]


@bp.app_template_global()
def labels():
    return {
        "state": {s.value: STATE_WORDS[s] for s in State},
        "kind": {k.value: v for k, v in KIND_LABELS.items()},
        "channel": {c.value: v for c, v in CHANNEL_LABELS.items()},
        "reply_by": {r.value: v for r, v in REPLY_BY_LABELS.items()},
        "role": {r.value: v for r, v in ROLE_LABELS.items()},
        "deadline": clocks.DEADLINE_KIND_LABELS,
        "reject": REJECT_REASONS,
    }


# Steps of the staff timeline that the citizen never sees, in words (the public ones: states.PUBLIC_WORDS).
STAFF_EVENT_WORDS = {query_codes.ACTION: query_codes.EVENT_WORDS}


def load_visible(reference: str) -> Submission:
    """The submission if this viewer may see it; otherwise the same 404 as for one that does not exist."""
    viewer = current_staff()
    db = get_session()
    submission = db.scalar(
        select(Submission).where(Submission.reference == reference, queue.visible_to(viewer))
    )
    if submission is None:
        abort(404)
    return submission


@bp.get("/", endpoint="queue")
@require_roles(*ALL_STAFF)
def queue_page():
    viewer = current_staff()
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
    bulletin = db.scalar(select(Bulletin).order_by(Bulletin.published_on.desc()).limit(1))
    return [(i.number, i.title) for i in bulletin.items] if bulletin else []


@bp.post("/search")
@require_roles(*ALL_STAFF)
def search():
    """The search words travel in the signed session cookie, never in a URL or an access log."""
    if not FlaskForm().validate():
        abort(400)
    q = (request.form.get("q") or "").strip()[:100]
    if q:
        cookie["queue_q"] = q
        return redirect(url_for("staff.queue", search=1), code=303)
    cookie.pop("queue_q", None)
    return redirect(url_for("staff.queue"), code=303)


@bp.get("/submissions/<reference>")
@require_roles(*ALL_STAFF)
def detail(reference: str):
    submission = load_visible(reference)
    return render_detail(submission)


def render_detail(submission: Submission, status: int = 200, forms: dict | None = None):
    viewer = current_staff()
    db = get_session()
    revealed = is_revealed(db, submission)
    masked = viewer.role == Role.handler.value and not revealed
    state = State(submission.state)
    allowed = {action for action in states.TRANSITIONS if states.allowed(action, state, viewer.role)}
    if viewer.role in states.STAFF_DECIDERS:
        allowed |= {"reveal", "extend", "approve_reply"}
    if viewer.role in ("clerk", "reviewer", "admin"):
        allowed.add("record_delivery")
    if viewer.role in query_codes.REISSUERS:
        allowed.add("query_code")
    handlers = db.scalars(
        select(StaffUser).where(StaffUser.role == Role.handler.value, StaffUser.active.is_(True))
        .order_by(StaffUser.unit_id, StaffUser.username)
    ).all()
    html = render_template(
        "staff/detail.html",
        s=submission,
        identity=identity_of(submission, masked=masked),
        revealed=revealed,
        allowed=allowed,
        deadlines=db.scalars(select(Deadline).where(Deadline.submission_id == submission.id)
                             .order_by(Deadline.due_on)).all(),
        notes=db.scalars(select(InternalNote).where(InternalNote.submission_id == submission.id)
                         .order_by(InternalNote.id)).all(),
        units=db.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.name)).all(),
        handlers=handlers,
        unit=db.get(Unit, submission.unit_id) if submission.unit_id else None,
        merged_into=db.get(Submission, submission.merged_into_id) if submission.merged_into_id else None,
        kinds=list(Kind),
        today=datetime.now(settings().tz).date(),
        status_of=clocks.status_of,
        forms=forms or {},
        ReplyBy=ReplyBy,
        Channel=Channel,
        staff_event_words=STAFF_EVENT_WORDS,
    )
    return html, status


@bp.get("/submissions/<reference>/attachments/<int:attachment_id>")
@require_roles(*ALL_STAFF)
def attachment(reference: str, attachment_id: int):
    submission = load_visible(reference)
    db = get_session()
    item = db.scalar(select(Attachment).where(Attachment.id == attachment_id,
                                              Attachment.submission_id == submission.id))
    if item is None:
        abort(404)
    from feedback_app.moderation.actions import _audit

    _audit(db, settings(), actor_for(current_staff()), "attachment_downloaded", submission,
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
@require_roles("reviewer", "admin", "clerk")
def reply_letter(reference: str, reply_id: int):
    submission = load_visible(reference)
    reply = next((r for r in submission.replies if r.id == reply_id and r.approved_at), None)
    if reply is None:
        abort(404)
    return render_template("staff/letter.html", s=submission, reply=reply)
