"""The citizen's comment form and the query form. Field names are a published contract."""
from __future__ import annotations

from dataclasses import dataclass

from flask_wtf import FlaskForm
from feedback_app.core.text import clean_text, normalize_email, normalize_phone
from feedback_app.web.forms import ChoiceField
from wtforms import BooleanField, HiddenField, MultipleFileField, StringField, TextAreaField

from feedback_app.core.models import Kind, ReplyBy
from feedback_app.core.words import KIND_LABELS, RATING_LABELS, REPLY_BY_LABELS


@dataclass(frozen=True)
class FeedbackValues:
    """What a citizen sent in the comment form, read and cleaned as the form's fields read it."""

    item: int | None
    kind: str | None
    body: str
    name: str
    phone: str
    email: str
    address: str
    reply_by: str | None
    anonymous: bool
    privacy_consent: bool
    publish_consent: bool
    form_token: str
    website: str


@dataclass
class FeedbackCheck:
    """The errors by field name, in the order shown, and the contact details in their stored form."""

    errors: dict[str, list[str]]
    phone: str | None = None
    email: str | None = None


def _choice(raw: str | None, coerce=str):
    raw = (raw or "").strip()
    try:
        return coerce(raw) if raw else None
    except ValueError:
        return None


def read_feedback(formdata) -> FeedbackValues:
    """The values of ``formdata`` (a request's form), as the ``FeedbackForm`` fields would hold them."""
    get = formdata.get

    def checked(name: str) -> bool:  # WTForms' BooleanField: present and not "false" or empty
        return get(name) not in (None, "", "false")

    return FeedbackValues(
        item=_choice(get("item"), int),
        kind=_choice(get("kind")),
        body=clean_text(get("body")),
        name=clean_text(get("name")),
        phone=clean_text(get("phone")),
        email=clean_text(get("email")),
        address=clean_text(get("address")),
        reply_by=_choice(get("reply_by")),
        anonymous=checked("anonymous"),
        privacy_consent=checked("privacy_consent"),
        publish_consent=checked("publish_consent"),
        form_token=get("form_token") or "",
        website=get("website") or "",
    )


KIND_VALUES = frozenset(k.value for k in Kind)
REPLY_BY_VALUES = frozenset(r.value for r in ReplyBy)


def check_feedback(v: FeedbackValues, item_numbers: frozenset[int], body_range: tuple[int, int]) -> FeedbackCheck:
    """Every rule of the comment form: the one place they are written."""
    errors: dict[str, list[str]] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if v.item not in item_numbers:
        error("item", "请选择通报中的整改事项")
    if v.kind not in KIND_VALUES:
        error("kind", "请选择反映类型")
    low, high = body_range
    length = len(v.body)
    if length == 0:
        error("body", "请填写意见内容")
    elif length < low:
        error("body", f"意见内容至少 {low} 个字，目前 {length} 个字")
    elif length > high:
        error("body", f"意见内容最多 {high} 个字，目前 {length} 个字，请精简")
    if len(v.name) > NAME_MAX_CHARS:
        error("name", f"姓名不超过{NAME_MAX_CHARS}个字")
    if len(v.address) > ADDRESS_MAX_CHARS:
        error("address", f"地址不超过{ADDRESS_MAX_CHARS}个字")
    if v.reply_by not in REPLY_BY_VALUES:
        error("reply_by", "请选择答复方式")
    if not v.privacy_consent:
        error("privacy_consent", "请阅读并勾选同意个人信息处理说明，否则无法提交")
    check = FeedbackCheck(errors)
    if v.anonymous:
        if v.reply_by != ReplyBy.online.value:
            error("reply_by", "匿名反映只能通过本网站凭查询码查看答复，请选择“网上查询答复”或取消匿名")
    else:
        _check_contacts(v, check, error)
    return check


def _check_contacts(v: FeedbackValues, check: FeedbackCheck, error) -> None:
    if v.phone:
        check.phone = normalize_phone(v.phone)
        if check.phone is None:
            error("phone", "电话号码无效：请填写手机号，或带区号的固定电话，如 020-82378781")
    if v.email:
        check.email = normalize_email(v.email)
        if check.email is None:
            error("email", "电子邮箱格式不正确，例如 zhangsan@example.com")
    if v.reply_by == ReplyBy.phone.value and not v.phone:
        error("phone", "选择电话答复时，请填写联系电话")
    if v.reply_by == ReplyBy.email.value and not v.email:
        error("email", "选择电子邮件答复时，请填写电子邮箱")
    if v.reply_by == ReplyBy.letter.value:
        if not v.name:
            error("name", "选择书面信函答复时，请填写收件人姓名")
        if not v.address:
            error("address", "选择书面信函答复时，请填写通信地址")


NAME_MAX_CHARS = 50
ADDRESS_MAX_CHARS = 200


class FeedbackForm(FlaskForm):
    """The comment form's fields, for drawing it; the rules are ``check_feedback``'s."""

    item = ChoiceField("涉及的整改事项", coerce=int, radio=False, missing="请选择通报中的整改事项")
    kind = ChoiceField(
        "反映类型",
        choices=[(k.value, KIND_LABELS[k]) for k in Kind],
        default=Kind.suggestion.value,
        missing="请选择反映类型",
    )
    body = TextAreaField("意见内容", filters=[clean_text])
    name = StringField("姓名", filters=[clean_text])
    phone = StringField("联系电话", filters=[clean_text])
    email = StringField("电子邮箱", filters=[clean_text])
    address = StringField("通信地址", filters=[clean_text])
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

    def __init__(self, *args, item_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.item.choices = item_choices

    def show_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            self[name].errors = list(messages)


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
