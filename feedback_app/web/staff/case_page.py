"""The submission page, for every staff view that shows it: after a GET, and again after a refused action
(with the form as it was filled in and what was wrong). Its panels are gathered here, from the services."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, render_template
from sqlalchemy import select
from wtforms import IntegerField, RadioField, TextAreaField
from wtforms.validators import Optional

from feedback_app.core import clocks, states
from feedback_app.core.masking import Identity, identity_of
from feedback_app.core.models import (
    Channel,
    Deadline,
    InternalNote,
    Kind,
    Publication,
    ReplyBy,
    StaffUser,
    State,
    Submission,
    Unit,
)
from feedback_app.core.permissions import HANDLER, may
from feedback_app.core.words import STAFF_EVENT_WORDS
from feedback_app.current import settings
from feedback_app.intake import channel_facts
from feedback_app.moderation import duplicates, query_codes, queue
from feedback_app.moderation.actions import is_revealed
from feedback_app.outcomes import publication
from feedback_app.web.access import current_staff
from feedback_app.web.forms import Form
from feedback_app.web.transaction import get_session

QUERY_CODE_FORM = "query_code"  # the 补发查询码 form's key in render_detail(forms=...)
WITHDRAW_FORM = "withdraw_publication"  # the 撤回公开 form's key (web.staff.publication.withdraw)



def load_visible(reference: str) -> Submission:
    """The submission if this viewer may see it; otherwise the same 404 as for one that does not exist."""
    viewer = current_staff()
    assert viewer is not None  # behind require
    submission = get_session().scalar(
        select(Submission).where(Submission.reference == reference, queue.visible_to(viewer))
    )
    if submission is None:
        abort(404)
    return submission


class QueryCodeForm(Form):
    version = IntegerField(validators=[Optional()])
    # checked by the service against what the record holds, so that the message says why
    method = RadioField("核验反映人身份的方式", choices=[], validate_choice=False, id="qc-method")
    note = TextAreaField("补充说明（可选，记入审计日志）", id="qc-note")


def query_code_form(submission: Submission, form: QueryCodeForm | None = None) -> QueryCodeForm:
    form = form or QueryCodeForm(formdata=None)
    form.method.choices = list(query_codes.available_methods(submission).items())
    return form


@dataclass(frozen=True)
class QueryCodePanel:
    """The 补发查询码 section (clerks and reviewers only)."""

    form: QueryCodeForm
    refusal: str | None
    merged_into: Submission | None
    note_max: int


@dataclass(frozen=True)
class PublicationPanel:
    consent: bool
    publication: Publication | None
    refusal: str | None
    can_withdraw: bool

    @property
    def published(self) -> bool:
        return self.publication is not None and self.publication.withdrawn_at is None


def _fact_rows(submission: Submission, identity: Identity) -> list[channel_facts.FactRow]:
    """The channel's own record of a submission, masked like the identity is."""
    if not submission.channel_facts:
        return []
    try:
        facts = json.loads(submission.channel_facts)
    except ValueError:
        return []
    return channel_facts.fact_rows(submission.channel, facts if isinstance(facts, dict) else None,
                              masked=identity.masked)


def _publication_panel(submission: Submission, role: str) -> PublicationPanel:
    existing = publication.publication_of(get_session(), submission)
    return PublicationPanel(
        consent=bool(submission.publish_consent),
        publication=existing,
        refusal=publication.refusal(submission, role),
        can_withdraw=may(role, "publication.manage") and existing is not None and existing.withdrawn_at is None,
    )


# What the submission page offers: the state changes the state allows, and what needs no particular state.
PAGE_ACTIONS = ("reveal", "extend", "approve_reply", "record_delivery", "query_code.reissue")


def allowed_actions(submission: Submission, role: str) -> set[str]:
    """Every action of the submission page this role may take on this submission now."""
    state = State(submission.state)
    return ({action for action in states.TRANSITIONS if states.allowed(action, state, role)}
            | {action for action in PAGE_ACTIONS if may(role, action)})


def render_detail(submission: Submission, status: int = 200, forms: dict[str, Any] | None = None
                  ) -> tuple[str, int]:
    """The submission page. ``forms``: the forms sent in this request, bound to what was sent, by the
    action they belong to (``web.staff.actions``' action names, ``QUERY_CODE_FORM``, ``WITHDRAW_FORM``):
    when a request is refused, fails or is not valid, its form shows what was typed and what was wrong,
    and every other form is shown empty, as after a GET."""
    viewer = current_staff()
    assert viewer is not None  # behind require
    db = get_session()
    forms = forms or {}
    revealed = is_revealed(db, submission)
    masked = not may(viewer.role, "identity.view") and not revealed
    identity = identity_of(submission, masked=masked)
    allowed = allowed_actions(submission, viewer.role)
    handlers = db.scalars(
        select(StaffUser).where(StaffUser.role == HANDLER, StaffUser.active.is_(True))
        .order_by(StaffUser.unit_id, StaffUser.username)
    ).all()
    html = render_template(
        "staff/detail.html",
        s=submission,
        identity=identity,
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
        forms=forms,
        ReplyBy=ReplyBy,
        Channel=Channel,
        staff_event_words=STAFF_EVENT_WORDS,
        fact_rows=_fact_rows(submission, identity),
        proposals=duplicates.candidates(db, submission, viewer=viewer),
        pub=_publication_panel(submission, viewer.role),
        qc=QueryCodePanel(
            form=query_code_form(submission, forms.get(QUERY_CODE_FORM)),
            refusal=query_codes.refusal(db, submission),
            merged_into=query_codes.merged_into(db, submission),
            note_max=query_codes.NOTE_MAX,
        ) if "query_code.reissue" in allowed else None,
    )
    return html, status
