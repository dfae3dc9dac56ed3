"""补发查询码: a new query code for a citizen who never saw one (email, letter) or lost theirs.

A clerk or reviewer checks who is asking against what the record holds, and gives them a new code.
The old code stops working at once. The audit log says who gave a code to whom and how the person
was checked; the new code itself is returned once to the caller of ``reissue_query_code`` and is
stored nowhere but as a keyed hash, like every query code.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from feedback_app.audit.log import record_action
from feedback_app.core import querycode, states
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.errors import ActionError
from feedback_app.core.models import State, Submission, SubmissionEvent
from feedback_app.core.permissions import Actor
from feedback_app.core.querycode import QUERY_CODE_KEY

ACTION = "query_code_reissued"
NOTE_MAX = 500


@dataclass(frozen=True)
class Method:
    label: str
    needs: str  # the field of the record the person is checked against
    missing: str  # why this check cannot be made on a record without that field


# How the person asking was checked. A check needs something on the record to check against.
METHODS = {
    "phone": Method("来电号码与登记的电话号码一致", "phone",
                    "此件未登记电话号码，不能以来电号码核验，请选择其他方式"),
    "id_document": Method("来访时核验身份证件，与登记的姓名一致", "name",
                          "此件未登记姓名，不能以身份证件核验，请选择其他方式"),
    "letter": Method("随书面答复寄送到登记的通信地址", "address",
                     "此件未登记通信地址，不能随书面答复寄送，请选择其他方式"),
    "email_details": Method("来电人说出登记的电子邮箱，并准确复述反映内容", "email",
                            "此件未登记电子邮箱，不能以此方式核验，请选择其他方式"),
}


class ReissueError(ActionError):
    """The code was not reissued; ``field`` names the form field the message belongs next to, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def available_methods(submission: Submission) -> dict[str, str]:
    """The checks that can be made against what this record holds: key → label."""
    return {key: m.label for key, m in METHODS.items() if getattr(submission, m.needs)}


def merged_into(session: Session, submission: Submission) -> Submission | None:
    if submission.state != State.merged.value or submission.merged_into_id is None:
        return None
    return session.get(Submission, submission.merged_into_id)


def refusal(session: Session, submission: Submission) -> str | None:
    """Why no code can be reissued for this submission whoever asks, or None."""
    if submission.anonymous:
        return "此件为匿名反映，无法核实来人就是反映人，不能补发查询码。"
    if submission.state == State.merged.value:
        target = merged_into(session, submission)
        where = f"受理编号 {target.reference} " if target else "另一件"
        return f"此件已合并到{where}办理，不再单独补发查询码。请打开该件，核实来人是该件的反映人后，在该件补发。"
    if not available_methods(submission):
        return "此件未登记姓名、电话、电子邮箱或通信地址，无法核实来人身份，不能补发查询码。"
    return None


def reissue_query_code(
    session: Session,
    settings: Settings,
    actor: Actor,
    submission: Submission,
    *,
    method: str,
    note: str = "",
    expected_version: int | None = None,
    nonce: str | None = None,
) -> str:
    """Replace the submission's query code and return the new one; flushes, never commits.

    ``nonce``: derive the code from this one-time value (``querycode.code_for_nonce``) instead of
    drawing it at random, so that a page can show it later without the code travelling anywhere.
    """
    if not actor.may("query_code.reissue"):
        raise states.TransitionRefused(ACTION)
    reason = refusal(session, submission)
    if reason:
        raise ReissueError(reason)
    if expected_version is not None and expected_version != submission.version:
        raise states.StaleSubmission(submission.reference)
    chosen = METHODS.get(method or "")
    if chosen is None:
        raise ReissueError("请选择核验反映人身份的方式", field="method")
    if not getattr(submission, chosen.needs):
        raise ReissueError(chosen.missing, field="method")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReissueError(f"补充说明不能超过 {NOTE_MAX} 个字", field="note")

    key = settings.subkey(QUERY_CODE_KEY)
    code = querycode.code_for_nonce(key, nonce) if nonce else querycode.new_code()
    submission.query_code_hash = querycode.hash_code(key, code)  # the old code stops working here
    submission.events.append(SubmissionEvent(
        action=ACTION, state_after=submission.state, public=False, at=utcnow(),
        text=f"核验方式：{chosen.label}",
    ))
    record_action(session, settings, actor, ACTION, submission, method=method, note=note or None)
    session.flush()
    return code
