"""The citizen form, the receipt and the query page. Thin handlers: the work is in intake."""
from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as cookie,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.datastructures import CombinedMultiDict

from feedback_app.bulletin.service import get_bulletin
from feedback_app.core.config import Settings
from feedback_app.core.database import begin_write
from feedback_app.core.models import Bulletin, Channel, Kind, ReplyBy, Submission
from feedback_app.core.querycode import display
from feedback_app.current import settings
from feedback_app.intake.attachments import TYPE_LABELS
from feedback_app.intake.service import (
    Draft,
    Receipt,
    earlier_receipt,
    prepare_submission,
    receipt_for_token,
    store_submission,
)
from feedback_app.outcomes.tracking import (
    add_follow_up,
    find_for_citizen,
    rate,
    status_view,
)
from feedback_app.web.access import public
from feedback_app.web.errors import error_page
from feedback_app.web.limits import limit_view
from feedback_app.web.public.form_page import (
    CSRF_MARK,
    TOKEN_MARK,
    FormFacts,
    blank_page,
    fill,
    form_facts,
)
from feedback_app.web.public.forms import (
    FORM_TOKENS,
    FeedbackForm,
    FollowUpForm,
    RatingForm,
    TrackForm,
)
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.transaction import get_session, late_write_lock

bp = Blueprint("public", __name__)

TRACK_GRANT_SECONDS = 30 * 60
RECEIPT_SECONDS = 15 * 60  # how long this browser can show the receipt again (a refresh, a print)



def _csrf_enabled() -> bool:
    return bool(current_app.config.get("WTF_CSRF_ENABLED", True))


def _feedback_form(facts: FormFacts, **kwargs: Any) -> FeedbackForm:
    return FeedbackForm(item_choices=list(facts.item_choices), limits=settings(), **kwargs)


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_html(bulletin: Bulletin, form: FeedbackForm, notice: str | None, csrf_value: str | None,
               form_token: str) -> str:
    s = settings()
    return render_template(
        "public/feedback.html",
        bulletin=bulletin,
        form=form,
        csrf_value=csrf_value,
        form_token=form_token,
        notice=notice,
        limits=s,
        types=", ".join(TYPE_LABELS.values()),
    )


def _render_form(facts: FormFacts, form: FeedbackForm, notice: str | None = None, status: int = 200):
    """The form again, as the citizen filled it in, with what is wrong next to each field."""
    bulletin = get_bulletin(get_session(), facts.slug)
    if bulletin is None:
        abort(404)
    html = _form_html(bulletin, form, notice, generate_csrf() if _csrf_enabled() else None,
                      form.form_token.data or "")
    return _no_store(make_response(html, status))


def _blank_form(facts: FormFacts, bulletin: Bulletin, item: int | None) -> str:
    form = _feedback_form(facts, formdata=None, meta={"csrf": False})  # its token: CSRF_MARK, filled per visit
    if item is not None:
        form.item.data = item
    return _form_html(bulletin, form, None, CSRF_MARK if _csrf_enabled() else None, TOKEN_MARK)


@bp.route("/bulletins/<slug>/feedback", methods=["GET", "POST"])
@public
@keeps_input
@late_write_lock
def feedback(slug: str):
    facts = form_facts(slug)
    if facts is None:
        abort(404)
    if request.method == "POST":
        return _submit(get_session(), facts)
    item = request.args.get("item", type=int)
    page = blank_page(facts, item if item in facts.item_numbers else None,
                      lambda bulletin, chosen: _blank_form(facts, bulletin, chosen))
    if page is None:
        abort(404)
    html = fill(page, generate_csrf() if _csrf_enabled() else None, FORM_TOKENS.new())
    return _no_store(make_response(html))


def _submit(db: Session, facts: FormFacts) -> ResponseReturnValue:
    s = settings()
    # CSRFProtect has checked the token before this view (and the form fails when it refused it)
    form = _feedback_form(facts, formdata=CombinedMultiDict([request.form, request.files]), meta={"csrf": False})
    if not form.validate():
        return _render_form(facts, form, form.notice(), 400)
    assert form.nonce is not None  # validated

    anonymous = bool(form.anonymous.data)
    draft = Draft(
        bulletin_id=facts.bulletin_id,
        item_number=form.item.data,
        channel=Channel.web,
        kind=Kind(form.kind.data),
        body=form.body.data,
        reply_by=ReplyBy(form.reply_by.data),
        anonymous=anonymous,
        publish_consent=bool(form.publish_consent.data),
        privacy_consent=bool(form.privacy_consent.data),
        name=form.name.data or None,
        phone=form.phone_e164,
        email=form.email_normalized,
        address=form.address.data or None,
        attachments=tuple(form.incoming),
        form_token=form.nonce,
        client=request.remote_addr,
    )
    prepared = prepare_submission(s, draft)  # before the lock: it holds only the statements
    begin_write(db)  # from here on this request holds the write lock until it commits
    existing = earlier_receipt(db, s, prepared)
    if existing is not None:
        return _to_receipt(existing)
    receipt: Receipt | None
    try:
        receipt = store_submission(db, s, prepared)
    except IntegrityError:  # the same form submitted twice at once: the other request won
        db.rollback()
        receipt = receipt_for_token(db, s, form.nonce)
        if receipt is None:
            raise
    return _to_receipt(receipt)


def _to_receipt(receipt: Receipt):
    cookie["receipt"] = {
        "reference": receipt.reference,
        "code": receipt.query_code,
        "again": not receipt.created,  # this form was stored before (a double click, a resend)
        "until": time.time() + RECEIPT_SECONDS,
    }
    return redirect(url_for("public.receipt"), code=303)


@bp.get("/receipt")
@public
def receipt():
    data = cookie.get("receipt")
    if not data or data.get("until", 0) < time.time():
        cookie.pop("receipt", None)
        return redirect(url_for("public.track"))
    code = data.get("code")
    html = render_template(
        "public/receipt.html",
        reference=data["reference"],
        code=display(code) if code else None,
        again=data.get("again", False),
    )
    return _no_store(make_response(html))


def _render_track(form: TrackForm, status: int = 200, message: str | None = None):
    return _no_store(make_response(render_template("public/track.html", form=form, message=message), status))


@bp.route("/track", methods=["GET", "POST"])
@public
@keeps_input
def track():
    form = TrackForm()
    if request.method == "GET":
        return _render_track(TrackForm(formdata=None))
    if not form.validate():
        message = f"{problem()}请重新填写后查询。" if problem() else None
        return _render_track(form, 400, message)
    submission = find_for_citizen(get_session(), settings(), form.reference.data, form.query_code.data)
    if submission is None:
        return _render_track(form, 400, "受理编号或查询码不正确，请核对后重新输入。")
    cookie.pop("receipt", None)
    cookie["tracking"] = {"id": submission.id, "until": time.time() + TRACK_GRANT_SECONDS}
    return redirect(url_for("public.status"), code=303)


def _tracked() -> Submission:
    grant = cookie.get("tracking") or {}
    if not grant or grant.get("until", 0) < time.time():
        cookie.pop("tracking", None)
        abort(make_response(redirect(url_for("public.track"))))
    submission = get_session().get(Submission, grant["id"])
    if submission is None:
        abort(make_response(redirect(url_for("public.track"))))
    return submission


@bp.get("/track/status")
@public
def status():
    submission = _tracked()
    return _render_status(submission, FollowUpForm(formdata=None, limits=settings()), RatingForm(formdata=None))


def _render_status(submission: Submission, follow_up: FollowUpForm, rating: RatingForm, status: int = 200,
                   notice: str | None = None):
    html = render_template(
        "public/status.html", view=status_view(submission), follow_up=follow_up, rating_form=rating,
        notice=f"{notice}请重新提交。" if notice else None,
    )
    return _no_store(make_response(html, status))


@bp.post("/track/follow-up")
@public
@keeps_input
def follow_up():
    submission = _tracked()
    form = FollowUpForm(limits=settings())
    if form.validate():
        add_follow_up(get_session(), submission, form.text.data)
        flash("已收到您的追评，我们会继续办理。")
        return redirect(url_for("public.status"), code=303)
    return _render_status(submission, form, RatingForm(formdata=None), 400, problem())


@bp.post("/track/rate")
@public
@keeps_input
def rate_reply():
    submission = _tracked()
    form = RatingForm()
    if form.validate() and rate(get_session(), submission, form.rating.data):
        flash("感谢您的评价。")
        return redirect(url_for("public.status"), code=303)
    if not form.rating.errors and not problem():
        form.rating.errors = ["答复之后才能评价"]
    return _render_status(submission, FollowUpForm(formdata=None, limits=settings()), form, 400, problem())


def _form_rate_limited(_limit):
    assert request.view_args is not None  # the form's URL rule matched
    facts = form_facts(request.view_args["slug"])
    if facts is None:  # a breach handler answers with a response; it does not raise
        return make_response(error_page(404))
    return _render_form(facts, _feedback_form(facts), "提交过于频繁，请稍后再提交。您填写的内容已保留。", 429)


def _track_rate_limited(_limit):
    return _render_track(TrackForm(), 429, "查询过于频繁，请稍后再试。")


def apply_limits(app: Flask, s: Settings) -> None:
    limit_view(app, "public.feedback", s.ratelimit_submit, on_breach=_form_rate_limited)
    limit_view(app, "public.track", s.ratelimit_track, on_breach=_track_rate_limited)
    limit_view(app, "public.follow_up", s.ratelimit_submit)
    limit_view(app, "public.rate_reply", s.ratelimit_submit)
