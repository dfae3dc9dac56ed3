"""The citizen's comment form and the query form. Field names are a published contract."""
from __future__ import annotations

from typing import Any

from werkzeug.datastructures import FileStorage
from wtforms import (
    BooleanField,
    Field,
    MultipleFileField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, ValidationError

from feedback_app.core.config import Settings
from feedback_app.core.models import Kind, ReplyBy
from feedback_app.core.text import clean_text, normalize_email, normalize_phone
from feedback_app.core.words import KIND_LABELS, RATING_LABELS, REPLY_BY_LABELS
from feedback_app.intake.attachments import IncomingFile
from feedback_app.intake.attachments import problems as attachment_problems
from feedback_app.web.forms import ChoiceField, Form

REPLY_BY_VALUES = frozenset(r.value for r in ReplyBy)


NAME_MAX_CHARS = 50
ADDRESS_MAX_CHARS = 200


class FeedbackForm(Form):
    """The comment form: its fields, and every rule a comment must meet, as the fields' validators.

    ``item_choices`` are the bulletin's items, ``limits`` the settings (body length, attachments). After
    ``validate()`` the contact details are in their stored form (``phone_e164``, ``email_normalized``) and
    the attachments read (``incoming``).
    """

    item = ChoiceField("涉及的整改事项", coerce=int, radio=False, missing="请选择通报中的整改事项")
    kind = ChoiceField(
        "反映类型",
        choices=[(k.value, KIND_LABELS[k]) for k in Kind],
        default=Kind.suggestion.value,
        missing="请选择反映类型",
    )
    body = TextAreaField("意见内容", filters=[clean_text])
    name = StringField("姓名", filters=[clean_text],
                       validators=[Length(max=NAME_MAX_CHARS, message=f"姓名不超过{NAME_MAX_CHARS}个字")])
    phone = StringField("联系电话", filters=[clean_text])
    email = StringField("电子邮箱", filters=[clean_text])
    address = StringField("通信地址", filters=[clean_text],
                          validators=[Length(max=ADDRESS_MAX_CHARS, message=f"地址不超过{ADDRESS_MAX_CHARS}个字")])
    reply_by = ChoiceField(
        "希望的答复方式",
        choices=[(r.value, REPLY_BY_LABELS[r]) for r in ReplyBy],
        default=ReplyBy.online.value,
        missing="请选择答复方式",
    )
    anonymous = BooleanField("匿名反映（不留姓名和联系方式）")
    privacy_consent = BooleanField("我已阅读并同意上述个人信息处理说明")
    publish_consent = BooleanField("同意在答复时公开我的意见内容（不含任何个人信息）")
    attachments = MultipleFileField("附件")
    # Beside the fields, the page sends ``form_token`` (signed: one comment per form, and not too fast) and
    # ``website`` (a trap: hidden from people, filled by robots); the view reads them (``citizen._submit``).

    def __init__(self, *args: Any, item_choices: list[tuple[int, str]], limits: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item.choices = item_choices
        self.limits = limits
        self.phone_e164: str | None = None
        self.email_normalized: str | None = None
        self.incoming: list[IncomingFile] = []

    def _contacts(self) -> bool:
        """Contact details count (and are checked) unless the comment is anonymous."""
        return not self.anonymous.data

    def validate_body(self, field: Field) -> None:
        low, high = self.limits.body_min_chars, self.limits.body_max_chars
        length = len(field.data or "")
        if length == 0:
            raise ValidationError("请填写意见内容")
        if length < low:
            raise ValidationError(f"意见内容至少 {low} 个字，目前 {length} 个字")
        if length > high:
            raise ValidationError(f"意见内容最多 {high} 个字，目前 {length} 个字，请精简")

    def validate_reply_by(self, field: Field) -> None:
        if self.anonymous.data and field.data in REPLY_BY_VALUES and field.data != ReplyBy.online.value:
            raise ValidationError("匿名反映只能通过本网站凭查询码查看答复，请选择“网上查询答复”或取消匿名")

    def validate_phone(self, field: Field) -> None:
        if not self._contacts():
            return
        if field.data:
            self.phone_e164 = normalize_phone(field.data)
            if self.phone_e164 is None:
                raise ValidationError("电话号码无效：请填写手机号，或带区号的固定电话，如 020-82378781")
        elif self.reply_by.data == ReplyBy.phone.value:
            raise ValidationError("选择电话答复时，请填写联系电话")

    def validate_email(self, field: Field) -> None:
        if not self._contacts():
            return
        if field.data:
            self.email_normalized = normalize_email(field.data)
            if self.email_normalized is None:
                raise ValidationError("电子邮箱格式不正确，例如 zhangsan@example.com")
        elif self.reply_by.data == ReplyBy.email.value:
            raise ValidationError("选择电子邮件答复时，请填写电子邮箱")

    def validate_name(self, field: Field) -> None:
        if self._contacts() and self.reply_by.data == ReplyBy.letter.value and not field.data:
            raise ValidationError("选择书面信函答复时，请填写收件人姓名")

    def validate_address(self, field: Field) -> None:
        if self._contacts() and self.reply_by.data == ReplyBy.letter.value and not field.data:
            raise ValidationError("选择书面信函答复时，请填写通信地址")

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
