"""The one state machine: every state × role × action, allowed or refused as the table says."""
import itertools

import pytest

from feedback_app.core import states
from feedback_app.core.models import State
from feedback_app.core.permissions import ROLES, roles_for
from feedback_app.core.states import StaleSubmission, TransitionRefused
from tests.factories import create_web_submission

S = State
EXPECTED = {
    # action: (states it may start from, roles that may do it, resulting state or None for unchanged)
    "accept": ({S.received, S.reopened}, {"reviewer", "admin"}, S.accepted),
    "reject": ({S.received, S.reopened}, {"reviewer", "admin"}, S.rejected),
    "merge": ({S.received, S.accepted, S.reopened}, {"reviewer", "admin"}, S.merged),
    "assign": ({S.accepted, S.assigned, S.reopened}, {"reviewer", "admin"}, S.assigned),
    "answer": ({S.accepted, S.assigned, S.reopened}, {"reviewer", "admin"}, S.answered),
    "close": ({S.answered}, {"reviewer", "admin"}, S.closed),
    "reopen": ({S.answered, S.closed, S.rejected}, {"reviewer", "admin"}, S.reopened),
    "follow_up": (set(State) - {S.merged}, {"citizen"}, None),
    "rate": ({S.answered, S.closed}, {"citizen"}, None),
    "note": (set(State), {"clerk", "reviewer", "handler", "admin"}, None),
    "draft_reply": ({S.accepted, S.assigned, S.reopened}, {"handler", "reviewer", "admin"}, None),
}


def test_the_table_is_the_one_written_down():
    assert set(states.TRANSITIONS) == set(EXPECTED)
    for action, (sources, roles, target) in EXPECTED.items():
        t = states.TRANSITIONS[action]
        assert (set(t.sources), set(roles_for(action)), t.target) == (sources, roles, target), action


@pytest.mark.parametrize("state, role", list(itertools.product(State, ROLES)))
def test_every_pair_of_state_and_role(session, settings, bulletin, state, role):
    """Walk every action from this state as this role: allowed ones move it, the rest are refused."""
    for action, (sources, roles, target) in EXPECTED.items():
        submission, _ = create_web_submission(session, settings, bulletin=bulletin,
                                              body=f"状态{state.value}角色{role}动作{action}的测试意见。")
        submission.state = state.value
        session.commit()
        before = len(submission.events)
        if state in sources and role in roles:
            states.apply(session, submission, action, role=role, expected_version=submission.version)
            if action == "follow_up" and state in (S.answered, S.closed):
                assert submission.state == S.reopened.value
            else:
                assert submission.state == (target or state).value
            assert submission.events[-1].action == action and len(submission.events) == before + 1
        else:
            with pytest.raises(TransitionRefused):
                states.apply(session, submission, action, role=role)
            assert submission.state == state.value and len(submission.events) == before
        session.rollback()


def test_unknown_action_is_refused(session, settings, bulletin):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    with pytest.raises(TransitionRefused):
        states.apply(session, submission, "delete", role="admin")


def test_a_stale_form_is_a_conflict_not_a_lost_update(session, settings, bulletin):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    shown_version = submission.version
    states.apply(session, submission, "accept", role="reviewer", expected_version=shown_version)
    session.commit()
    with pytest.raises(StaleSubmission):
        states.apply(session, submission, "reject", role="reviewer", expected_version=shown_version)
    assert submission.state == S.accepted.value


def test_state_changes_bump_the_version(session, settings, bulletin):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    v = submission.version
    states.apply(session, submission, "accept", role="reviewer", expected_version=v)
    session.commit()
    assert submission.version == v + 1
