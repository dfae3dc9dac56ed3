"""The acknowledgement mail says what the recipient can do with what they have: a web submitter and a caller
hold a query code; someone who wrote by email or letter never saw one and is told how to get it. No mail
ever holds the code."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from feedback_app.core.models import Channel, Kind, OutboxMessage, ReplyBy, Submission
from feedback_app.core.querycode import display
from feedback_app.intake.service import Draft, create_submission
from feedback_app.mailbox.draft import IMPORT_MAILBOX
from feedback_app.mailbox.inbound import take
from tests.mail.corpus import CORPUS

ADDRESS = "li.si@example.com"
# a query code as it could be printed: 16 characters of its alphabet, in groups of 4 or not
CODE_SHAPED = re.compile(r"[0-9A-Z]{4}(?:-?[0-9A-Z]{4}){3}", re.IGNORECASE)
NEVER_SAW = "告知受理编号，经核实后工作人员将为您提供查询码"


@pytest.fixture
def factory(app):
    with app.app_context():
        yield app.extensions["db_sessionmaker"]


def acknowledgement(session, reference: str) -> OutboxMessage:
    session.commit()
    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    [mail] = session.scalars(select(OutboxMessage).where(OutboxMessage.submission_id == submission.id)).all()
    assert mail.kind == "acknowledgement" and reference in mail.subject and reference in mail.body
    return mail


def assert_no_code(mail: OutboxMessage, code: str | None = None) -> None:
    for text in (mail.subject, mail.body):
        assert not CODE_SHAPED.search(text)
        assert code is None or not any(s in text for s in (code, display(code), code.lower()))


@pytest.mark.parametrize("channel, reply_by, says, not_says", [
    (Channel.web, ReplyBy.email, "请使用受理编号和提交时页面上显示的查询码", NEVER_SAW),
    (Channel.phone, ReplyBy.phone, "请使用受理编号和登记时工作人员告知您的查询码", NEVER_SAW),
    (Channel.letter, ReplyBy.letter, "我们将以书面信函答复您。", "页面上显示的"),
])
def test_the_wording_follows_what_the_recipient_holds(factory, session, settings, bulletin, channel, reply_by,
                                                      says, not_says):
    draft = Draft(bulletin_id=bulletin.id, item_number=5, channel=channel, kind=Kind.suggestion,
                  body="建议涉企检查计划按季度公开。", reply_by=reply_by, email=ADDRESS, privacy_consent=True)
    receipt = create_submission(session, settings, draft)
    mail = acknowledgement(session, receipt.reference)
    assert says in mail.body and not_says not in mail.body
    assert settings.public_url + "/track" in mail.body
    assert_no_code(mail, receipt.query_code)


def test_an_emailed_comment_is_told_how_to_follow_it_online(factory, session, settings, bulletin):
    outcome = take(factory, settings, CORPUS["utf8_plain"].raw, mailbox=IMPORT_MAILBOX)
    mail = acknowledgement(session, outcome.reference)
    assert mail.recipient == "zhang.san@example.com"
    assert "我们将通过电子邮件答复您。请妥善保存受理编号" in mail.body
    assert f"请致电{bulletin.contact_phone}，{NEVER_SAW}" in mail.body and bulletin.contact_phone
    assert settings.public_url + "/track" in mail.body
    assert "页面上显示的" not in mail.body and "工作人员告知您的" not in mail.body
    assert_no_code(mail)
