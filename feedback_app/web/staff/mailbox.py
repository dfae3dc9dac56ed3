"""Staff pages for inbound mail: the quarantine list, one message, its release, its raw download."""
from __future__ import annotations

import os
from io import BytesIO
from typing import BinaryIO

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select
from wtforms import BooleanField

from feedback_app.audit.log import record
from feedback_app.core.models import InboundMessage, InboundStatus, Submission
from feedback_app.current import settings
from feedback_app.intake.attachments import display_name, sniff
from feedback_app.mailbox.draft import choose_files, reply_address
from feedback_app.mailbox.health import mailbox_health
from feedback_app.mailbox.inbound import ReleaseError, preview, release
from feedback_app.mailbox.original import open_original, original_path
from feedback_app.web.access import current_staff, require
from feedback_app.web.forms import Form
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.transaction import get_session

bp = Blueprint("mailbox", __name__, url_prefix="/staff/mail")

PAGE_SIZE = 100
PREVIEW_CHARS = 20_000
FILE_MISSING = "邮件原件文件已不存在（可能已被移走或删除），无法下载；原件可能仍在邮箱中，请在邮箱中查看。"
ROW_MISSING = "这封邮件的记录已不存在（可能已被删除），无法下载原件。"
STATUS_LABELS = {"stored": "待处理", "ingested": "已登记", "quarantined": "隔离中", "released": "已放行登记"}


class ReleaseForm(Form):
    acknowledge = BooleanField("向发件人发送受理回执（含受理编号）")



def _message(inbound_id: int) -> InboundMessage:
    row = get_session().get(InboundMessage, inbound_id)
    if row is None:
        abort(404)
    return row


@bp.get("/", endpoint="quarantine")
@require("mailbox.handle")
def quarantine_page():
    db = get_session()
    before = request.args.get("before", type=int)
    stmt = select(InboundMessage).where(InboundMessage.status == InboundStatus.quarantined.value)
    if before:
        stmt = stmt.where(InboundMessage.id < before)
    rows = db.scalars(stmt.order_by(InboundMessage.id.desc()).limit(PAGE_SIZE + 1)).all()
    total = db.scalar(select(func.count()).select_from(InboundMessage)
                      .where(InboundMessage.status == InboundStatus.quarantined.value))
    return render_template(
        "mail/quarantine.html",
        rows=rows[:PAGE_SIZE],
        more=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        total=total,
        health=mailbox_health(db, settings()),
    )


@bp.get("/<int:inbound_id>", endpoint="message")
@require("mailbox.handle")
def message_page(inbound_id: int):
    return _render_message(_message(inbound_id))


def _render_message(row: InboundMessage, form: ReleaseForm | None = None, status: int = 200):
    s = settings()
    parsed = preview(row, s)
    kept, skipped = choose_files(parsed, s)
    address, why_not = reply_address(parsed, s)
    if form is None:
        form = ReleaseForm(formdata=None, acknowledge=address is not None)
    submission = get_session().get(Submission, row.submission_id) if row.submission_id else None
    text = parsed.text
    return render_template(
        "mail/message.html",
        row=row,
        original_missing=bool(row.original_name) and original_path(s.attachments_path, row) is None,
        parsed=parsed,
        text=text[:PREVIEW_CHARS],
        cut=len(text) > PREVIEW_CHARS,
        kept=[(f.filename, len(f.data), sniff(f.data)) for f in kept],
        skipped=skipped,
        address=address,
        why_not=why_not,
        form=form,
        submission=submission,
        status_label=STATUS_LABELS.get(row.status, row.status),
    ), status


@bp.post("/<int:inbound_id>/release", endpoint="release")
@require("mailbox.handle")
@keeps_input
def release_message(inbound_id: int):
    row = _message(inbound_id)
    form = ReleaseForm()
    if not form.validate_on_submit():
        flash(f"{problem() or '页面已过期。'}操作未执行，请重试。", "error")
        return _render_message(row, form, status=400)
    user = current_staff()
    try:
        receipt = release(get_session(), settings(), row.id, actor=user, client=request.remote_addr,
                          acknowledge=bool(form.acknowledge.data))
    except ReleaseError as exc:
        flash(str(exc), "error")
        return _render_message(row, form, status=409)
    flash(f"已登记为 {receipt.reference}，请核对涉及事项和类型。", "success")
    return redirect(url_for("staff.detail", reference=receipt.reference), code=303)


@bp.post("/<int:inbound_id>/raw", endpoint="raw")
@require("mailbox.handle")
def raw_message(inbound_id: int):
    """The message exactly as received, as a download that no browser renders: from the database, or
    streamed from the attachment store when it was kept whole there. A message or a file that is gone
    is said so, and nothing is audited."""
    row = get_session().get(InboundMessage, inbound_id)
    if row is None:
        return render_template("mail/gone.html", title="页面不存在", message=ROW_MISSING), 404
    body: BinaryIO
    if row.original_name:
        found = open_original(settings().attachments_path, row)
        if found is None:
            flash(FILE_MISSING, "error")
            return _render_message(row, status=404)
        body = found
    else:
        body = BytesIO(row.raw)
    try:
        user = current_staff()
        assert user is not None  # behind require
        record(get_session(), settings(), action="mail_raw_downloaded", actor=user.username, actor_id=user.id,
               target=f"inbound:{row.id}", client=request.remote_addr, details={"sha256": row.sha256})
        response = send_file(body, mimetype="application/octet-stream", as_attachment=True,
                             download_name=display_name(f"mail-{row.id}.eml"), max_age=0)
    except BaseException:
        body.close()
        raise
    if row.original_name:
        response.content_length = os.fstat(body.fileno()).st_size
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response
