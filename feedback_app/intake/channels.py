"""The offline channels: a phone call, a letter, a visit, each turned into the same ``Draft``.

Each adapter takes what the clerk typed (already read off the form), checks what the channel itself
requires, and returns a ``Draft`` whose ``channel_facts`` hold the channel's own record:

- phone: the caller's number (E.164, or why there is none), time and length of the call, the line, who
  took it; received at the call, its clocks count from the day of the call;
- letter: sender, return address, postmark date, arrival date, the envelope note, pages scanned; received
  on the day it arrived, and its clocks count from that day;
- visit: the representatives (at most 5, 信访工作条例第20条), group size, time, place, who received them;
  received at the visit, its clocks count from the day of the visit.

An anonymous comment keeps no name, number or address, in the facts either. Phone numbers go through
``normalize_phone`` and are kept in E.164; the caller's own number is also the contact number unless
the clerk typed another one, so a later call or web comment from the same number is recognised.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from feedback_app.core.database import utcnow
from feedback_app.core.models import Channel, Kind, ReplyBy
from feedback_app.core.text import normalize_email, normalize_phone
from feedback_app.intake import rules
from feedback_app.intake.attachments import IncomingFile
from feedback_app.intake.service import Draft

MAX_REPRESENTATIVES = 5  # 信访工作条例第20条：多人反映共同意见的，推选代表，代表人数不超过5人
CALLER_WITHHELD = "withheld"  # the number did not show, or the caller would not give it
CALLER_ANONYMOUS = "anonymous"  # the caller asked to stay anonymous: the number is not kept


class ChannelError(ValueError):
    """A record the channel cannot accept; the message is for the clerk, in Chinese."""


@dataclass(frozen=True)
class Matter:
    """What every comment has, whatever the channel."""

    bulletin_id: int
    item_number: int
    kind: Kind
    body: str


@dataclass(frozen=True)
class Contact:
    """Whether and how to answer. Phone and email as typed; the adapter normalises them."""

    reply_by: ReplyBy = ReplyBy.online
    anonymous: bool = False
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    publish_consent: bool = False
    privacy_notice: bool = False  # the clerk told the person how their information is handled


@dataclass(frozen=True)
class StaffRef:
    id: int | None
    label: str


@dataclass(frozen=True)
class PhoneCall:
    matter: Matter
    called_at: datetime  # aware
    duration_minutes: int
    line: str  # the number of ours that rang
    taken_by: StaffRef
    caller_number: str | None  # as typed; None when it did not show
    contact: Contact = Contact(reply_by=ReplyBy.phone)


@dataclass(frozen=True)
class Letter:
    matter: Matter
    arrived_on: date
    envelope_note_present: bool
    envelope_note: str | None  # the note the bulletin asked for
    sender_name: str | None = None
    return_address: str | None = None
    postmark_on: date | None = None  # None when illegible
    scans: tuple[IncomingFile, ...] = ()
    contact: Contact = Contact(reply_by=ReplyBy.letter)  # name and address come from the sender


@dataclass(frozen=True)
class Visitor:
    name: str
    phone: str | None = None  # as typed


@dataclass(frozen=True)
class Visit:
    matter: Matter
    visited_at: datetime  # aware
    place: str
    received_by: StaffRef
    visitors: tuple[Visitor, ...] = ()
    group_size: int | None = None  # how many came; None: just the representatives
    contact: Contact = Contact(reply_by=ReplyBy.phone)


# checks shared by the adapters and the staff forms ---------------------------------------------
def e164(value: str | None, what: str = "电话号码") -> str | None:
    """A typed number in E.164, None when nothing was typed; ChannelError when it is not a number."""
    if not value or not value.strip():
        return None
    number = normalize_phone(value)
    if number is None:
        raise ChannelError(rules.phone_invalid(what))
    return number


def representatives_problem(count: int) -> str | None:
    if count < 1:
        return "请至少填写一位来访人的姓名"
    if count > MAX_REPRESENTATIVES:
        return (f"多人来访的，应推选代表，代表不超过 {MAX_REPRESENTATIVES} 人（《信访工作条例》第二十条），"
                f"目前填写了 {count} 人")
    return None


def _email(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    normalized = normalize_email(value.strip())
    if normalized is None:
        raise ChannelError(rules.EMAIL_INVALID)
    return normalized


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _check_matter(matter: Matter) -> None:
    if not matter.body or not matter.body.strip():
        raise ChannelError("请填写反映内容")
    if matter.item_number < 0:
        raise ChannelError("请选择通报中的整改事项")


def _check_moment(moment: datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    if moment > utcnow() + timedelta(minutes=5):
        raise ChannelError(f"{what}不能晚于现在")


def _local_iso(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="minutes")


def _draft(channel: Channel, matter: Matter, contact: Contact, *, name, phone, email, address,
           received_at, counts_from=None, facts, attachments=(), form_token=None) -> Draft:
    problems = rules.reply_problems(contact.reply_by, contact.anonymous, name=name, phone=phone, email=email,
                                    address=address)
    if problems:
        raise ChannelError(next(iter(problems.values())))
    anonymous = contact.anonymous
    return Draft(
        bulletin_id=matter.bulletin_id,
        item_number=matter.item_number,
        channel=channel,
        kind=Kind(matter.kind),
        body=matter.body.strip(),
        reply_by=ReplyBy.online if anonymous else ReplyBy(contact.reply_by),
        anonymous=anonymous,
        publish_consent=contact.publish_consent,
        privacy_consent=contact.privacy_notice,
        name=None if anonymous else name,
        phone=None if anonymous else phone,
        email=None if anonymous else email,
        address=None if anonymous else address,
        received_at=received_at,
        counts_from=counts_from,
        channel_facts=facts,
        attachments=tuple(attachments),
        form_token=form_token,
    )


# the adapters ------------------------------------------------------------------------------------
def phone_draft(call: PhoneCall, tz: ZoneInfo, *, form_token: str | None = None) -> Draft:
    """A phone call as a draft; received when the call came in."""
    _check_matter(call.matter)
    _check_moment(call.called_at, "通话时间")
    if not (0 <= call.duration_minutes <= 24 * 60):
        raise ChannelError("通话时长应为 0 至 1440 分钟")
    if not _text(call.line):
        raise ChannelError("请填写来电打入的号码")
    contact = call.contact
    caller = e164(call.caller_number, "来电号码")
    facts = {
        "caller_number": None if contact.anonymous else caller,
        "caller_number_absent": CALLER_ANONYMOUS if contact.anonymous else (None if caller else CALLER_WITHHELD),
        "called_at": _local_iso(call.called_at, tz),
        "duration_minutes": call.duration_minutes,
        "line": call.line.strip(),
        "taken_by": call.taken_by.label,
        "taken_by_id": call.taken_by.id,
    }
    phone = e164(contact.phone, "联系电话") or caller
    return _draft(Channel.phone, call.matter, contact, name=_text(contact.name), phone=phone,
                  email=_email(contact.email), address=_text(contact.address), received_at=call.called_at,
                  facts=facts, form_token=form_token)


def letter_received_at(arrived_on: date, tz: ZoneInfo) -> datetime:
    """A letter logged on the day it arrived is received now; one logged later, at the start of that day."""
    now = utcnow()
    if arrived_on == now.astimezone(tz).date():
        return now
    return datetime.combine(arrived_on, time.min, tzinfo=tz)


def letter_draft(letter: Letter, tz: ZoneInfo, *, form_token: str | None = None) -> Draft:
    """A letter as a draft; its clocks count from the day it arrived."""
    _check_matter(letter.matter)
    today = utcnow().astimezone(tz).date()
    if letter.arrived_on > today:
        raise ChannelError("到达日期不能晚于今天")
    if letter.postmark_on is not None:
        if letter.postmark_on > today:
            raise ChannelError("邮戳日期不能晚于今天")
        if letter.postmark_on > letter.arrived_on:
            raise ChannelError("邮戳日期不能晚于到达日期")
    contact = letter.contact
    name, address = _text(letter.sender_name), _text(letter.return_address)
    facts = {
        "sender_name": None if contact.anonymous else name,
        "return_address": None if contact.anonymous else address,
        "postmark_on": letter.postmark_on.isoformat() if letter.postmark_on else None,
        "arrived_on": letter.arrived_on.isoformat(),
        "envelope_note_present": bool(letter.envelope_note_present),
        "envelope_note": letter.envelope_note,
        "pages_scanned": len(letter.scans),
    }
    return _draft(Channel.letter, letter.matter, contact, name=name, phone=e164(contact.phone, "联系电话"),
                  email=_email(contact.email), address=address,
                  received_at=letter_received_at(letter.arrived_on, tz), counts_from=letter.arrived_on,
                  facts=facts, attachments=letter.scans, form_token=form_token)


def visit_draft(visit: Visit, tz: ZoneInfo, *, form_token: str | None = None) -> Draft:
    """A visit as a draft; received when the visitors came. A group names at most 5 representatives."""
    _check_matter(visit.matter)
    _check_moment(visit.visited_at, "来访时间")
    contact = visit.contact
    visitors = [v for v in visit.visitors if _text(v.name) or _text(v.phone)]
    if not contact.anonymous or len(visitors) > MAX_REPRESENTATIVES:
        problem = representatives_problem(len(visitors))
        if problem:
            raise ChannelError(problem)
    if any(not _text(v.name) for v in visitors) and not contact.anonymous:
        raise ChannelError("请填写每位来访代表的姓名")
    people = [{"name": _text(v.name), "phone": e164(v.phone, "来访人电话")} for v in visitors]
    size = visit.group_size if visit.group_size is not None else len(people)
    if size < max(len(people), 1):
        raise ChannelError("来访人数不能少于填写的代表人数")
    if not _text(visit.place):
        raise ChannelError("请填写接待地点")
    facts = {
        "visitors": [] if contact.anonymous else people,
        "group_size": size,
        "visited_at": _local_iso(visit.visited_at, tz),
        "place": visit.place.strip(),
        "received_by": visit.received_by.label,
        "received_by_id": visit.received_by.id,
    }
    first = people[0] if people else {"name": None, "phone": None}
    return _draft(Channel.visit, visit.matter, contact, name=_text(contact.name) or first["name"],
                  phone=e164(contact.phone, "联系电话") or first["phone"], email=_email(contact.email),
                  address=_text(contact.address), received_at=visit.visited_at, facts=facts,
                  form_token=form_token)
