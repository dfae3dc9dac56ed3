"""Replies: a handler drafts, a reviewer approves, then the reply reaches the citizen the way they asked."""
from __future__ import annotations

from sqlalchemy.orm import Session

from feedback_app.audit.log import record_action
from feedback_app.core import clocks, states
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.errors import ActionError
from feedback_app.core.models import Reply, ReplyBy, State, Submission
from feedback_app.core.permissions import Actor
from feedback_app.outbox.delivery import enqueue
from feedback_app.outbox.texts import render_mail


def open_draft(submission: Submission) -> Reply | None:
    return next((r for r in submission.replies if r.approved_at is None), None)


def draft_reply(session: Session, settings: Settings, actor: Actor, submission: Submission, body: str) -> Reply:
    """Write or rewrite the draft; the first draft concludes the handling and starts the feedback clock."""
    if not states.allowed("draft_reply", State(submission.state), actor.role):
        raise states.TransitionRefused("draft_reply")
    body = body.strip()
    if len(body) < 10:
        raise ActionError("答复内容至少 10 个字")
    reply = open_draft(submission)
    if reply is None:
        reply = Reply(body=body, drafted_by_id=actor.user.id, created_at=utcnow())
        submission.replies.append(reply)
    else:
        reply.body, reply.drafted_by_id = body, actor.user.id
    if submission.concluded_at is None:
        submission.concluded_at = utcnow()
        clocks.mark_met(session, submission, "conclude", submission.concluded_at)
        clocks.deadlines_on_conclusion(session, settings, submission,
                                       submission.concluded_at.astimezone(settings.tz).date())
    record_action(session, settings, actor, "reply_drafted", submission)
    session.flush()
    return reply


def approve_reply(session: Session, settings: Settings, actor: Actor, submission: Submission, *,
                  expected_version: int) -> Reply:
    """Approve the draft: the citizen sees it on /track, and gets it by e-mail when they asked so."""
    if not actor.may("approve_reply"):
        raise states.TransitionRefused("approve_reply")
    reply = open_draft(submission)
    if reply is None:
        raise ActionError("没有待审核的答复稿")
    states.apply(session, submission, "answer", role=actor.role, expected_version=expected_version)
    now = utcnow()
    reply.approved_at, reply.approved_by_id = now, actor.user.id
    reply_by = ReplyBy(submission.reply_by)
    if reply_by in (ReplyBy.online, ReplyBy.email):
        reply.delivered_at = now
    if reply_by is ReplyBy.email and submission.email:
        enqueue(
            session,
            kind="reply",
            recipient=submission.email,
            subject=f"关于您反映事项的答复（受理编号 {submission.reference}）",
            body=render_mail("reply.txt", submission=submission, reply=reply,
                                 track_url=settings.public_url + "/track"),
            submission_id=submission.id,
        )
    for kind in ("inform", "conclude", "feedback"):
        clocks.mark_met(session, submission, kind, now)
    clocks.refresh_next_due(submission)
    record_action(session, settings, actor, "reply_approved", submission, delivery=reply_by.value)
    session.flush()
    return reply


def record_delivery(session: Session, settings: Settings, actor: Actor, submission: Submission, reply: Reply,
                    note: str) -> None:
    """For a phone or letter reply: record that the call back was made or the letter posted."""
    if not actor.may("record_delivery"):
        raise states.TransitionRefused("record_delivery")
    if reply.approved_at is None:
        raise ActionError("答复尚未审核通过")
    if not note.strip():
        raise ActionError("请填写回复情况，如通话时间、寄出日期")
    reply.delivered_at, reply.delivery_note = utcnow(), note.strip()
    record_action(session, settings, actor, "reply_delivered", submission, via=submission.reply_by)
    session.flush()
