"""Mail whose text is not what it looks like, through the real import (``mail import`` of .eml files,
``importer.import_paths``), on SQLite and on PostgreSQL: the one rule for text of every channel
(``core.text.text_problem``), as the mail channel applies it (``mailbox.parse``).

- a control character (C0 but tab and line feed, a CR outside CRLF, DEL, C1) in the sender, the subject
  or the body as its charset decodes it: quarantined, with a reason in Chinese that says where and which
  ("邮件正文包含不可见的控制字符（U+0000）"); no submission; the raw message kept byte for byte;
- a direction control in the sender: quarantined likewise (a name); in the subject or the body: kept,
  stored as sent, and written out ([U+202E]) on the staff pages and in the ledger;
- bytes a declared charset cannot read: U+FFFD, ingested, as the mail code always did.

A quarantined message's facts (subject, sender) never carry the control characters, so that PostgreSQL can
store its row; a release registers the message without them.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import quopri
import re
import unicodedata
import zipfile
from itertools import count as counter

import pytest
from sqlalchemy import func, select

from feedback_app.core.models import InboundMessage, Submission
from feedback_app.core.text import CONTROLS
from feedback_app.mailbox.importer import import_paths
from tests.auth.helpers import client_as, create_staff, csrf_of

SUBJECT = "关于第5项整改的意见"
SENDER = "张三"
ADDRESS = "zhang.san@example.com"
BODY = "建议进一步规范涉企会议的时间安排，提前通知企业。\r\n第二段：请公开整改进展。"
STORED_BODY = BODY.replace("\r\n", "\n")
RLO, PDF = "\u202e", "\u202c"
_numbers = counter(1)


# ---------- mail as programs write it ----------

def word(text: str, charset: str = "utf-8") -> str:
    """An RFC 2047 encoded word."""
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


def mail(*, body: str | bytes = BODY, subject: str | None = None, sender: str | None = None,
         charset: str = "utf-8", encoding: str = "base64", subtype: str = "plain") -> bytes:
    """One message; ``subject``/``sender``: the header's text as written (default: encoded words of
    SUBJECT and SENDER); ``body``: text in ``charset``, or the bytes themselves."""
    data = body if isinstance(body, bytes) else body.encode(charset)
    if encoding == "base64":
        payload = base64.encodebytes(data).replace(b"\n", b"\r\n")
    elif encoding == "quoted-printable":
        payload = quopri.encodestring(data).replace(b"\n", b"\r\n")
    else:
        payload = data
    headers = [
        f"From: {word(SENDER) if sender is None else sender} <{ADDRESS}>",
        "To: yshjggj@gdd.gov.cn",
        f"Subject: {word(SUBJECT) if subject is None else subject}",
        "Date: Mon, 03 Mar 2025 10:00:00 +0800",
        f"Message-ID: <fault-{next(_numbers)}@example.com>",
        "MIME-Version: 1.0",
        f"Content-Type: text/{subtype}; charset={charset}",
        f"Content-Transfer-Encoding: {encoding}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + payload


# ---------- the import ----------

@pytest.fixture
def factory(app):
    with app.app_context():  # an acknowledgement is rendered from a template
        yield app.extensions["db_sessionmaker"]


def reread(session):
    session.commit()
    session.expire_all()


def submissions(session) -> int:
    reread(session)
    return session.scalar(select(func.count()).select_from(Submission))


def import_one(factory, settings, tmp_path, raw: bytes, session) -> InboundMessage:
    """``mail import`` of one .eml file; the message's row."""
    path = tmp_path / f"message-{next(_numbers)}.eml"
    path.write_bytes(raw)
    report = import_paths(factory, settings, [path])
    assert (report.read, report.errors) == (1, [])
    reread(session)
    return session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()


def quarantined(row: InboundMessage, raw: bytes, session, reason: str) -> None:
    assert (row.status, row.reason) == ("quarantined", reason)
    assert row.submission_id is None and submissions(session) == 0
    assert row.raw == raw  # the message as it came, for staff to read and release
    for fact in (row.subject, row.sender, row.message_id):
        assert fact is None or not CONTROLS.search(fact)  # PostgreSQL can store the row


def ingested(row: InboundMessage, session) -> Submission:
    assert (row.status, row.reason) == ("ingested", None), row.reason
    return session.get(Submission, row.submission_id)


# ---------- control characters: quarantined with the reason ----------

QUARANTINED = [
    pytest.param(dict(body="建议规范涉企\x00会议的时间安排。"), "邮件正文包含不可见的控制字符（U+0000）",
                 id="NUL-body-base64"),
    pytest.param(dict(body="建议规范涉企\x07会议的时间安排。", encoding="quoted-printable"),
                 "邮件正文包含不可见的控制字符（U+0007）", id="BEL-body-qp"),
    pytest.param(dict(body="建议规范涉企会议的时间安排\x85。"), "邮件正文包含不可见的控制字符（U+0085）", id="NEL-body"),
    pytest.param(dict(body="Proposal: publish the \x9bcheck plan.", charset="iso-8859-1", encoding="8bit"),
                 "邮件正文包含不可见的控制字符（U+009B）", id="C1-body-latin1"),
    pytest.param(dict(body="\x1b[31m建议规范涉企会议\x1b[0m，请公开。\x7f"),
                 "邮件正文包含不可见的控制字符（U+001B、U+007F）", id="ESC-DEL-body"),
    pytest.param(dict(body="第一行：建议规范涉企会议\r第二行：提前通知企业。", encoding="8bit"),
                 "邮件正文包含不可见的控制字符（U+000D）", id="lone-CR-body"),
    pytest.param(dict(body="建议规范涉企会议\x0c的时间安排。"), "邮件正文包含不可见的控制字符（U+000C）", id="FF-body"),
    pytest.param(dict(body="<p>建议规范涉企会议\x07的时间安排。</p>", subtype="html"),
                 "邮件正文包含不可见的控制字符（U+0007）", id="BEL-html-body"),
    pytest.param(dict(body="建议规范涉企会议的时间安排。".encode("gb18030") + b"\x00", charset="gb2312"),
                 "邮件正文包含不可见的控制字符（U+0000）", id="NUL-gbk-body"),
    pytest.param(dict(subject=word("关于第5项\x07整改的意见")), "邮件主题包含不可见的控制字符（U+0007）", id="BEL-subject"),
    pytest.param(dict(subject=word("关于第5项\x00整改的意见")), "邮件主题包含不可见的控制字符（U+0000）", id="NUL-subject"),
    pytest.param(dict(subject=word("关于第5项整改\x85的意见")), "邮件主题包含不可见的控制字符（U+0085）", id="NEL-subject"),
    pytest.param(dict(subject=word("关于第5项整改\x1f的意见", "gb18030")),
                 "邮件主题包含不可见的控制字符（U+001F）", id="US-subject-gb18030"),
    pytest.param(dict(sender=word("张\x00三")), "发件人包含不可见的控制字符（U+0000）", id="NUL-sender"),
    pytest.param(dict(sender=word("张三\x85")), "发件人包含不可见的控制字符（U+0085）", id="NEL-sender"),
    pytest.param(dict(sender=word("\x1b[1m张三")), "发件人包含不可见的控制字符（U+001B）", id="ESC-sender"),
    pytest.param(dict(sender=word(f"张三{RLO}")), "发件人包含改变文字方向的控制字符（U+202E）", id="RLO-sender"),
]


@pytest.mark.parametrize("parts, reason", QUARANTINED)
def test_a_control_character_quarantines_the_message_with_the_reason(
        factory, settings, session, bulletin, tmp_path, parts, reason):
    raw = mail(**parts)
    quarantined(import_one(factory, settings, tmp_path, raw, session), raw, session, reason)


def test_the_quarantine_list_says_why(app, factory, settings, session, bulletin, tmp_path):
    raw = mail(body="建议规范涉企\x00会议的时间安排。", subject=word("关于第5项\x07整改的意见"))
    row = import_one(factory, settings, tmp_path, raw, session)
    assert row.reason == "邮件主题包含不可见的控制字符（U+0007）"  # the first place it breaks the rule
    clerk = client_as(app, create_staff(session, username="deng.ji", role="clerk"))
    html = clerk.get("/staff/mail/").get_data(as_text=True)
    assert "邮件主题包含不可见的控制字符（U+0007）" in html and "关于第5项整改的意见" in html
    assert "\x07" not in html and "\x00" not in html


def test_tabs_crlf_and_a_form_feed_in_html_are_not_control_characters(
        factory, settings, session, bulletin, tmp_path):
    body = "建议：\t一、规范涉企会议；\r\n\t二、提前通知企业。"
    submission = ingested(import_one(factory, settings, tmp_path, mail(body=body), session), session)
    assert submission.body == body.replace("\r\n", "\n")
    html = "<p>建议规范涉企会议的时间安排，\f提前通知企业。</p>\r\n<p>请公开整改进展。</p>"  # a blank, in HTML
    submission = ingested(import_one(factory, settings, tmp_path, mail(body=html, subtype="html"), session), session)
    assert "建议规范涉企会议的时间安排， 提前通知企业。" in submission.body


def test_a_released_message_is_registered_without_its_control_characters(
        app, factory, settings, session, bulletin, tmp_path):
    raw = mail(body="建议规范涉企\x00会议的时间安排。\x07", sender=word("张\x00三"), subject=word("第5项\x07意见"))
    row = import_one(factory, settings, tmp_path, raw, session)
    assert row.status == "quarantined"
    reference = release(app, session, row)
    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    assert (submission.body, submission.name) == ("建议规范涉企会议的时间安排。", "张三")
    assert json.loads(submission.channel_facts)["subject"] == "第5项意见"


# ---------- direction controls: kept in the text, written out for staff ----------

def release(app, session, row: InboundMessage) -> str:
    """A clerk releases the message on its page; the reference it was registered under."""
    clerk = client_as(app, create_staff(session, username=f"deng.ji{row.id}", role="clerk"))
    page = clerk.get(f"/staff/mail/{row.id}")
    assert page.status_code == 200
    response = clerk.post(f"/staff/mail/{row.id}/release", data=csrf_of(page.get_data(as_text=True)))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    reread(session)
    return response.headers["Location"].rsplit("/", 1)[1]


def test_a_direction_control_in_the_body_and_subject_is_kept_and_shown_written_out(
        app, factory, settings, session, bulletin, tmp_path):
    body = f"反映：某公司把合同编号写成{RLO}5202-ABC{PDF}，请核查是否存在伪造。"
    subject = f"关于第5项{RLO}见意{PDF}"
    raw = mail(body=body, subject=word(subject))
    row = import_one(factory, settings, tmp_path, raw, session)
    submission = ingested(row, session)
    assert submission.body.encode() == body.encode()  # as sent, byte for byte
    assert json.loads(submission.channel_facts)["subject"] == subject

    admin = client_as(app, create_staff(session, username="guan.li", role="admin", totp=True))
    for path in (f"/staff/submissions/{submission.reference}", f"/staff/mail/{row.id}"):
        html = admin.get(path).get_data(as_text=True)
        assert "反映：某公司把合同编号写成[U+202E]5202-ABC[U+202C]，请核查是否存在伪造。" in html, path
        assert RLO not in html and PDF not in html, path
    assert "关于第5项[U+202E]见意[U+202C]" in admin.get(f"/staff/mail/{row.id}").get_data(as_text=True)


def test_a_sender_name_with_a_direction_control_released_is_shown_written_out_in_the_ledger(
        app, factory, settings, session, bulletin, tmp_path):
    name = f"张三{RLO}moc.elgoog"
    raw = mail(sender=word(name))
    row = import_one(factory, settings, tmp_path, raw, session)
    quarantined(row, raw, session, "发件人包含改变文字方向的控制字符（U+202E）")
    reference = release(app, session, row)
    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    assert submission.name == name  # staff chose to register it: stored as sent

    admin = client_as(app, create_staff(session, username="guan.li", role="admin", totp=True))
    html = admin.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    assert "张三[U+202E]moc.elgoog" in html and RLO not in html
    for fmt in ("csv", "xlsx"):
        response = admin.post(f"/staff/ledger/export.{fmt}")
        assert response.status_code == 200
        text = ledger_text(response.get_data(), fmt)
        assert reference in text and "张三[U+202E]moc.elgoog" in text and RLO not in text, fmt


def ledger_text(data: bytes, fmt: str) -> str:
    if fmt == "csv":
        return "\n".join(",".join(row) for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "\n".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))


# ---------- what is read as it always was ----------

def test_bytes_a_declared_charset_cannot_read_are_replacement_characters_and_the_mail_is_ingested(
        factory, settings, session, bulletin, tmp_path):
    data = "建议规范涉企会议的时间安排。".encode("gbk") + b"\x80\xff" + "请公开。".encode("gbk")
    submission = ingested(import_one(factory, settings, tmp_path, mail(body=data, charset="gbk"), session), session)
    assert submission.body.startswith("建议规范涉企会议的时间安排。") and "\ufffd" in submission.body
    assert submission.body.endswith("请公开。")


def test_gbk_under_a_gb2312_label_and_decomposed_text_are_stored_as_sent(
        factory, settings, session, bulletin, tmp_path):
    gbk = "来信人朱镕基反映：堃元路的整改至今未完成。"  # GBK characters, labelled GB2312 as mailers do
    raw = mail(body=gbk.encode("gbk"), charset="gb2312")
    submission = ingested(import_one(factory, settings, tmp_path, raw, session), session)
    assert submission.body == gbk
    nfd = "Cafe\u0301与\u1112\u1161\u11ab\u1100\u116e\u11a8：建议如实记录外籍企业名称。"
    assert unicodedata.normalize("NFC", nfd) != nfd
    raw = mail(body=nfd, sender=word("Jose\u0301"))
    submission = ingested(import_one(factory, settings, tmp_path, raw, session), session)
    assert submission.body.encode() == nfd.encode() and submission.name.encode() == "Jose\u0301".encode()


def test_an_ordinary_message_is_ingested(factory, settings, session, bulletin, tmp_path):
    submission = ingested(import_one(factory, settings, tmp_path, mail(), session), session)
    assert (submission.body, submission.name, submission.email) == (STORED_BODY, SENDER, ADDRESS)
    assert re.fullmatch(r"HP\d{4}-\d{6}", submission.reference)
