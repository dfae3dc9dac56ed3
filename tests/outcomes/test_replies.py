"""The reply services ask the permissions table themselves, whichever page or command calls them."""
from __future__ import annotations

import pytest

from feedback_app.auth.accounts import create_unit
from feedback_app.core.models import ReplyBy, State
from feedback_app.core.permissions import STAFF, Actor, may
from feedback_app.core.states import TransitionRefused
from feedback_app.outcomes.replies import approve_reply, record_delivery
from tests.auth.helpers import create_staff
from tests.factories import create_reply, create_web_submission


@pytest.mark.parametrize("role", sorted(STAFF))
def test_approving_and_recording_a_delivery_need_the_permission(session, settings, bulletin, role):
    unit = create_unit(session, "区发展和改革局")
    actor = Actor(create_staff(session, username=f"{role}.one", role=role, unit=unit if role == "handler" else None),
                  client="127.0.0.1")
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, reply_by=ReplyBy.phone,
                                          phone="+8613800138000")
    submission.state = State.accepted.value
    create_reply(session, submission=submission, approved=False)
    session.refresh(submission)
    if may(role, "approve_reply"):
        reply = approve_reply(session, settings, actor, submission, expected_version=submission.version)
        assert reply.approved_at is not None and submission.state == State.answered.value
    else:
        with pytest.raises(TransitionRefused):
            approve_reply(session, settings, actor, submission, expected_version=submission.version)
        assert submission.state == State.accepted.value
    session.rollback()
    approved = create_reply(session, submission=submission)
    if may(role, "record_delivery"):
        record_delivery(session, settings, actor, submission, approved, "12月7日10时已回电")
        assert approved.delivered_at is not None
    else:
        with pytest.raises(TransitionRefused):
            record_delivery(session, settings, actor, submission, approved, "12月7日10时已回电")
        assert approved.delivered_at is None
