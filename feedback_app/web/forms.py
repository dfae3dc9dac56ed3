"""The base of every form of the site, and the fields several forms share."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import Length

from feedback_app.core.models import Kind, ReplyBy
from feedback_app.core.text import clean_text, normalize_email, normalize_phone, text_problem
from feedback_app.core.words import KIND_LABELS, REPLY_BY_LABELS
from feedback_app.intake import rules
from feedback_app.web.refusal import problem


class ChoiceField(StringField):
    """One value out of ``choices`` (value, label) pairs, rendered by the form macros."""

    data: Any  # as every WTForms field's: what ``coerce`` made of the input (one of the choices once valid), or None

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


class Form(FlaskForm):
    """Every form of the site. Besides its fields' rules:

    - every text it was sent meets the one rule for text (``core.text.text_problem``): no control
      characters, nothing undecodable, and no direction controls in a one-line field (a name, a number,
      an address); free text (a text area) keeps them, and staff see them written out;
    - it fails whenever CSRFProtect refused this request (``web.csrf``): a view that runs for a refused
      request to show its form again as it was filled in can then never act on it, whatever the reason.
    """

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        for field in self:
            if isinstance(field.data, str) and not isinstance(field, PasswordField):
                trouble = text_problem(field.data, plain=not isinstance(field, TextAreaField))
                if trouble is not None:
                    field.errors = [*field.errors, trouble]
                    valid = False
        return valid and problem() is None


class CommentForm(Form):
    """What every form that takes a comment asks, the citizen's and the clerk's, with the rules of
    ``intake.rules``: the item, the kind, the text, and whether and how to answer.

    A subclass's ``validate`` calls ``check_comment`` once the fields' own rules have run; after it the
    contact details are in their stored form (``phone_e164``, ``email_normalized``).
    """

    item = ChoiceField("涉及的整改事项", coerce=int, radio=False, missing="请选择通报中的整改事项")
    kind = ChoiceField("反映类型", choices=[(k.value, KIND_LABELS[k]) for k in Kind],
                       default=Kind.suggestion.value, missing="请选择反映类型")
    body = TextAreaField("意见内容", filters=[clean_text])
    name = StringField("姓名", filters=[clean_text], validators=[
        Length(max=rules.NAME_MAX_CHARS, message=f"姓名不超过{rules.NAME_MAX_CHARS}个字")])
    phone = StringField("联系电话", filters=[clean_text])
    email = StringField("电子邮箱", filters=[clean_text])
    address = StringField("通信地址", filters=[clean_text], validators=[
        Length(max=rules.ADDRESS_MAX_CHARS, message=f"地址不超过{rules.ADDRESS_MAX_CHARS}个字")])
    reply_by = ChoiceField("希望的答复方式", choices=[(r.value, REPLY_BY_LABELS[r]) for r in ReplyBy],
                           default=ReplyBy.online.value, missing="请选择答复方式")
    anonymous = BooleanField("匿名反映（不留姓名和联系方式）")

    body_label = "意见内容"  # what the page calls the text, in its messages

    def __init__(self, *args: Any, item_choices: list[tuple[int, str]], body_range: tuple[int, int],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item.choices = item_choices
        self.body_range = body_range
        self.phone_e164: str | None = None
        self.email_normalized: str | None = None

    def check_comment(self, *, name: str | None = None, phone: str | None = None,
                      address: str | None = None) -> None:
        """The text's length, the contact details, and what the chosen answer needs of them;
        ``name``/``phone``/``address``: what the channel has that stands in for the field (a caller's
        number for the phone to call back). Each problem goes to its field, unless it has one already."""
        problem = rules.body_problem(self.body.data, *self.body_range, label=self.body_label)
        if problem:
            self.body.errors.append(problem)
        anonymous = bool(self.anonymous.data)
        if not anonymous and self.phone.data and not self.phone.errors:
            self.phone_e164 = normalize_phone(self.phone.data)
            if self.phone_e164 is None:
                self.phone.errors.append(rules.phone_invalid())
        if not anonymous and self.email.data and not self.email.errors:
            self.email_normalized = normalize_email(self.email.data)
            if self.email_normalized is None:
                self.email.errors.append(rules.EMAIL_INVALID)
        if self.reply_by.errors:
            return
        problems = rules.reply_problems(
            ReplyBy(self.reply_by.data), anonymous,
            name=self.name.data or name, phone=self.phone.data or phone,
            email=self.email.data, address=self.address.data or address,
        )
        for key, message in problems.items():
            field = self[key]
            if not field.errors:
                field.errors.append(message)

    def settled(self, valid: bool) -> bool:
        """Whether the form is valid: its fields' rules held (``valid``) and no later check failed."""
        return valid and not any(field.errors for field in self)
