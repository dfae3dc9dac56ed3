"""The offline channel adapters: a phone call, a letter, a visit become the same kind of record."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from feedback_app.core.database import utcnow
from feedback_app.core.models import Channel, Deadline, Kind, ReplyBy, Submission
from feedback_app.intake import channel_facts, channels
from feedback_app.intake.attachments import IncomingFile
from feedback_app.intake.channels import (
    ChannelError,
    Contact,
    Letter,
    Matter,
    PhoneCall,
    StaffRef,
    Visit,
    Visitor,
)
from feedback_app.intake.service import create_submission

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
BODY = "来电反映：区政务服务中心窗口午休时段无人值守，企业办事要等到下午。"
CLERK = StaffRef(7, "邓记")


def matter(bulletin, body=BODY, item=5, kind=Kind.suggestion):
    return Matter(bulletin.id, item, kind, body)


def store(app, session, settings, draft) -> Submission:
    with app.test_request_context():
        receipt = create_submission(session, settings, draft)
    session.commit()
    return session.scalar(select(Submission).where(Submission.reference == receipt.reference))


def facts_of(submission) -> dict:
    return json.loads(submission.channel_facts)


def a_call(bulletin, settings, **changes) -> PhoneCall:
    values = dict(matter=matter(bulletin), called_at=(utcnow() - timedelta(hours=1)).replace(microsecond=0),
                  duration_minutes=12, line="020-82378781", taken_by=CLERK, caller_number="１３８ ００１３ ８０００",
                  contact=Contact(reply_by=ReplyBy.phone, name="王先生"))
    values.update(changes)
    return PhoneCall(**values)


# ---------- phone ----------

def test_a_phone_call_keeps_its_facts_and_the_caller_number_in_e164(app, session, settings, bulletin):
    call = a_call(bulletin, settings)
    submission = store(app, session, settings, channels.phone_draft(call, settings.tz))
    assert submission.channel == "phone" and submission.body == BODY and submission.item_number == 5
    assert submission.received_at == call.called_at
    assert submission.phone == "+8613800138000" and submission.name == "王先生"  # the caller's number answers
    assert submission.reply_by == "phone"
    facts = facts_of(submission)
    assert facts["caller_number"] == "+8613800138000" and facts["caller_number_absent"] is None
    assert facts["line"] == "020-82378781" and facts["duration_minutes"] == 12
    assert facts["taken_by"] == "邓记" and facts["taken_by_id"] == 7
    assert datetime.fromisoformat(facts["called_at"]) == call.called_at.replace(second=0)
    assert facts["called_at"].endswith("+08:00")
    assert "邓记" in submission.channel_facts  # stored as readable JSON, not \\u escapes


def test_a_typed_callback_number_wins_over_the_caller_number(session, settings, bulletin):
    call = a_call(bulletin, settings, contact=Contact(reply_by=ReplyBy.phone, phone="020-82378781"))
    draft = channels.phone_draft(call, settings.tz)
    assert draft.phone == "+862082378781" and draft.channel_facts["caller_number"] == "+8613800138000"


def test_a_withheld_number_is_recorded_as_such(session, settings, bulletin):
    call = a_call(bulletin, settings, caller_number=None, contact=Contact(reply_by=ReplyBy.online))
    draft = channels.phone_draft(call, settings.tz)
    assert draft.channel_facts["caller_number"] is None
    assert draft.channel_facts["caller_number_absent"] == channels.CALLER_WITHHELD
    assert draft.phone is None
    with pytest.raises(ChannelError, match="选择电话答复时，请填写联系电话"):
        channels.phone_draft(a_call(bulletin, settings, caller_number=None), settings.tz)


def test_an_anonymous_caller_leaves_no_number_anywhere(app, session, settings, bulletin):
    call = a_call(bulletin, settings, contact=Contact(reply_by=ReplyBy.online, anonymous=True, name="王先生"))
    submission = store(app, session, settings, channels.phone_draft(call, settings.tz))
    assert submission.anonymous and submission.phone is None and submission.name is None
    facts = facts_of(submission)
    assert facts["caller_number"] is None and facts["caller_number_absent"] == channels.CALLER_ANONYMOUS
    assert "13800138000" not in submission.channel_facts


@pytest.mark.parametrize("number", ["12345", "call me", "+1 202"])
def test_an_invalid_caller_number_is_refused(settings, bulletin, number):
    with pytest.raises(ChannelError, match="来电号码无效"):
        channels.phone_draft(a_call(bulletin, settings, caller_number=number), settings.tz)


def test_a_call_in_the_future_is_refused(settings, bulletin):
    with pytest.raises(ChannelError, match="通话时间不能晚于现在"):
        channels.phone_draft(a_call(bulletin, settings, called_at=utcnow() + timedelta(hours=2)), settings.tz)


# ---------- letter ----------

def a_letter(bulletin, settings, **changes) -> Letter:
    today = utcnow().astimezone(settings.tz).date()
    values = dict(matter=matter(bulletin, body="来信反映：第5项整改中提到的涉企检查计划没有公开。"),
                  arrived_on=today - timedelta(days=5), postmark_on=today - timedelta(days=8),
                  envelope_note_present=True, envelope_note=bulletin.contact_envelope_note,
                  sender_name="李某", return_address="广州市黄埔区大沙地东路1号 510700",
                  scans=(IncomingFile("第1页.pdf", PDF), IncomingFile("第2页.pdf", PDF)),
                  contact=Contact(reply_by=ReplyBy.letter))
    values.update(changes)
    return Letter(**values)


def test_a_letters_clocks_count_from_its_arrival(app, session, settings, bulletin):
    letter = a_letter(bulletin, settings)
    submission = store(app, session, settings, channels.letter_draft(letter, settings.tz))
    inform = session.scalar(select(Deadline).where(Deadline.submission_id == submission.id,
                                                   Deadline.kind == "inform"))
    assert inform.starts_on == letter.arrived_on
    assert "来信到达日" in inform.rule
    assert submission.received_at.astimezone(settings.tz).date() == letter.arrived_on
    assert submission.channel == "letter" and submission.name == "李某"
    assert submission.address == "广州市黄埔区大沙地东路1号 510700" and submission.reply_by == "letter"
    assert [a.display_name for a in submission.attachments] == ["第1页.pdf", "第2页.pdf"]
    facts = facts_of(submission)
    assert facts == {
        "sender_name": "李某",
        "return_address": "广州市黄埔区大沙地东路1号 510700",
        "postmark_on": letter.postmark_on.isoformat(),
        "arrived_on": letter.arrived_on.isoformat(),
        "envelope_note_present": True,
        "envelope_note": "对黄埔区委巡察整改情况的意见建议",
        "pages_scanned": 2,
    }


def test_a_letter_logged_on_its_arrival_day_is_received_now(settings, bulletin):
    today = utcnow().astimezone(settings.tz).date()
    draft = channels.letter_draft(a_letter(bulletin, settings, arrived_on=today, postmark_on=None), settings.tz)
    assert abs(draft.received_at - utcnow()) < timedelta(minutes=1) and draft.counts_from == today
    assert draft.channel_facts["postmark_on"] is None


def test_letter_dates_that_cannot_be(settings, bulletin):
    today = utcnow().astimezone(settings.tz).date()
    with pytest.raises(ChannelError, match="邮戳日期不能晚于到达日期"):
        channels.letter_draft(a_letter(bulletin, settings, postmark_on=today - timedelta(days=1),
                                       arrived_on=today - timedelta(days=3)), settings.tz)
    with pytest.raises(ChannelError, match="到达日期不能晚于今天"):
        channels.letter_draft(a_letter(bulletin, settings, arrived_on=today + timedelta(days=1)), settings.tz)


def test_a_letter_answered_by_letter_needs_a_return_address(settings, bulletin):
    with pytest.raises(ChannelError, match="通信地址"):
        channels.letter_draft(a_letter(bulletin, settings, return_address=None), settings.tz)


def test_an_anonymous_letter_keeps_no_sender(settings, bulletin):
    letter = a_letter(bulletin, settings, contact=Contact(reply_by=ReplyBy.online, anonymous=True))
    draft = channels.letter_draft(letter, settings.tz)
    assert draft.anonymous and draft.name is None and draft.address is None
    assert draft.channel_facts["sender_name"] is None and draft.channel_facts["return_address"] is None


# ---------- visit ----------

def a_visit(bulletin, settings, visitors=None, **changes) -> Visit:
    values = dict(matter=matter(bulletin, body="来访反映：园区周边道路改造拖延，企业货车绕行，请督促整改。"),
                  visited_at=(utcnow() - timedelta(minutes=30)).replace(microsecond=0), place="来访接待室",
                  received_by=CLERK,
                  visitors=tuple(visitors if visitors is not None else
                                 [Visitor("赵一", "13900139000"), Visitor("钱二")]),
                  group_size=12, contact=Contact(reply_by=ReplyBy.phone))
    values.update(changes)
    return Visit(**values)


def test_a_visit_keeps_its_representatives_and_group(app, session, settings, bulletin):
    visit = a_visit(bulletin, settings)
    submission = store(app, session, settings, channels.visit_draft(visit, settings.tz))
    assert submission.channel == "visit" and submission.received_at == visit.visited_at
    assert submission.name == "赵一" and submission.phone == "+8613900139000"
    facts = facts_of(submission)
    assert facts["visitors"] == [{"name": "赵一", "phone": "+8613900139000"}, {"name": "钱二", "phone": None}]
    assert facts["group_size"] == 12 and facts["place"] == "来访接待室" and facts["received_by"] == "邓记"


def test_five_representatives_at_most(settings, bulletin):
    five = [Visitor(f"代表{i}") for i in range(1, 6)]
    assert len(channels.visit_draft(a_visit(bulletin, settings, five, contact=Contact()), settings.tz)
               .channel_facts["visitors"]) == 5
    six = [*five, Visitor("代表6")]
    with pytest.raises(ChannelError, match="代表不超过 5 人"):
        channels.visit_draft(a_visit(bulletin, settings, six, contact=Contact()), settings.tz)
    with pytest.raises(ChannelError, match="代表不超过 5 人"):  # anonymity does not lift the limit
        channels.visit_draft(a_visit(bulletin, settings, six, contact=Contact(anonymous=True)), settings.tz)


def test_a_visit_needs_someone_and_a_sensible_group_size(settings, bulletin):
    with pytest.raises(ChannelError, match="至少填写一位来访人"):
        channels.visit_draft(a_visit(bulletin, settings, [], contact=Contact()), settings.tz)
    with pytest.raises(ChannelError, match="来访人数不能少于"):
        channels.visit_draft(a_visit(bulletin, settings, group_size=1), settings.tz)


def test_every_adapter_gives_the_same_kind_of_draft(settings, bulletin):
    drafts = [
        channels.phone_draft(a_call(bulletin, settings), settings.tz),
        channels.letter_draft(a_letter(bulletin, settings), settings.tz),
        channels.visit_draft(a_visit(bulletin, settings), settings.tz),
    ]
    assert [d.channel for d in drafts] == [Channel.phone, Channel.letter, Channel.visit]
    for draft in drafts:
        assert draft.bulletin_id == bulletin.id and draft.item_number == 5 and draft.kind == Kind.suggestion
        assert draft.received_at is not None and isinstance(draft.channel_facts, dict)
        json.dumps(draft.channel_facts)  # storable as it is


def test_fact_rows_mask_personal_data_for_handlers(settings, bulletin):
    facts = channels.phone_draft(a_call(bulletin, settings), settings.tz).channel_facts
    plain = {r.label: r.value for r in channel_facts.fact_rows("phone", facts, masked=False)}
    masked = {r.label: r.value for r in channel_facts.fact_rows("phone", facts, masked=True)}
    assert plain["来电号码"] == "+8613800138000" and masked["来电号码"] == "138****8000"
    assert masked["来电线路"] == "020-82378781" and masked["通话时长"] == "12 分钟"
    visit = channels.visit_draft(a_visit(bulletin, settings), settings.tz).channel_facts
    rows = {r.label: r for r in channel_facts.fact_rows("visit", visit, masked=True)}
    assert rows["来访代表"].items == ["赵*（139****9000）", "钱*"] and rows["来访人数"].value == "12 人"


def test_facts_of_other_channels_are_shown_but_never_unmasked_to_handlers():
    facts = {"message_id": "<m1@mail.example.com>", "sender": "张三 <zhang.san@example.com>",
             "subject": "关于第5项整改的意见", "sender_name": "张三", "mailbox_id": 3}
    plain = {r.label: r.value for r in channel_facts.fact_rows("email", facts, masked=False)}
    assert plain["发件人"] == "张三 <zhang.san@example.com>" and plain["邮件主题"] == "关于第5项整改的意见"
    masked = channel_facts.fact_rows("email", facts, masked=True)
    shown = " ".join(r.value for r in masked)
    assert "张三" not in shown and "zhang.san" not in shown and "z***@example.com" in shown
    assert "<m1@mail.example.com>" in shown
