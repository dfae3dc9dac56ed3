"""Keyword-only factories for test data, built through the real services."""
from __future__ import annotations

import re

from feedback_app.core.database import run_after_commit, utcnow
from feedback_app.core.models import Channel, Kind, Reply, ReplyBy, Submission
from feedback_app.intake.service import Draft, create_submission

FORM = "/bulletins/huangpu-2025-03-28/feedback"


def create_web_submission(session, settings, *, bulletin, body="这是一条关于整改落实情况的意见建议。", item=5,
                          kind=Kind.suggestion, reply_by=ReplyBy.online, **fields):
    """A stored web submission; returns (submission, query_code)."""
    draft = Draft(bulletin_id=bulletin.id, item_number=item, channel=Channel.web, kind=Kind(kind), body=body,
                  reply_by=ReplyBy(reply_by), privacy_consent=True, **fields)
    receipt = create_submission(session, settings, draft)
    session.commit()
    run_after_commit(session)  # as a request does once its response has gone out
    submission = session.query(Submission).filter_by(reference=receipt.reference).one()
    return submission, receipt.query_code


def create_reply(session, *, submission, body="经核查，相关部门已完成整改。", approved=True):
    reply = Reply(submission_id=submission.id, body=body, approved_at=utcnow() if approved else None)
    session.add(reply)
    session.commit()
    return reply


def form_fields(client, path=FORM + "?item=5"):
    """GET the form and return its hidden tokens."""
    html = client.get(path).get_data(as_text=True)
    fields = {"form_token": re.search(r'name="form_token" value="([^"]*)"', html).group(1)}
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]*)"', html)
    if csrf:
        fields["csrf_token"] = csrf.group(1)
    return fields


def valid_data(**overrides):
    data = {"item": "5", "kind": "suggestion", "body": "建议进一步规范涉企会议的时间安排，提前通知企业。",
            "reply_by": "online", "privacy_consent": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def submit(client, path=FORM, buffered=True, **overrides):
    """A complete POST of the form, as a browser would send it. ``buffered=False``: the response is left
    open (what runs after it has gone out waits for ``close()``)."""
    data = {**form_fields(client), **valid_data(**overrides)}
    return client.post(path, data=data, content_type="multipart/form-data", buffered=buffered)


def receipt_of(client):
    html = client.get("/receipt").get_data(as_text=True)
    ref = re.search(r'id="reference">([^<]+)<', html).group(1)
    code = re.search(r'id="query-code">([^<]+)<', html)
    return ref, code.group(1) if code else None
