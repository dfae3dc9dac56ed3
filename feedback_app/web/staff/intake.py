"""The clerk's pages: log a phone call, a letter or a visit, then read out or print the receipt.

Each form ends like the citizen's web form: one submission through ``create_submission``, a reference
number and a query code. The code is shown on the receipt page only: it travels there in the signed
session cookie (never in a URL), for this staff member, for a few minutes.
"""
from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as cookie,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback_app.audit.log import record
from feedback_app.bulletin.service import latest
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import Bulletin, Channel, ReplyBy, Role, StaffUser
from feedback_app.core.permissions import STAFF, roles_for
from feedback_app.core.querycode import display, spoken
from feedback_app.core.words import CHANNEL_LABELS, ROLE_LABELS
from feedback_app.current import settings
from feedback_app.intake import channels
from feedback_app.intake.attachments import TYPE_LABELS, IncomingFile, problems
from feedback_app.intake.service import (
    Draft,
    Receipt,
    create_submission,
    receipt_for_token,
)
from feedback_app.web.access import current_staff, require
from feedback_app.web.refusal import keeps_input
from feedback_app.web.staff.intake_forms import (
    FORM_TOKENS,
    LetterForm,
    PhoneForm,
    VisitForm,
    extra_visitor_rows,
)
from feedback_app.web.transaction import get_session

bp = Blueprint("intake", __name__, url_prefix="/staff/intake")

CLERKS = sorted(roles_for("intake.register") & STAFF)  # who may be named as having taken a call
RECEIPT_KEY = "intake_receipt"
RECEIPT_SECONDS = 10 * 60  # long enough to read the code out and print it; then it is gone
LETTER_MAX_FILES = 10  # a letter may have more pages than the web form allows attachments
AUDIT_ACTIONS = {Channel.phone: "intake_phone", Channel.letter: "intake_letter", Channel.visit: "intake_visit"}



def letter_limits(s: Settings) -> Settings:
    """The attachment rules for a letter's scans: more files, the same size per file."""
    total = min(LETTER_MAX_FILES * s.attachment_max_bytes, s.max_request_bytes - 1024 * 1024)
    return dataclasses.replace(s, attachment_max_files=LETTER_MAX_FILES,
                               attachments_max_total_bytes=max(s.attachments_max_total_bytes, total))


# helpers ---------------------------------------------------------------------------------------------
def _item_choices(bulletin: Bulletin) -> list[tuple[int, str]]:
    return [(0, "整改工作整体")] + [(i.number, f"第{i.number}项：{i.title}") for i in bulletin.items]


def _staff_choices(db, me: StaffUser) -> list[tuple[int, str]]:
    people = db.scalars(
        select(StaffUser).where(StaffUser.active.is_(True), StaffUser.role.in_(CLERKS))
        .order_by(StaffUser.username)
    ).all()
    choices = [(u.id, f"{u.label}（{ROLE_LABELS[Role(u.role)]}）") for u in people]
    mine = [c for c in choices if c[0] == me.id]
    return mine + [c for c in choices if c[0] != me.id]


def _staff_ref(db, user_id: int) -> channels.StaffRef:
    user = db.get(StaffUser, user_id)
    return channels.StaffRef(user.id, user.label)


def _common(db, bulletin: Bulletin) -> dict:
    s = settings()
    return dict(item_choices=_item_choices(bulletin), body_range=(s.body_min_chars, s.body_max_chars), tz=s.tz)


def _now_local() -> datetime:
    return utcnow().astimezone(settings().tz)


def _render(template: str, form, bulletin: Bulletin, status: int = 200, notice: str | None = None, **extra):
    s = settings()
    html = render_template(template, form=form, bulletin=bulletin, notice=notice, limits=s,
                           types="、".join(TYPE_LABELS.values()), **extra)
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_bulletin():
    return _render_index(None, 409)


def _render_index(bulletin: Bulletin | None, status: int = 200):
    return make_response(render_template("intake/index.html", bulletin=bulletin), status)


def _store(db, draft: Draft, nonce: str) -> Receipt:
    s = settings()
    me = current_staff()
    assert me is not None  # behind require
    receipt: Receipt | None
    try:
        with db.begin_nested():
            receipt = create_submission(db, s, draft)
    except IntegrityError:  # the same form sent twice at once: the other request stored it
        receipt = receipt_for_token(db, s, nonce)
        if receipt is None:
            raise
        return receipt
    record(db, s, action=AUDIT_ACTIONS[draft.channel], actor=me.username, actor_id=me.id,
           target=receipt.reference, client=request.remote_addr,
           details={"channel": draft.channel.value, "attachments": len(draft.attachments)})
    return receipt


def _to_receipt(receipt: Receipt, channel: Channel):
    me = current_staff()
    assert me is not None  # behind require
    cookie[RECEIPT_KEY] = {
        "reference": receipt.reference,
        "code": receipt.query_code,
        "channel": channel.value,
        "staff": me.id,
        "until": time.time() + RECEIPT_SECONDS,
    }
    return redirect(url_for("intake.receipt"), code=303)


def _finish(db, form, bulletin, template: str, build, channel: Channel, **extra):
    """Validate, build the draft with ``build(nonce)``, store it once, and go to the receipt."""
    if not form.validate():
        return _render(template, form, bulletin, 400, form.notice(), **extra)
    nonce = form.nonce
    assert nonce is not None  # validated
    existing = receipt_for_token(db, settings(), nonce)
    if existing is not None:
        return _to_receipt(existing, channel)
    try:
        draft = build(nonce)
    except channels.ChannelError as exc:
        return _render(template, form, bulletin, 400, str(exc), **extra)
    return _to_receipt(_store(db, draft, nonce), channel)


# pages -----------------------------------------------------------------------------------------------
@bp.get("/")
@require("intake.register")
def index():
    return _render_index(latest(get_session()))


@bp.route("/phone", methods=["GET", "POST"])
@require("intake.register")
@keeps_input
def phone():
    db = get_session()
    bulletin = latest(db)
    if bulletin is None:
        return _no_bulletin()
    me = current_staff()
    assert me is not None  # behind require
    kwargs = dict(staff_choices=_staff_choices(db, me), **_common(db, bulletin))
    if request.method == "GET":
        form = PhoneForm(formdata=None, **kwargs)
        now = _now_local()
        form.reply_by.data = ReplyBy.phone.value
        form.line.data = bulletin.contact_phone or ""
        form.taken_by.data = me.id
        form.call_date.data = now.date().isoformat()
        form.call_time.data = f"{now:%H:%M}"
        form.form_token.data = FORM_TOKENS.new()
        return _render("intake/phone.html", form, bulletin)
    form = PhoneForm(**kwargs)

    def build(nonce):
        call = form.call(bulletin.id, _staff_ref(db, form.taken_by.data))
        return channels.phone_draft(call, settings().tz, form_token=nonce)

    return _finish(db, form, bulletin, "intake/phone.html", build, Channel.phone)


@bp.route("/letter", methods=["GET", "POST"])
@require("intake.register")
@keeps_input
def letter():
    db = get_session()
    bulletin = latest(db)
    if bulletin is None:
        return _no_bulletin()
    limits = letter_limits(settings())
    kwargs = dict(envelope_note_text=bulletin.contact_envelope_note, **_common(db, bulletin))
    extra: dict[str, Any] = dict(scan_limits=limits)
    if request.method == "GET":
        form = LetterForm(formdata=None, **kwargs)
        form.reply_by.data = ReplyBy.letter.value
        form.arrival_date.data = _now_local().date().isoformat()
        form.form_token.data = FORM_TOKENS.new()
        return _render("intake/letter.html", form, bulletin, **extra)
    form = LetterForm(**kwargs)
    scans = tuple(IncomingFile(f.filename or "", f.read()) for f in request.files.getlist("scans")
                  if f and f.filename)
    form.take_scans(scans, problems(list(scans), limits))

    def build(nonce):
        item = form.letter(bulletin.id, bulletin.contact_envelope_note, scans)
        return channels.letter_draft(item, settings().tz, form_token=nonce)

    return _finish(db, form, bulletin, "intake/letter.html", build, Channel.letter, **extra)


@bp.route("/visit", methods=["GET", "POST"])
@require("intake.register")
@keeps_input
def visit():
    db = get_session()
    bulletin = latest(db)
    if bulletin is None:
        return _no_bulletin()
    me = current_staff()
    assert me is not None  # behind require
    kwargs = dict(staff_choices=_staff_choices(db, me), **_common(db, bulletin))
    if request.method == "GET":
        form = VisitForm(formdata=None, **kwargs)
        now = _now_local()
        form.reply_by.data = ReplyBy.phone.value
        form.received_by.data = me.id
        form.visit_date.data = now.date().isoformat()
        form.visit_time.data = f"{now:%H:%M}"
        form.place.data = "来访接待室"
        form.form_token.data = FORM_TOKENS.new()
        return _render("intake/visit.html", form, bulletin)
    form = VisitForm(extra_rows=extra_visitor_rows(request.form), **kwargs)

    def build(nonce):
        item = form.visit(bulletin.id, _staff_ref(db, form.received_by.data))
        return channels.visit_draft(item, settings().tz, form_token=nonce)

    return _finish(db, form, bulletin, "intake/visit.html", build, Channel.visit)


@bp.get("/receipt")
@require("intake.register")
def receipt():
    data = cookie.get(RECEIPT_KEY)
    me = current_staff()
    assert me is not None  # behind require
    if not data or data.get("until", 0) < time.time() or data.get("staff") != me.id:
        cookie.pop(RECEIPT_KEY, None)
        return redirect(url_for("intake.index"))
    code = data.get("code")
    html = render_template(
        "intake/receipt.html",
        reference=data["reference"],
        code=display(code) if code else None,
        spoken=spoken(code) if code else None,
        channel=CHANNEL_LABELS[Channel(data["channel"])],
        channel_endpoint=f"intake.{data['channel']}",
        track_url=settings().public_url.rstrip("/") + "/track",
    )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response

