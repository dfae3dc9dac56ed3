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

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask import session as cookie
from sqlalchemy.orm.exc import StaleDataError

from feedback_app.core import querycode
from feedback_app.core.querycode import QUERY_CODE_KEY
from feedback_app.core.states import StaleSubmission, TransitionRefused
from feedback_app.current import settings
from feedback_app.moderation import query_codes
from feedback_app.web.access import actor, current_staff, require
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.staff.case_page import (
    QUERY_CODE_FORM,
    QueryCodeForm,
    load_visible,
    query_code_form,
    render_detail,
)
from feedback_app.web.transaction import get_session

bp = Blueprint("query_code", __name__, url_prefix="/staff")
PENDING_KEY = "reissued_query_code"
SHOW_SECONDS = 5 * 60  # the redirect follows at once; a code not looked at by then is not shown
NOT_DONE = "查询码未补发，请按提示修改后再提交。"
CONFLICT = "此件在您打开页面后已有变动（可能已由他人补发查询码），查询码未补发。请查看最新情况后再决定。"


def _again(reference: str, status: int, form: QueryCodeForm, message: str):
    flash(message, "error")
    return render_detail(load_visible(reference), status, forms={QUERY_CODE_FORM: form})


@bp.post("/submissions/<reference>/query-code", endpoint="reissue")
@require("query_code.reissue")
@keeps_input
def reissue(reference: str):
    submission = load_visible(reference)
    form = query_code_form(submission, QueryCodeForm())
    if not form.validate():  # only the CSRF token and the version can fail here
        return _again(reference, 400, form,
                      f"{problem() or '页面已过期。'}查询码未补发。您填写的内容已保留，请核对后再次提交。")
    db = get_session()
    me = current_staff()
    assert me is not None  # behind require
    nonce = secrets.token_urlsafe(16)
    try:
        query_codes.reissue_query_code(
            db, settings(), actor(), submission, method=form.method.data or "",
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
    return redirect(url_for("query_code.show", reference=submission.reference), code=303)


@bp.get("/submissions/<reference>/query-code", endpoint="show")
@require("query_code.reissue")
def show(reference: str):
    submission = load_visible(reference)
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


def _take_pending(submission) -> tuple[str, str | None] | None:
    """The code just reissued for this submission by this staff member, once; None otherwise.

    A code replaced since (a second reissue, by anyone) is not shown: it no longer works.
    """
    pending = cookie.get(PENDING_KEY)
    if not isinstance(pending, dict):
        cookie.pop(PENDING_KEY, None)
        return None
    me = current_staff()
    assert me is not None  # behind require
    mine = pending.get("staff") == me.id and pending.get("until", 0) >= time.time()
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
