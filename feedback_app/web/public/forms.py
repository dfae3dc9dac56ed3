"""The citizen's comment form and the query form. Field names are a published contract."""
from __future__ import annotations

import time
from typing import Any

from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, Field, HiddenField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from feedback_app.core.config import Settings
from feedback_app.core.text import clean_text
from feedback_app.core.words import RATING_LABELS
from feedback_app.intake.attachments import IncomingFile
from feedback_app.intake.attachments import problems as attachment_problems
from feedback_app.web.form_tokens import FormTokens
from feedback_app.web.forms import ChoiceField, CommentForm, Form
from feedback_app.web.refusal import problem

FORM_TOKENS = FormTokens("feedback-form", max_age=24 * 3600)


class FeedbackForm(CommentForm):
    """The citizen's comment form: the comment's fields (``CommentForm``), the consents and the
    attachments. ``limits`` are the settings (body length, attachments). After ``validate()`` the
    contact details are in their stored form and the attachments read (``incoming``).
    """

    privacy_consent = BooleanField("我已阅读并同意上述个人信息处理说明")
    publish_consent = BooleanField("同意在答复时公开我的意见内容（不含任何个人信息）")
    attachments = MultipleFileField("附件")
    # rendered by the page itself (hidden), never listed with the fields' errors
    form_token = HiddenField()  # signed: one comment per form, and not sent too fast (``FORM_TOKENS``)
    website = StringField()  # a trap: hidden from people, filled in by robots

    def __init__(self, *args: Any, item_choices: list[tuple[int, str]], limits: Settings, **kwargs: Any) -> None:
        super().__init__(*args, item_choices=item_choices,
                         body_range=(limits.body_min_chars, limits.body_max_chars), **kwargs)
        self.limits = limits
        self.incoming: list[IncomingFile] = []
        self.nonce: str | None = None  # the form token's, once it is read

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        self.check_comment()
        if self.attachments.errors and self.incoming:
            self.attachments.errors.append("为安全起见，请重新选择附件")
        return self.settled(valid)

    def notice(self) -> str:
        """What the top of the page says when the form comes back."""
        if self.website.errors:
            return self.website.errors[0]
        trouble = problem() or next(iter(self.form_token.errors), None)
        if trouble is None:
            return "提交未成功，请按提示修改后再提交。"
        if trouble.startswith("页面已过期"):
            return f"{trouble}您填写的内容已保留，请检查后再次提交。"
        return trouble

    def validate_form_token(self, field: Field) -> None:
        token = FORM_TOKENS.read(field.data)
        if token is None:
            field.data = FORM_TOKENS.new()  # the form comes back with one that works
            raise ValidationError("页面已过期。")
        self.nonce, given_out = token
        if time.time() - given_out.timestamp() < self.limits.min_fill_seconds:
            raise ValidationError("提交过快，请确认填写的内容后再次提交。")

    def validate_website(self, field: Field) -> None:
        if field.data:
            raise ValidationError("提交未通过校验，请刷新页面后重试。")

    def validate_privacy_consent(self, field: Field) -> None:
        if not field.data:
            raise ValidationError("请阅读并勾选同意个人信息处理说明，否则无法提交")

    def validate_attachments(self, field: Field) -> None:
        self.incoming = [IncomingFile(f.filename or "", f.read()) for f in field.data or ()
                         if isinstance(f, FileStorage) and f.filename]
        problems = attachment_problems(self.incoming, self.limits)
        if problems:
            field.errors.extend(problems[:-1])
            raise ValidationError(problems[-1])


class TrackForm(Form):
    reference = StringField("受理编号", filters=[clean_text], validators=[DataRequired("请填写受理编号")])
    query_code = StringField("查询码", filters=[clean_text], validators=[DataRequired("请填写查询码")])


class FollowUpForm(Form):
    text = TextAreaField("追评内容", filters=[clean_text])

    def __init__(self, *args: Any, limits: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    def validate_text(self, field: Field) -> None:
        low, high = self.limits.body_min_chars, self.limits.body_max_chars
        length = len(field.data or "")
        if not low <= length <= high:
            raise ValidationError(f"追评内容应为 {low} 至 {high} 个字，目前 {length} 个字")


class RatingForm(Form):
    rating = ChoiceField(
        "您对办理结果的评价",
        choices=[(r.value, label) for r, label in RATING_LABELS.items()],
        missing="请选择一项评价",
    )
