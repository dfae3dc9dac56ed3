"""The citizen's comment form and the query form. Field names are a published contract."""
from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from feedback_app.intake.models import KIND_LABELS, RATING_LABELS, REPLY_BY_LABELS, Kind, ReplyBy


def clean_text(value: str | None) -> str:
    return unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").strip()


def normalize_phone(value: str) -> str | None:
    """E.164 for a valid Chinese number (mobile, landline with area code, +86/0086, full width)."""
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


class ChoiceField(StringField):
    """One value out of ``choices`` (value, label) pairs, rendered by the form macros."""

    def __init__(self, label, choices=(), missing="请选择一项", coerce=str, radio=True, **kwargs):
        super().__init__(label, **kwargs)
        self.choices = list(choices)
        self.missing = missing
        self.coerce = coerce
        self.radio = radio

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        try:
            self.data = self.coerce(raw) if raw else None
        except ValueError:
            self.data = None

    def pre_validate(self, form):
        if self.data not in {value for value, _label in self.choices}:
            self.errors.append(self.missing)


class FeedbackForm(FlaskForm):
    item = ChoiceField("涉及的整改事项", coerce=int, radio=False, missing="请选择通报中的整改事项")
    kind = ChoiceField(
        "反映类型",
        choices=[(k.value, KIND_LABELS[k]) for k in Kind],
        default=Kind.suggestion.value,
        missing="请选择反映类型",
    )
    body = TextAreaField("意见内容", filters=[clean_text])
    name = StringField("姓名", filters=[clean_text], validators=[Optional(), Length(max=50, message="姓名不超过50个字")])
    phone = StringField("联系电话", filters=[clean_text])
    email = StringField("电子邮箱", filters=[clean_text])
    address = StringField("通信地址", filters=[clean_text], validators=[Optional(), Length(max=200, message="地址不超过200个字")])
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
    form_token = HiddenField()
    website = StringField("网站")  # honeypot: hidden from people, filled by robots

    def __init__(self, *args, item_choices, body_range, **kwargs):
        super().__init__(*args, **kwargs)
        self.item.choices = item_choices
        self.body_range = body_range
        self.normalized_phone: str | None = None
        self.normalized_email: str | None = None

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        low, high = self.body_range
        length = len(self.body.data or "")
        if length == 0:
            self.body.errors.append("请填写意见内容")
        elif length < low:
            self.body.errors.append(f"意见内容至少 {low} 个字，目前 {length} 个字")
        elif length > high:
            self.body.errors.append(f"意见内容最多 {high} 个字，目前 {length} 个字，请精简")
        if not self.privacy_consent.data:
            self.privacy_consent.errors.append("请阅读并勾选同意个人信息处理说明，否则无法提交")
        if self.anonymous.data:
            if self.reply_by.data != ReplyBy.online.value:
                self.reply_by.errors.append("匿名反映只能通过本网站凭查询码查看答复，请选择“网上查询答复”或取消匿名")
        else:
            self._validate_contacts()
        return ok and not any(f.errors for f in self)

    def _validate_contacts(self) -> None:
        if self.phone.data:
            self.normalized_phone = normalize_phone(self.phone.data)
            if self.normalized_phone is None:
                self.phone.errors.append("电话号码无效：请填写手机号，或带区号的固定电话，如 020-82378781")
        if self.email.data:
            self.normalized_email = normalize_email(self.email.data)
            if self.normalized_email is None:
                self.email.errors.append("电子邮箱格式不正确，例如 zhangsan@example.com")
        reply_by = self.reply_by.data
        if reply_by == ReplyBy.phone.value and not self.phone.data:
            self.phone.errors.append("选择电话答复时，请填写联系电话")
        if reply_by == ReplyBy.email.value and not self.email.data:
            self.email.errors.append("选择电子邮件答复时，请填写电子邮箱")
        if reply_by == ReplyBy.letter.value:
            if not self.name.data:
                self.name.errors.append("选择书面信函答复时，请填写收件人姓名")
            if not self.address.data:
                self.address.errors.append("选择书面信函答复时，请填写通信地址")


class TrackForm(FlaskForm):
    reference = StringField("受理编号", filters=[clean_text])
    query_code = StringField("查询码", filters=[clean_text])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not self.reference.data:
            self.reference.errors.append("请填写受理编号")
        if not self.query_code.data:
            self.query_code.errors.append("请填写查询码")
        return ok and not self.reference.errors and not self.query_code.errors


class FollowUpForm(FlaskForm):
    text = TextAreaField("追评内容", filters=[clean_text])


class RatingForm(FlaskForm):
    rating = ChoiceField(
        "您对办理结果的评价",
        choices=[(r.value, label) for r, label in RATING_LABELS.items()],
        missing="请选择一项评价",
    )
