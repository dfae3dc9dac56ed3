"""The citizen's comment form and the query form. Field names are a published contract."""
from __future__ import annotations

from typing import Any

from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, Field, MultipleFileField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from feedback_app.core.config import Settings
from feedback_app.core.text import clean_text
from feedback_app.core.words import RATING_LABELS
from feedback_app.intake.attachments import IncomingFile
from feedback_app.intake.attachments import problems as attachment_problems
from feedback_app.web.forms import ChoiceField, CommentForm, Form


class FeedbackForm(CommentForm):
    """The citizen's comment form: the comment's fields (``CommentForm``), the consents and the
    attachments. ``limits`` are the settings (body length, attachments). After ``validate()`` the
    contact details are in their stored form and the attachments read (``incoming``).
    """

    privacy_consent = BooleanField("我已阅读并同意上述个人信息处理说明")
    publish_consent = BooleanField("同意在答复时公开我的意见内容（不含任何个人信息）")
    attachments = MultipleFileField("附件")
    # Beside the fields, the page sends ``form_token`` (signed: one comment per form, and not too fast) and
    # ``website`` (a trap: hidden from people, filled by robots); the view reads them (``citizen._submit``).

    def __init__(self, *args: Any, item_choices: list[tuple[int, str]], limits: Settings, **kwargs: Any) -> None:
        super().__init__(*args, item_choices=item_choices,
                         body_range=(limits.body_min_chars, limits.body_max_chars), **kwargs)
        self.limits = limits
        self.incoming: list[IncomingFile] = []

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        self.check_comment()
        return self.settled(valid)

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
