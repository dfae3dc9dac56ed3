"""补发查询码 on the submission page: the POST, and the page that shows the new code once.

The POST replaces the code and redirects (303) to a GET page. What travels between them, in the
signed session cookie and for this staff member only, is a one-time nonce the code is derived from
with a server key (``querycode.code_for_nonce``): the code itself is never in a cookie, a URL, a flash
message, a log line or a mail. The GET page shows it once, with ``Cache-Control: no-store``, and
forgets the nonce.
"""
from __future__ import annotations

import secrets
import time
from types import SimpleNamespace

from flask import abort, flash, make_response, redirect, render_template, session as cookie, url_for
from flask_wtf import FlaskForm
from sqlalchemy.orm.exc import StaleDataError
from wtforms import IntegerField, RadioField, TextAreaField
from wtforms.validators import Optional

from feedback_app.auth.sessions import current_staff, require_roles
from feedback_app.db import get_session
from feedback_app.intake import querycode
from feedback_app.intake.service import QUERY_CODE_KEY
from feedback_app.moderation import query_codes
from feedback_app.moderation.actions import actor_for
from feedback_app.moderation.states import StaleSubmission, TransitionRefused
from feedback_app.moderation.views import ALL_STAFF, bp, load_visible, render_detail, settings

FORM_KEY = "query_code"  # the form's key in render_detail(forms=...)
PENDING_KEY = "reissued_query_code"
SHOW_SECONDS = 5 * 60  # the redirect follows at once; a code not looked at by then is not shown
EXPIRED = "页面已过期，查询码未补发。您填写的内容已保留，请核对后再次提交。"
NOT_DONE = "查询码未补发，请按提示修改后再提交。"
CONFLICT = "此件在您打开页面后已有变动（可能已由他人补发查询码），查询码未补发。请查看最新情况后再决定。"


class QueryCodeForm(FlaskForm):
    version = IntegerField(validators=[Optional()])
    # checked by the service against what the record holds, so that the message says why
    method = RadioField("核验反映人身份的方式", choices=[], validate_choice=False, id="qc-method")
    note = TextAreaField("补充说明（可选，记入审计日志）", id="qc-note")


def _form_for(submission, form: QueryCodeForm | None = None) -> QueryCodeForm:
    form = form or QueryCodeForm(formdata=None)
    form.method.choices = list(query_codes.available_methods(submission).items())
    return form


@bp.app_template_global()
def query_code_panel(submission, forms: dict | None = None) -> SimpleNamespace:
    """What the submission page's 补发查询码 section needs (shown to clerks and reviewers only)."""
    db = get_session()
    return SimpleNamespace(
        form=_form_for(submission, (forms or {}).get(FORM_KEY)),
        refusal=query_codes.refusal(db, submission),
        merged_into=query_codes.merged_into(db, submission),
        note_max=query_codes.NOTE_MAX,
    )


def _may() -> None:
    """The same order as the other actions: not visible → 404, visible but not this role's → 403."""
    if current_staff().role not in query_codes.REISSUERS:
        abort(403)


def _again(reference: str, status: int, form: QueryCodeForm, message: str):
    flash(message, "error")
    return render_detail(load_visible(reference), status, forms={FORM_KEY: form})


@bp.post("/submissions/<reference>/query-code", endpoint="reissue_query_code")
@require_roles(*ALL_STAFF)
def reissue(reference: str):
    submission = load_visible(reference)
    _may()
    form = _form_for(submission, QueryCodeForm())
    if not form.validate():  # only the CSRF token and the version can fail here
        return _again(reference, 400, form, EXPIRED)
    db = get_session()
    me = current_staff()
    nonce = secrets.token_urlsafe(16)
    try:
        query_codes.reissue_query_code(
            db, settings(), actor_for(me), submission, method=form.method.data or "",
            note=form.note.data or "", expected_version=form.version.data, nonce=nonce)
    except (StaleSubmission, StaleDataError):
        db.rollback()
        return _again(reference, 409, form, CONFLICT)
    except TransitionRefused:
        abort(403)
    except query_codes.ReissueError as exc:
        db.rollback()
        if exc.field:
            getattr(form, exc.field).errors = [str(exc)]
        return _again(reference, 400, form, NOT_DONE if exc.field else str(exc))
    cookie[PENDING_KEY] = {"reference": submission.reference, "nonce": nonce, "method": form.method.data,
                           "staff": me.id, "until": time.time() + SHOW_SECONDS}
    return redirect(url_for("staff.query_code", reference=submission.reference), code=303)


@bp.get("/submissions/<reference>/query-code", endpoint="query_code")
@require_roles(*ALL_STAFF)
def show(reference: str):
    submission = load_visible(reference)
    _may()
    code, method = _take_pending(submission) or (None, None)
    html = render_template(
        "staff/query_code.html",
        s=submission,
        code=querycode.display(code) if code else None,
        spoken=querycode.spoken(code) if code else None,
        method=method,
        method_label=query_codes.METHODS[method].label if method in query_codes.METHODS else None,
        track_url=settings().public_url.rstrip("/") + "/track",
    )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _take_pending(submission) -> tuple[str, str] | None:
    """The code just reissued for this submission by this staff member, once; None otherwise.

    A code replaced since (a second reissue, by anyone) is not shown: it no longer works.
    """
    pending = cookie.get(PENDING_KEY)
    if not isinstance(pending, dict):
        cookie.pop(PENDING_KEY, None)
        return None
    mine = pending.get("staff") == current_staff().id and pending.get("until", 0) >= time.time()
    if mine and pending.get("reference") != submission.reference:
        return None  # another submission's code, still waiting for its own page
    cookie.pop(PENDING_KEY, None)
    if not mine or not isinstance(pending.get("nonce"), str):
        return None
    key = settings().subkey(QUERY_CODE_KEY)
    code = querycode.code_for_nonce(key, pending["nonce"])
    if not querycode.matches(key, code, submission.query_code_hash):
        return None
    return code, pending.get("method")
