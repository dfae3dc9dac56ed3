"""``create_submission``: the one way any channel's draft becomes a record."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from feedback_app.core import clocks, querycode
from feedback_app.core.calendar import CalendarError
from feedback_app.core.config import Settings
from feedback_app.core.database import after_commit, on_outcome, utcnow
from feedback_app.core.models import (
    Attachment,
    Bulletin,
    Channel,
    Deadline,
    Kind,
    ReplyBy,
    State,
    Submission,
    SubmissionEvent,
)
from feedback_app.core.prepared import PreparedStatement
from feedback_app.core.querycode import QUERY_CODE_KEY
from feedback_app.intake import attachments as files
from feedback_app.intake.reference import format_reference, next_sequence
from feedback_app.outbox.delivery import enqueue
from feedback_app.outbox.texts import render_mail
from feedback_app.search import backlog as search_backlog

log = logging.getLogger(__name__)

FORM_TOKEN_KEY = "form-token"
CLIENT_KEY = "client"


@dataclass(frozen=True)
class Draft:
    """What every channel adapter produces."""

    bulletin_id: int
    item_number: int
    channel: Channel
    kind: Kind
    body: str
    reply_by: ReplyBy = ReplyBy.online
    anonymous: bool = False
    publish_consent: bool = False
    privacy_consent: bool = False
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    received_at: datetime | None = None
    counts_from: date | None = None  # a letter's clocks run from the day it arrived
    channel_facts: dict | None = None  # what the channel itself recorded (caller line, postmark, Message-ID…)
    attachments: tuple[files.IncomingFile, ...] = field(default=())
    form_token: str | None = None
    client: str | None = None


@dataclass(frozen=True)
class Receipt:
    reference: str
    query_code: str | None  # None when only the reference can be given back
    created: bool


def body_hash(body: str) -> str:
    canonical = "".join(unicodedata.normalize("NFKC", body).split())
    return hashlib.sha256(canonical.encode()).hexdigest()


def keyed(settings: Settings, purpose: str, value: str) -> str:
    return hmac.new(settings.subkey(purpose), value.encode(), hashlib.sha256).hexdigest()


_t = Submission.__table__.c  # plain column reads: these run on every comment, before it is stored
_BY_TOKEN = select(_t.reference).where(_t.form_token_hash == bindparam("token_hash"))
_EARLIER = PreparedStatement(select(_BY_TOKEN.scalar_subquery()))  # one row, NULL when there is none


def receipt_for_token(session: Session, settings: Settings, form_token: str) -> Receipt | None:
    """The receipt of a form already submitted with this one-time token."""
    reference = session.connection().scalar(_BY_TOKEN, {"token_hash": keyed(settings, FORM_TOKEN_KEY, form_token)})
    return _token_receipt(settings, form_token, reference)


def _token_receipt(settings: Settings, form_token: str, reference: str | None) -> Receipt | None:
    if reference is None:
        return None
    code = querycode.code_for_token(settings.subkey(QUERY_CODE_KEY), form_token)
    return Receipt(reference, code, created=False)


@dataclass(frozen=True)
class Prepared:
    """A draft as it will be stored, computed without the database: all but its reference number."""

    row: dict  # the submission's columns, but for reference, year and seq
    year: int
    code: str
    clocks: tuple[clocks.PlannedClock, ...]
    attachments: tuple[files.IncomingFile, ...]
    calendar_failed: bool
    form_token: str | None = None


def prepare_submission(settings: Settings, draft: Draft) -> Prepared:
    """Everything ``store_submission`` writes that needs no database: hashes, the code, the clocks.

    The citizen form computes this before it takes the write lock, so that the lock is held only
    for the statements themselves.
    """
    now = utcnow()
    received_at = draft.received_at or now
    code_key = settings.subkey(QUERY_CODE_KEY)
    code = (
        querycode.code_for_token(code_key, draft.form_token) if draft.form_token else querycode.new_code()
    )
    anonymous = draft.anonymous
    try:
        planned = tuple(clocks.receipt_clocks(settings, kind=draft.kind.value, anonymous=anonymous,
                                              channel=draft.channel.value, received_at=received_at,
                                              start_on=draft.counts_from))
        calendar_failed = False
    except CalendarError:  # never lose a submission over the calendar; `deadlines calendar` warns admins
        planned, calendar_failed = (), True
    row = {
        "bulletin_id": draft.bulletin_id,
        "item_number": draft.item_number,
        "channel": draft.channel.value,
        "kind": draft.kind.value,
        "body": draft.body,
        "name": None if anonymous else draft.name,
        "phone": None if anonymous else draft.phone,
        "email": None if anonymous else draft.email,
        "address": None if anonymous else draft.address,
        "reply_by": ReplyBy.online.value if anonymous else draft.reply_by.value,
        "anonymous": anonymous,
        "publish_consent": draft.publish_consent,
        "privacy_consent_at": now if draft.privacy_consent else None,
        "state": State.received.value,
        "query_code_hash": querycode.hash_code(code_key, code),
        "form_token_hash": keyed(settings, FORM_TOKEN_KEY, draft.form_token) if draft.form_token else None,
        "client_hash": keyed(settings, CLIENT_KEY, draft.client) if draft.client else None,
        "body_hash": body_hash(draft.body),
        "received_at": received_at,
        "created_at": now,
        "version": 1,
        "next_due_on": min((clock.due_on for clock in planned), default=None),
        "channel_facts": json.dumps(draft.channel_facts, ensure_ascii=False) if draft.channel_facts else None,
    }
    return Prepared(row, received_at.astimezone(settings.tz).year, code, planned, draft.attachments,
                    calendar_failed, draft.form_token)


def earlier_receipt(session: Session, settings: Settings, prepared: Prepared) -> Receipt | None:
    """The receipt of the form this draft came from, if it was stored before: the one-time form token
    alone decides "the same submission again" (a double click, a refresh, a resend after a lost
    connection). The same words in a new form are a new submission, which staff see proposed as a
    likely duplicate (``moderation.duplicates``): nothing sent is ever dropped as a repeat. Run while
    the write lock is held."""
    if not prepared.form_token:
        return None
    (reference,) = _EARLIER.one(session.connection(), {"token_hash": prepared.row["form_token_hash"]})
    return _token_receipt(settings, prepared.form_token, reference)


def store_submission(session: Session, settings: Settings, prepared: Prepared) -> Receipt:
    """Give the prepared submission its number and store it with its attachments, its first history
    step, its clocks and its acknowledgement.

    Plain inserts, not the ORM's unit of work: every comment of every channel comes through here, and
    the citizen form's throughput is bounded by it. Nothing is read back except for an
    acknowledgement mail. Runs in the caller's transaction; never commits.
    """
    db = session.connection()  # Core statements straight on the transaction's connection
    seq = next_sequence(db, prepared.year)
    reference = format_reference(settings.reference_prefix, prepared.year, seq)
    if prepared.calendar_failed:
        log.error("no deadlines for %s: the working-day calendar does not cover its dates", reference)
    row = {**prepared.row, "reference": reference, "year": prepared.year, "seq": seq}
    submission_id = _INSERT_SUBMISSION.insert(db, row)
    if search_backlog.is_kept(db) and search_backlog.due(submission_id):
        after_commit(session, search_backlog.index_backlog)
    _INSERT_EVENT.run(db, {"submission_id": submission_id, "action": "received",
                           "state_after": State.received.value, "public": True, "at": row["received_at"]})
    for clock in prepared.clocks:  # one or two
        _INSERT_DEADLINE.run(db, {"submission_id": submission_id, "kind": clock.kind, "starts_on": clock.starts_on,
                                  "due_on": clock.due_on, "rule": clock.rule, "extension_days": 0,
                                  "created_at": row["created_at"]})
    if prepared.attachments:
        directory = settings.attachments_path
        stored = []
        for incoming in prepared.attachments:
            written = files.store(directory, incoming)
            on_outcome(session, committed=partial(files.place, directory, written.stored_name),
                       rolled_back=partial(files.discard, directory, written.stored_name))
            stored.append({**vars(written), "submission_id": submission_id, "created_at": row["created_at"]})
        db.execute(_INSERT_ATTACHMENT, stored)
    if row["email"] and not row["anonymous"]:
        submission = session.get(Submission, submission_id)
        assert submission is not None  # inserted above, in this transaction
        _acknowledge(session, settings, submission)
    return Receipt(reference, prepared.code, created=True)


def create_submission(session: Session, settings: Settings, draft: Draft) -> Receipt:
    """The one way any channel's draft becomes a record: ``prepare_submission``, then ``store_submission``."""
    return store_submission(session, settings, prepare_submission(settings, draft))


# the statements every comment runs while it holds the write lock, built once (a model's ``__table__`` is
# typed as any FromClause; these models' are Tables)
_INSERT_SUBMISSION = PreparedStatement(insert(cast(Table, Submission.__table__)))
_INSERT_EVENT = PreparedStatement(insert(cast(Table, SubmissionEvent.__table__)))
_INSERT_DEADLINE = PreparedStatement(insert(cast(Table, Deadline.__table__)))
_INSERT_ATTACHMENT = insert(cast(Table, Attachment.__table__))


def _acknowledge(session: Session, settings: Settings, submission: Submission) -> None:
    assert submission.email is not None  # only a submission with an address is acknowledged
    enqueue(
        session,
        kind="acknowledgement",
        recipient=submission.email,
        subject=f"已收到您的意见（受理编号 {submission.reference}）",
        body=render_mail(
            "acknowledgement.txt", submission=submission, track_url=settings.public_url + "/track",
            hotline=_hotline(session, submission),
        ),
        submission_id=submission.id,
    )


def _hotline(session: Session, submission: Submission) -> str | None:
    """The bulletin's published phone, for the acknowledgement to tell someone who did not use the web
    whom to call. A web submission's mail does not name it: no look-up on that path."""
    if submission.channel == Channel.web.value:
        return None
    bulletin = session.get(Bulletin, submission.bulletin_id)  # usually already in the session
    return bulletin.contact_phone if bulletin else None
