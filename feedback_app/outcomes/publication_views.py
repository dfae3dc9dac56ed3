"""Publication pages, and the printable folder of one rectification item.

Staff:
  GET  /staff/publication                         what may be published, and what was (reviewer, admin)
  GET  /staff/publication/<reference>             the side-by-side redaction page (reviewer, admin)
  POST /staff/publication/<reference>             publish the edited texts
  POST /staff/publication/<reference>/withdraw    withdraw a publication
  GET  /staff/items                               the items, with links to their folders
  GET  /staff/items/<n>                           一个问题一个文件夹: one item's submissions, printable
Public:
  GET  /bulletins/<slug>/items/<n>/comments       an item's published comments and replies
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms import TextAreaField

from feedback_app.auth.models import Unit
from feedback_app.auth.sessions import current_staff, require_roles
from feedback_app.bulletin.models import Bulletin
from feedback_app.bulletin.service import get_bulletin
from feedback_app.db import get_session
from feedback_app.intake.models import Submission
from feedback_app.moderation import clocks
from feedback_app.moderation.actions import actor_for
from feedback_app.moderation.masking import identity_of
from feedback_app.moderation.models import Deadline
from feedback_app.moderation.queue import visible_to
from feedback_app.moderation.views import load_visible
from feedback_app.outcomes import publication, redaction
from feedback_app.outcomes.models import Publication

bp = Blueprint("publication", __name__, url_prefix="")

PUBLISHERS = tuple(publication.PUBLISHERS)
FOLDER_READERS = ("reviewer", "admin", "clerk", "handler")
FOLDER_PAGE = 100
PUBLIC_PAGE = 20


def settings():
    return current_app.extensions["settings"]


class PublishForm(FlaskForm):
    text = TextAreaField("公开的意见内容")
    reply_text = TextAreaField("公开的答复内容")


class WithdrawForm(FlaskForm):
    reason = TextAreaField("撤回原因")


# ---------- template globals ----------

@dataclass(frozen=True)
class Panel:
    """What the submission page says about publication, for the current viewer."""

    consent: bool
    publication: Publication | None
    refusal: str | None  # why the viewer may not publish it, or None
    can_withdraw: bool

    @property
    def published(self) -> bool:
        return self.publication is not None and self.publication.withdrawn_at is None


@bp.app_template_global()
def publication_panel(submission: Submission) -> Panel:
    viewer = current_staff()
    role = viewer.role if viewer else None
    existing = publication.publication_of(get_session(), submission)
    return Panel(
        consent=bool(submission.publish_consent),
        publication=existing,
        refusal=publication.refusal(submission, role),
        can_withdraw=role in publication.PUBLISHERS and existing is not None and existing.withdrawn_at is None,
    )


@bp.app_template_filter("cn_local_date")
def cn_local_date(value: datetime) -> str:
    local = value.astimezone(settings().tz)
    return f"{local.year}年{local.month}月{local.day}日"


@dataclass(frozen=True)
class ItemPublications:
    counts: publication.ItemCounts
    latest: list[publication.Published]
    total: int


@bp.app_template_global()
def item_publications(bulletin: Bulletin, number: int) -> ItemPublications:
    """Counts and the latest published comments of one item; loaded once per bulletin and request."""
    cache = g.setdefault("_bulletin_publications", {})
    if bulletin.id not in cache:
        cache[bulletin.id] = publication.cached_for_bulletin(get_session(), bulletin)
    data: publication.BulletinPublications = cache[bulletin.id]
    return ItemPublications(data.counts.get(number, publication.ItemCounts()), data.latest.get(number, []),
                            data.totals.get(number, 0))


# ---------- publishing ----------

def _render_redaction(submission: Submission, form: PublishForm, status: int = 200, problems=None):
    db = get_session()
    proposal = publication.propose(db, submission)
    if not form.is_submitted():
        form.text.data = proposal.text
        form.reply_text.data = proposal.reply_text
    refusal = publication.refusal(submission, current_staff().role)
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
@require_roles(*PUBLISHERS)
def index():
    db = get_session()
    return render_template("publication/index.html", candidates=publication.candidates(db),
                           recent=publication.recent(db))


@bp.get("/staff/publication/<reference>")
@require_roles(*PUBLISHERS)
def redact(reference: str):
    submission = load_visible(reference)
    return _render_redaction(submission, PublishForm(formdata=None))


@bp.post("/staff/publication/<reference>")
@require_roles(*PUBLISHERS)
def publish(reference: str):
    submission = load_visible(reference)
    form = PublishForm()
    if not form.validate():
        flash("页面已过期，请重新操作。", "error")
        return _render_redaction(submission, form, 400)
    db = get_session()
    try:
        publication.publish(db, settings(), actor_for(current_staff()), submission,
                            text=form.text.data or "", reply_text=form.reply_text.data)
        db.flush()
    except publication.RedactionIncomplete as exc:
        db.rollback()
        return _render_redaction(load_visible(reference), form, 400, problems=exc)
    except publication.PublicationRefused as exc:
        db.rollback()
        flash(str(exc), "error")
        return _render_redaction(load_visible(reference), form, 403 if publication.refusal(
            submission, current_staff().role) else 400)
    except IntegrityError:
        db.rollback()
        flash("此件刚刚已被他人公开。", "error")
        return _render_redaction(load_visible(reference), form, 409)
    flash("已公开。公众可在通报页面该整改事项下看到这条意见和答复。", "success")
    return redirect(url_for("staff.detail", reference=reference), code=303)


@bp.post("/staff/publication/<reference>/withdraw")
@require_roles(*PUBLISHERS)
def withdraw(reference: str):
    submission = load_visible(reference)
    form = WithdrawForm()
    if not form.validate():
        flash("页面已过期，请重新操作。", "error")
        return redirect(url_for("staff.detail", reference=reference), code=303)
    db = get_session()
    try:
        publication.withdraw(db, settings(), actor_for(current_staff()), submission, reason=form.reason.data or "")
    except publication.PublicationRefused as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for("staff.detail", reference=reference), code=303)
    flash("已撤回公开。", "success")
    return redirect(url_for("staff.detail", reference=reference), code=303)


# ---------- the item folder ----------

def _bulletin_for(db, slug: str | None) -> Bulletin:
    if slug:
        bulletin = get_bulletin(db, slug)
    else:
        bulletin = db.scalar(select(Bulletin).order_by(Bulletin.published_on.desc(), Bulletin.id.desc()).limit(1))
    if bulletin is None:
        abort(404)
    return bulletin


def _item_title(bulletin: Bulletin, number: int) -> str | None:
    if number == 0:
        return "整改工作整体"
    return next((i.title for i in bulletin.items if i.number == number), None)


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
@require_roles(*FOLDER_READERS)
def items():
    db = get_session()
    bulletin = _bulletin_for(db, request.args.get("bulletin"))
    counts = _visible_counts(db, bulletin)
    rows = [(0, "整改工作整体")] + [(i.number, i.title) for i in bulletin.items]
    return render_template("publication/folders.html", bulletin=bulletin, rows=rows, counts=counts)


def _visible_counts(db, bulletin: Bulletin) -> dict[int, int]:
    from sqlalchemy import func

    return dict(db.execute(
        select(Submission.item_number, func.count())
        .where(Submission.bulletin_id == bulletin.id, visible_to(current_staff()))
        .group_by(Submission.item_number)
    ).all())


@bp.get("/staff/items/<int:number>")
@require_roles(*FOLDER_READERS)
def folder(number: int):
    db = get_session()
    bulletin = _bulletin_for(db, request.args.get("bulletin"))
    title = _item_title(bulletin, number)
    if title is None:
        abort(404)
    after = request.args.get("after", "")
    stmt = (
        select(Submission)
        .where(Submission.bulletin_id == bulletin.id, Submission.item_number == number,
               visible_to(current_staff()))
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
        counts=publication.cached_item_counts(db, bulletin).get(number, publication.ItemCounts())
        if current_staff().role != "handler" else None,
        printed_at=datetime.now(settings().tz),
    )


# ---------- public ----------

@bp.get("/bulletins/<slug>/items/<int:number>/comments")
def item_comments(slug: str, number: int):
    db = get_session()
    bulletin = get_bulletin(db, slug)
    if bulletin is None:
        abort(404)
    title = _item_title(bulletin, number)
    if title is None:
        abort(404)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    total = publication.published_count(db, bulletin.id, number)
    comments = publication.published(db, bulletin.id, number, limit=PUBLIC_PAGE, offset=(page - 1) * PUBLIC_PAGE)
    if page > 1 and not comments:
        abort(404)
    counts = publication.cached_item_counts(db, bulletin).get(number, publication.ItemCounts())
    response = current_app.make_response(render_template(
        "publication/item_comments.html", bulletin=bulletin, number=number, title=title, comments=comments,
        total=total, counts=counts, page=page, pages=max(1, -(-total // PUBLIC_PAGE)),
    ))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
