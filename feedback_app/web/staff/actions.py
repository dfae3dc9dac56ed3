"""The POSTs of the submission page: one handler per action, one answer for conflicts and refusals."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from sqlalchemy.orm.exc import StaleDataError
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import Optional

from feedback_app.core import clocks
from feedback_app.core.errors import ActionError
from feedback_app.core.models import Reply
from feedback_app.core.states import StaleSubmission, TransitionRefused
from feedback_app.current import settings
from feedback_app.moderation import actions
from feedback_app.outcomes import replies
from feedback_app.web.access import actor, may_here, require
from feedback_app.web.forms import Form
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.staff.case_page import load_visible, render_detail
from feedback_app.web.transaction import get_session

bp = Blueprint("actions", __name__, url_prefix="/staff")


NOT_A_NUMBER = "请填写有效的数字"


class ActionForm(Form):
    """The fields of every action of the submission page; each action reads its own. Bound to what was
    sent, it is passed back to the page (``render_detail(forms={action: form})``), which shows what was
    typed in that action's form, and each field's problem next to it."""

    version = IntegerField("版本", validators=[Optional()], invalid_value_message=NOT_A_NUMBER)
    kind = StringField("类型")
    reason = StringField("理由")
    note = TextAreaField("说明")
    unit = IntegerField("责任单位", validators=[Optional()], invalid_value_message=NOT_A_NUMBER)
    handler = IntegerField("承办人", validators=[Optional()], invalid_value_message=NOT_A_NUMBER)
    into = StringField("受理编号")
    days = IntegerField("延长天数", validators=[Optional()], invalid_value_message="请填写1至30之间的整数")
    body = TextAreaField("答复内容")
    reply = IntegerField("答复", validators=[Optional()], invalid_value_message=NOT_A_NUMBER)


def _refusal_message(form: ActionForm) -> str:
    """Why the form was not acted on, for the top of the page: the request's refusal, else each field's
    problem (shown next to the field too, where the page has it)."""
    reason = problem()
    if reason is not None:
        return f"{reason}请重新操作。"
    wrong = "；".join(f"{field.label.text}：{error}" for field in form
                      if field.name != "csrf_token" for error in field.errors)
    return f"操作未执行。{wrong}。" if wrong else "操作未执行，请重新操作。"


def _text(field) -> str:
    return (field.data or "").strip()


def _reply_of(submission, form) -> Reply:
    reply = next((r for r in submission.replies if r.id == form.reply.data), None)
    if reply is None:
        raise ActionError("找不到这份答复")
    return reply


DONE = {
    "accept": "已受理",
    "reject": "已作不予受理处理",
    "assign": "已转交责任单位",
    "merge": "已合并",
    "reopen": "已重新办理",
    "close": "已办结",
    "note": "备注已保存",
    "reveal": "已为承办人解除身份信息遮盖",
    "extend": "办结时限已延长",
    "draft_reply": "答复稿已保存，等待审核",
    "approve_reply": "答复已审核通过",
    "record_delivery": "已记录答复送达情况",
}


def _perform(action: str, db, actor, submission, form) -> None:
    s, v = settings(), form.version.data
    match action:
        case "accept":
            actions.accept(db, s, actor, submission, kind=_text(form.kind), expected_version=v)
        case "reject":
            actions.reject(db, s, actor, submission, reason=_text(form.reason), note=_text(form.note),
                           expected_version=v)
        case "assign":
            actions.assign(db, s, actor, submission, unit_id=form.unit.data or 0, handler_id=form.handler.data,
                           expected_version=v)
        case "merge":
            actions.merge(db, s, actor, submission, into_reference=_text(form.into), expected_version=v)
        case "reopen":
            actions.reopen(db, s, actor, submission, note=_text(form.note), expected_version=v)
        case "close":
            actions.close(db, s, actor, submission, expected_version=v)
        case "note":
            actions.add_note(db, s, actor, submission, _text(form.note))
        case "reveal":
            actions.reveal(db, s, actor, submission, _text(form.reason))
        case "extend":
            actions.extend_deadline(db, s, actor, submission, days=form.days.data or 0, reason=_text(form.reason))
        case "draft_reply":
            replies.draft_reply(db, s, actor, submission, _text(form.body))
        case "approve_reply":
            replies.approve_reply(db, s, actor, submission, expected_version=v)
        case "record_delivery":
            replies.record_delivery(db, s, actor, submission, _reply_of(submission, form), _text(form.note))
        case _:
            abort(404)


@bp.post("/submissions/<reference>/<action>")
@require("submission.view")
@keeps_input
def act(reference: str, action: str):
    """Each action is a permission of the table: who may not take it is refused before the record is looked up."""
    if action not in DONE:
        abort(404)
    if not may_here(action):
        abort(403)
    submission = load_visible(reference)
    form = ActionForm()
    # a refused request (web.refusal: a bad CSRF token, another site, the database unable to save) runs
    # this view again only to show the form as it was filled in: the form fails, and nothing is done
    if not form.validate() or problem() is not None:
        flash(_refusal_message(form), "error")
        return render_detail(submission, 400, forms={action: form})
    db = get_session()
    try:
        _perform(action, db, actor(), submission, form)
    except (StaleSubmission, StaleDataError):
        db.rollback()
        flash("此件在您打开页面后已被他人处理，您的操作未执行。请查看最新情况后再决定。", "error")
        return render_detail(load_visible(reference), 409, forms={action: form})
    except TransitionRefused:
        abort(403)
    except (ActionError, clocks.ClockError) as exc:
        db.rollback()
        flash(str(exc), "error")
        return render_detail(load_visible(reference), 400, forms={action: form})
    flash(DONE[action], "success")
    return redirect(url_for("staff.detail", reference=reference), code=303)

