"""The clerk's forms for a phone call, a letter and a visit.

Every field is text as typed, so that a form shown again with errors keeps exactly what was typed;
dates, times and numbers are read in ``validate`` and their values kept on the form (``called_at``,
``arrived_on``…). Each problem is attached to its field, in Chinese.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    MultipleFileField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional, ValidationError

from feedback_app.core.database import utcnow
from feedback_app.core.models import Kind, ReplyBy
from feedback_app.core.text import clean_text, normalize_phone
from feedback_app.core.words import REPLY_BY_LABELS
from feedback_app.intake import channels, rules
from feedback_app.intake.channels import MAX_REPRESENTATIVES
from feedback_app.web.form_tokens import FormTokens
from feedback_app.web.forms import ChoiceField, CommentForm
from feedback_app.web.refusal import problem
from feedback_app.web.staff.intake_fields import NO, YES, dates_since, parse_clock, parse_count, parse_day

FORM_TOKENS = FormTokens("staff-intake", max_age=12 * 3600)

class IntakeForm(CommentForm):
    """What every channel asks: the comment's fields (``CommentForm``), and what the clerk told the person."""

    body = TextAreaField("反映内容", filters=[clean_text])
    reply_by = ChoiceField("希望的答复方式", choices=[(r.value, REPLY_BY_LABELS[r]) for r in ReplyBy],
                           missing="请选择答复方式")  # asked of the person: no answer is assumed
    anonymous = BooleanField("匿名反映（不保存姓名、电话和地址）")
    publish_consent = BooleanField("反映人同意在答复时公开意见内容（不含任何个人信息）")
    privacy_notice = BooleanField("已向反映人说明个人信息的用途、谁能看到和保存期限")
    form_token = HiddenField()  # signed: one record per form (``FORM_TOKENS``)

    body_label = "反映内容"
    # The order of the fields on the page, which the error summary follows.
    page_order: tuple[str, ...] = ()
    MATTER = ("item", "kind", "body")
    REPLY = ("reply_by", "anonymous", "name", "phone", "email", "address", "privacy_notice", "publish_consent")

    def __init__(self, *args, tz: ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        order = {name: i for i, name in enumerate(self.page_order)}
        fields = sorted(self._fields.items(), key=lambda kv: order.get(kv[0], len(order)))
        self._fields: dict[str, Any] = dict(fields)
        self.tz = tz
        self.nonce: str | None = None  # the form token's, once it is read

    def validate_form_token(self, field: Field) -> None:
        """One record per form: a stale or forged token is refused, and the form comes back with a fresh one."""
        token = FORM_TOKENS.read(field.data)
        if token is None:
            field.data = FORM_TOKENS.new()
            raise ValidationError("页面已过期。")
        self.nonce = token[0]

    def notice(self) -> str:
        """What the top of the page says when the form comes back."""
        trouble = problem() or next(iter(self.form_token.errors), None)
        if trouble is None:
            return "登记未成功，请按提示修改后再提交。"
        return f"{trouble}您填写的内容已保留，请检查后再次提交。"

    @property
    def today(self) -> date:
        return utcnow().astimezone(self.tz).date()

    # pieces ----------------------------------------------------------------------------------
    def _check_day(self, field, *, required: bool, what: str) -> date | None:
        if not field.data:
            if required:
                field.errors.append(f"请填写{what}")
            return None
        day = parse_day(field.data)
        if day is None:
            field.errors.append(f"{what}格式不正确，例如 {self.today.isoformat()}")
        elif day > self.today:
            field.errors.append(f"{what}不能晚于今天")
        elif day < dates_since(self.today):
            field.errors.append(f"{what}早于一年前，请核对")
        else:
            return day
        return None

    def _check_moment(self, day_field, clock_field, what: str) -> datetime | None:
        day = self._check_day(day_field, required=True, what=f"{what}日期")
        if not clock_field.data:
            clock_field.errors.append(f"请填写{what}时刻")
            return None
        clock = parse_clock(clock_field.data)
        if clock is None:
            clock_field.errors.append(f"{what}时刻格式不正确，例如 09:30")
            return None
        if day is None:
            return None
        moment = datetime.combine(day, clock, tzinfo=self.tz)
        if moment > utcnow() + timedelta(minutes=5):
            clock_field.errors.append(f"{what}不能晚于现在")
            return None
        return moment

    def contact(self) -> channels.Contact:
        return channels.Contact(
            reply_by=ReplyBy(self.reply_by.data) if self.reply_by.data else ReplyBy.online,
            anonymous=bool(self.anonymous.data),
            name=self.name.data or None,
            phone=self.phone_e164,
            email=self.email_normalized,
            address=self.address.data or None,
            publish_consent=bool(self.publish_consent.data),
            privacy_notice=bool(self.privacy_notice.data),
        )

    def matter(self, bulletin_id: int) -> channels.Matter:
        return channels.Matter(bulletin_id, self.item.data, Kind(self.kind.data), self.body.data)

class PhoneForm(IntakeForm):
    caller_number = StringField("来电号码", filters=[clean_text])
    caller_withheld = BooleanField("来电号码未显示，或来电人不愿提供")
    call_date = StringField("来电日期", filters=[clean_text])
    call_time = StringField("来电时刻", filters=[clean_text])
    duration = StringField("通话时长（分钟）", filters=[clean_text])
    line = StringField("来电打入的号码", filters=[clean_text],
                       validators=[Optional(), Length(max=40, message="号码不超过40个字符")])
    taken_by = ChoiceField("接听人", coerce=int, radio=False, missing="请选择接听人")

    body_label = "来电内容"
    page_order = ("caller_number", "caller_withheld", "call_date", "call_time", "duration", "line", "taken_by",
                  *IntakeForm.MATTER, *IntakeForm.REPLY)

    def __init__(self, *args, staff_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.taken_by.choices = staff_choices
        self.body.label.text = "来电内容（如实记录来电人所说）"
        self.name.label.text = "来电人姓名"
        self.phone.label.text = "回电号码"
        self.called_at: datetime | None = None
        self.duration_minutes: int | None = None
        self.caller: str | None = None

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.called_at = self._check_moment(self.call_date, self.call_time, "来电")
        if not self.duration.data:
            self.duration.errors.append("请填写通话时长")
        else:
            self.duration_minutes = parse_count(self.duration.data)
            if self.duration_minutes is None or self.duration_minutes > 24 * 60:
                self.duration.errors.append("通话时长请填写 0 至 1440 之间的整数分钟数")
        if not self.line.data:
            self.line.errors.append("请填写来电打入的号码")
        if self.caller_number.data:
            if self.caller_withheld.data:
                self.caller_number.errors.append("已勾选“来电号码未显示”，请清空来电号码，或取消勾选")
            else:
                self.caller = normalize_phone(self.caller_number.data)
                if self.caller is None:
                    self.caller_number.errors.append(rules.phone_invalid("来电号码"))
        elif not self.caller_withheld.data:
            self.caller_number.errors.append("请填写来电号码；号码未显示的，请勾选下面的“来电号码未显示”")
        self.check_comment(phone=self.caller)
        return self.settled(ok)

    def call(self, bulletin_id: int, taken_by: channels.StaffRef) -> channels.PhoneCall:
        assert self.called_at is not None and self.duration_minutes is not None  # validated
        return channels.PhoneCall(
            matter=self.matter(bulletin_id), called_at=self.called_at, duration_minutes=self.duration_minutes,
            line=self.line.data, taken_by=taken_by, caller_number=self.caller, contact=self.contact(),
        )


class LetterForm(IntakeForm):
    postmark_date = StringField("邮戳日期", filters=[clean_text])
    arrival_date = StringField("到达日期", filters=[clean_text])
    envelope_note = ChoiceField("信封是否注明要求的字样", choices=[(YES, "是"), (NO, "否")],
                                missing="请选择信封是否注明")
    scans = MultipleFileField("来信扫描件")

    body_label = "来信内容"
    page_order = ("name", "address", "postmark_date", "arrival_date", "envelope_note", "scans",
                  *IntakeForm.MATTER, *IntakeForm.REPLY)

    def __init__(self, *args, envelope_note_text: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        if envelope_note_text:
            self.envelope_note.label.text = f"信封是否注明“{envelope_note_text}”"
        self.body.label.text = "来信内容（转录）"
        self.name.label.text = "寄信人姓名"
        self.address.label.text = "回信地址"
        self.anonymous.label.text = "匿名来信（不保存寄信人姓名、地址和电话）"
        self.postmark_on: date | None = None
        self.arrived_on: date | None = None
        self.chosen_scans = 0
        self.scan_problems: list[str] = []

    def take_scans(self, scans, scan_problems: list[str]) -> None:
        """The files chosen, and what is wrong with them (``attachments.problems``)."""
        self.chosen_scans = len(scans)
        self.scan_problems = list(scan_problems)

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.postmark_on = self._check_day(self.postmark_date, required=False, what="邮戳日期")
        self.arrived_on = self._check_day(self.arrival_date, required=True, what="到达日期")
        if self.postmark_on and self.arrived_on and self.postmark_on > self.arrived_on:
            self.postmark_date.errors.append("邮戳日期不能晚于到达日期")
        self.check_comment()
        self.scans.errors = list(self.scans.errors) + self.scan_problems
        if self.chosen_scans and any(f.errors for f in self):
            self.scans.errors.append("为安全起见，提交未成功时不保留已选的文件，请重新选择扫描件")
        return self.settled(ok)

    def letter(self, bulletin_id: int, envelope_note_text: str | None,
               scans: tuple) -> channels.Letter:
        assert self.arrived_on is not None  # validated: it is required
        contact = self.contact()
        return channels.Letter(
            matter=self.matter(bulletin_id), arrived_on=self.arrived_on,
            envelope_note_present=self.envelope_note.data == YES, envelope_note=envelope_note_text,
            sender_name=contact.name, return_address=contact.address, postmark_on=self.postmark_on,
            scans=scans, contact=contact,
        )


class VisitForm(IntakeForm):
    representatives = StringField("来访代表")  # carries the errors about the rows as a whole
    group_size = StringField("来访人数", filters=[clean_text])
    visit_date = StringField("来访日期", filters=[clean_text])
    visit_time = StringField("来访时刻", filters=[clean_text])
    place = StringField("接待地点", filters=[clean_text],
                        validators=[Optional(), Length(max=100, message="地点不超过100个字")])
    received_by = ChoiceField("接待人", coerce=int, radio=False, missing="请选择接待人")

    body_label = "反映内容"
    page_order = ("representatives",
                  *(f"visitor_{part}_{i}" for i in range(1, MAX_REPRESENTATIVES + 1) for part in ("name", "phone")),
                  "group_size", "visit_date", "visit_time", "place", "received_by",
                  *IntakeForm.MATTER, *IntakeForm.REPLY)

    def __init__(self, *args, staff_choices, extra_rows: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.received_by.choices = staff_choices
        self.body.label.text = "反映内容（来访人所说）"
        self.name.label.text = "收信人姓名"
        self.phone.label.text = "回电号码"
        self.extra_rows = extra_rows  # rows beyond the fifth that a request carried
        self.visited_at: datetime | None = None
        self.size: int | None = None
        self.people: list[tuple[str | None, str | None]] = []

    def rows(self):
        """(name field, phone field) for each of the representative rows."""
        return [(self[f"visitor_name_{i}"], self[f"visitor_phone_{i}"]) for i in range(1, MAX_REPRESENTATIVES + 1)]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        anonymous = bool(self.anonymous.data)
        filled = 0
        for name, phone in self.rows():
            if not name.data and not phone.data:
                continue
            filled += 1
            number = None
            if not name.data and not anonymous:
                name.errors.append("请填写这位代表的姓名")
            if phone.data:
                number = normalize_phone(phone.data)
                if number is None:
                    phone.errors.append(rules.phone_invalid())
            self.people.append((name.data or None, number))
        count = filled + self.extra_rows
        if count > MAX_REPRESENTATIVES or not anonymous:
            problem = channels.representatives_problem(count)
            if problem:
                self.representatives.errors.append(problem)
        if self.group_size.data:
            self.size = parse_count(self.group_size.data)
            if self.size is None or self.size < 1:
                self.group_size.errors.append("来访人数请填写正整数")
            elif self.size < filled:
                self.group_size.errors.append("来访人数不能少于填写的代表人数")
        self.visited_at = self._check_moment(self.visit_date, self.visit_time, "来访")
        if not self.place.data:
            self.place.errors.append("请填写接待地点")
        first_name = next((n for n, _p in self.people if n), None)
        first_phone = next((p for _n, p in self.people if p), None)
        self.check_comment(name=first_name, phone=first_phone)
        return self.settled(ok)

    def visit(self, bulletin_id: int, received_by: channels.StaffRef) -> channels.Visit:
        assert self.visited_at is not None  # validated
        return channels.Visit(
            matter=self.matter(bulletin_id), visited_at=self.visited_at, place=self.place.data,
            received_by=received_by,
            visitors=tuple(channels.Visitor(name or "", phone) for name, phone in self.people),
            group_size=self.size, contact=self.contact(),
        )


for _i in range(1, MAX_REPRESENTATIVES + 1):
    setattr(VisitForm, f"visitor_name_{_i}", StringField(
        f"第{_i}位代表姓名", filters=[clean_text],
        validators=[Optional(), Length(max=50, message="姓名不超过50个字")]))
    setattr(VisitForm, f"visitor_phone_{_i}", StringField(f"第{_i}位代表电话", filters=[clean_text]))


def extra_visitor_rows(formdata) -> int:
    """How many filled representative rows a request carried beyond the form's five."""
    rows = set()
    for key, value in formdata.items(multi=True):
        match = re.fullmatch(r"visitor_(?:name|phone)_(\d+)", key)
        if match and int(match.group(1)) > MAX_REPRESENTATIVES and value.strip():
            rows.add(int(match.group(1)))
    return len(rows)

