"""Publication pages, and the printable folder of one rectification item.

Staff:
  GET  /staff/publication                         what may be published, and what was (reviewer, admin)
  GET  /staff/publication/<reference>             the side-by-side redaction page (reviewer, admin)
  POST /staff/publication/<reference>             publish the edited texts
  POST /staff/publication/<reference>/withdraw    withdraw a publication
  GET  /staff/items                               the items, with links to their folders
  GET  /staff/items/<n>                           一个问题一个文件夹: one item's submissions, printable
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms import TextAreaField

from feedback_app.bulletin.service import get_bulletin, item_title, latest
from feedback_app.core import clocks
from feedback_app.core.masking import identity_of
from feedback_app.core.models import Bulletin, Deadline, Submission, Unit
from feedback_app.current import settings
from feedback_app.moderation.queue import visible_to
from feedback_app.outcomes import publication, published, redaction
from feedback_app.web.access import actor, current_staff, may_here, require
from feedback_app.web.forms import Form
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.staff.case_page import WITHDRAW_FORM, load_visible, render_detail
from feedback_app.web.transaction import get_session

bp = Blueprint("publication", __name__, url_prefix="")

FOLDER_PAGE = 100


class PublishForm(Form):
    text = TextAreaField("公开的意见内容")
    reply_text = TextAreaField("公开的答复内容")


class WithdrawForm(Form):
    reason = TextAreaField("撤回原因")


# ---------- template globals ----------

# ---------- publishing ----------

def _render_redaction(submission: Submission, form: PublishForm, status: int = 200, problems=None):
    db = get_session()
    proposal = publication.propose(db, submission)
    if not form.is_submitted():
        form.text.data = proposal.text
        form.reply_text.data = proposal.reply_text
    viewer = current_staff()
    assert viewer is not None  # behind require
    refusal = publication.refusal(submission, viewer.role)
    existing = publication.publication_of(db, submission)
    if refusal and status == 200:
        status = 403
    return render_template(
        "publication/redact.html",
        s=submission,
        form=form,
        proposal=proposal,
        refusal=refusal,
        existing=existing,
        active=existing is not None and existing.withdrawn_at is None,
        problems=problems,
        withdraw_form=WithdrawForm(formdata=None),
    ), status


@bp.get("/staff/publication")
@require("publication.manage")
def index():
    db = get_session()
    return render_template("publication/index.html", candidates=publication.candidates(db),
                           recent=publication.recent(db))


@bp.get("/staff/publication/<reference>")
@require("publication.manage")
def redact(reference: str):
    submission = load_visible(reference)
    return _render_redaction(submission, PublishForm(formdata=None))


@bp.post("/staff/publication/<reference>")
@require("publication.manage")
@keeps_input
def publish(reference: str):
    submission = load_visible(reference)
    form = PublishForm()
    if not form.validate():
        flash(f"{problem() or '页面已过期。'}请重新操作。", "error")
        return _render_redaction(submission, form, 400)
    db = get_session()
    viewer = current_staff()
    assert viewer is not None  # behind require
    try:
        publication.publish(db, settings(), actor(), submission,
                            text=form.text.data or "", reply_text=form.reply_text.data)
        db.flush()
    except publication.RedactionIncomplete as exc:
        db.rollback()
        return _render_redaction(load_visible(reference), form, 400, problems=exc)
    except publication.PublicationRefused as exc:
        db.rollback()
        flash(str(exc), "error")
        return _render_redaction(load_visible(reference), form, 403 if publication.refusal(
            submission, viewer.role) else 400)
    except IntegrityError:
        db.rollback()
        flash("此件刚刚已被他人公开。", "error")
        return _render_redaction(load_visible(reference), form, 409)
    flash("已公开。公众可在通报页面该整改事项下看到这条意见和答复。", "success")
    return redirect(url_for("staff.detail", reference=reference), code=303)


@bp.post("/staff/publication/<reference>/withdraw")
@require("publication.manage")
@keeps_input
def withdraw(reference: str):
    submission = load_visible(reference)
    form = WithdrawForm()
    if not form.validate():  # the case page again, the reason as typed
        flash(f"{problem() or '操作未执行。'}请重新操作。", "error")
        return render_detail(submission, 400, forms={WITHDRAW_FORM: form})
    db = get_session()
    try:
        publication.withdraw(db, settings(), actor(), submission, reason=form.reason.data or "")
    except publication.PublicationRefused as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.detail", reference=reference), code=303)
    flash("已撤回公开。", "success")
    return redirect(url_for("staff.detail", reference=reference), code=303)


# ---------- the item folder ----------

def _bulletin_for(db, slug: str | None) -> Bulletin:
    bulletin = get_bulletin(db, slug) if slug else latest(db)
    if bulletin is None:
        abort(404)
    return bulletin


@dataclass(frozen=True)
class FolderEntry:
    s: Submission
    identity: object
    body: str
    unit: str | None
    deadlines: list[Deadline]
    events: list[tuple[object, str | None]]
    replies: list[tuple[object, str]]


@bp.get("/staff/items")
@require("folders.view")
def items():
    db = get_session()
    bulletin = _bulletin_for(db, request.args.get("bulletin"))
    counts = _visible_counts(db, bulletin)
    rows = [(0, "整改工作整体")] + [(i.number, i.title) for i in bulletin.items]
    return render_template("publication/folders.html", bulletin=bulletin, rows=rows, counts=counts)


def _visible_counts(db, bulletin: Bulletin) -> dict[int, int]:
    viewer = current_staff()
    assert viewer is not None  # behind require
    return dict(db.execute(
        select(Submission.item_number, func.count())
        .where(Submission.bulletin_id == bulletin.id, visible_to(viewer))
        .group_by(Submission.item_number)
    ).all())


@bp.get("/staff/items/<int:number>")
@require("folders.view")
def folder(number: int):
    db = get_session()
    bulletin = _bulletin_for(db, request.args.get("bulletin"))
    title = item_title(bulletin, number)
    if title is None:
        abort(404)
    after = request.args.get("after", "")
    viewer = current_staff()
    assert viewer is not None  # behind require
    stmt = (
        select(Submission)
        .where(Submission.bulletin_id == bulletin.id, Submission.item_number == number,
               visible_to(viewer))
        .options(selectinload(Submission.events), selectinload(Submission.replies))
        .order_by(Submission.id)
        .limit(FOLDER_PAGE + 1)
    )
    if after.isdigit():
        stmt = stmt.where(Submission.id > int(after))
    rows = list(db.scalars(stmt))
    more = len(rows) > FOLDER_PAGE
    rows = rows[:FOLDER_PAGE]
    deadlines: dict[int, list[Deadline]] = {}
    if rows:
        for d in db.scalars(select(Deadline).where(Deadline.submission_id.in_([s.id for s in rows]))
                            .order_by(Deadline.due_on, Deadline.id)):
            deadlines.setdefault(d.submission_id, []).append(d)
    units = dict(db.execute(select(Unit.id, Unit.name)).all())
    allowed = publication.public_contacts(db, rows[0]) if rows else ()
    entries = []
    for s in rows:
        personal = redaction.Personal.of(s)
        entries.append(FolderEntry(
            s=s,
            identity=identity_of(s, masked=True),
            body=redaction.mask_text(s.body, personal, allowed),
            unit=units.get(s.unit_id) if s.unit_id else None,
            deadlines=deadlines.get(s.id, []),
            events=[(e, redaction.mask_text(e.text, personal, allowed) if e.text else None) for e in s.events],
            replies=[(r, redaction.mask_text(r.body, personal, allowed)) for r in s.replies],
        ))
    today = datetime.now(settings().tz).date()
    return render_template(
        "publication/folder.html",
        bulletin=bulletin, number=number, title=title, entries=entries, today=today,
        status_of=clocks.status_of, next_after=rows[-1].id if more else None,
        counts=published.cached_item_counts(db, bulletin).get(number, published.ItemCounts())
        if may_here("submissions.all_units") else None,
        printed_at=datetime.now(settings().tz),
    )
