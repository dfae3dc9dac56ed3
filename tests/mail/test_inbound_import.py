"""``mail import`` and the ingestion steps without a server: formats, exactly-once, facts, quarantine."""
from __future__ import annotations

import json
import mailbox
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from feedback_app.core.database import utcnow
from feedback_app.core.models import InboundMessage, MailboxState, OutboxMessage, Submission
from feedback_app.mailbox import inbound
from feedback_app.mailbox.imap import fetch_once
from feedback_app.mailbox.importer import import_paths
from feedback_app.mailbox.inbound import NO_BULLETIN, finish_stored, ingest, store_raw, take
from tests.conftest import make_settings
from tests.mail.corpus import CORPUS, INGESTED, OVERSIZE_LIMIT, QUARANTINED, write_eml
from tests.mail.corpus.encode import PDF, b64


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, mail_max_bytes=OVERSIZE_LIMIT)


@pytest.fixture
def factory(app):
    with app.app_context():
        yield app.extensions["db_sessionmaker"]


def reread(session):
    """End the test session's snapshot: what the steps committed since becomes visible."""
    session.commit()
    session.expire_all()


def count(session, model, *where):
    reread(session)
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _write(kind: str, tmp_path):
    if kind == "eml-folder":
        write_eml(tmp_path / "eml")
        return [tmp_path / "eml"]
    if kind == "eml-files":
        return write_eml(tmp_path / "eml")
    if kind == "mbox":
        box = mailbox.mbox(tmp_path / "inbox.mbox")
        for sample in CORPUS.values():
            box.add(sample.raw)
        box.close()
        return [tmp_path / "inbox.mbox"]
    box = mailbox.Maildir(tmp_path / "Maildir")
    for sample in CORPUS.values():
        box.add(sample.raw)
    box.close()
    return [tmp_path / "Maildir"]


@pytest.mark.parametrize("kind", ["eml-folder", "eml-files", "mbox", "maildir"])
def test_import_registers_each_message_once(kind, factory, settings, session, bulletin, tmp_path):
    paths = _write(kind, tmp_path)
    report = import_paths(factory, settings, paths)
    assert (report.read, report.ingested, report.quarantined, report.errors) == (
        len(CORPUS), len(INGESTED), len(QUARANTINED), [])
    assert count(session, Submission) == len(INGESTED)
    assert count(session, InboundMessage, InboundMessage.status == "quarantined") == len(QUARANTINED)

    again = import_paths(factory, settings, paths)
    assert (again.ingested, again.quarantined, again.already_known) == (0, 0, len(CORPUS))
    assert count(session, Submission) == len(INGESTED)
    assert count(session, InboundMessage) == len(CORPUS)


def test_the_same_bytes_from_another_source_are_the_same_message(factory, settings, session, bulletin, tmp_path):
    raw = CORPUS["utf8_plain"].raw
    (tmp_path / "a.eml").write_bytes(raw)
    import_paths(factory, settings, [tmp_path / "a.eml"])
    first = take(factory, settings, raw, mailbox="imap:app@host/INBOX", uidvalidity=7, uid=3)
    assert (first.status, first.done_now) == ("ingested", False)
    assert count(session, Submission) == 1 and count(session, InboundMessage) == 1


def test_a_crash_between_the_steps_loses_and_doubles_nothing(factory, settings, session, bulletin):
    stored_only, new = store_raw(factory, CORPUS["gbk_base64"].raw, mailbox="import")
    reread(session)
    assert new and session.get(InboundMessage, stored_only).status == "stored"
    done = take(factory, settings, CORPUS["big5_qp"].raw, mailbox="import")

    resumed = finish_stored(factory, settings)  # what the next run does first
    assert [(o.inbound_id, o.status, o.done_now) for o in resumed] == [(stored_only, "ingested", True)]
    assert ingest(factory, settings, stored_only).done_now is False
    assert take(factory, settings, CORPUS["big5_qp"].raw, mailbox="import").reference == done.reference
    assert count(session, Submission) == 2


def test_the_submission_carries_the_mail_facts(factory, settings, session, bulletin, tmp_path):
    import_paths(factory, settings, write_eml(tmp_path / "eml"))
    reread(session)
    by_id = {json.loads(s.channel_facts)["message_id"]: s for s in session.scalars(select(Submission))}
    nested = by_id["<nested@corpus.test>"]
    facts = json.loads(nested.channel_facts)
    assert (nested.channel, nested.kind, nested.item_number, nested.reply_by) == ("email", "suggestion", 5, "email")
    assert (nested.email, nested.name, nested.publish_consent, nested.privacy_consent_at) == (
        "sun.qi@example.com", "孙七", False, None)
    assert facts["item_detected"] == {"number": 5, "words": "第 5 项", "in": "subject"}
    assert facts["subject"] == "第 5 项：附上材料" and facts["from"] == "孙七 <sun.qi@example.com>"
    assert facts["to"] == "jubao@example.gov.cn" and facts["mailbox"] == "import"
    assert [a.display_name for a in nested.attachments] == ["举报材料.pdf", "现场照片.jpg"]
    assert [(f["filename"], f["reason"]) for f in facts["attachments_not_stored"]] == [
        ("情况说明.docx", "“情况说明.docx”不是 JPEG、PNG 或 PDF 文件")]

    assert json.loads(by_id["<html-only@corpus.test>"].channel_facts)["html_only"] is True
    anonymous = by_id["<no-address@corpus.test>"]
    assert (anonymous.email, anonymous.reply_by, anonymous.item_number) == (None, "online", 14)
    assert json.loads(anonymous.channel_facts)["no_acknowledgement"] == "发件地址无效"
    assert by_id["<attachment-only@corpus.test>"].body == "（邮件无正文，见附件）"
    assert "喆昇" in by_id["<gbk-base64@corpus.test>"].body


def test_acknowledgements_go_to_answerable_senders_only(factory, settings, session, bulletin, tmp_path):
    import_paths(factory, settings, write_eml(tmp_path / "eml"))
    reread(session)
    outbox = session.scalars(select(OutboxMessage)).all()
    answerable = {json.loads(s.channel_facts)["from"] for s in session.scalars(select(Submission)) if s.email}
    assert len(outbox) == len(answerable) == len(INGESTED) - 1  # all but the one without a valid address
    assert {m.recipient for m in outbox} == {s.email for s in session.scalars(select(Submission)) if s.email}
    assert all(m.kind == "acknowledgement" and "受理编号" in m.subject for m in outbox)
    assert "MAILER-DAEMON@mx.example.com" not in {m.recipient for m in outbox}


def test_files_beyond_the_form_limits_are_noted_not_stored(factory, settings, session, bulletin):
    parts = "".join(f"--x\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=f{n}.pdf\n"
                    f"Content-Transfer-Encoding: base64\n\n{b64(PDF)}\n"
                    for n in range(5))
    raw = (f"From: a@example.com\nSubject: files\nMessage-ID: <files@t>\nContent-Type: multipart/mixed; boundary=x\n\n"
           f"--x\nContent-Type: text/plain\n\nfive files\n{parts}--x--\n").encode()
    outcome = take(factory, settings, raw, mailbox="import")
    reread(session)
    submission = session.scalar(select(Submission).where(Submission.reference == outcome.reference))
    assert [a.display_name for a in submission.attachments] == ["f0.pdf", "f1.pdf", "f2.pdf"]
    skipped = json.loads(submission.channel_facts)["attachments_not_stored"]
    assert [(f["filename"], f["reason"]) for f in skipped] == [("f3.pdf", "超过 3 个附件的上限"),
                                                              ("f4.pdf", "超过 3 个附件的上限")]


def test_without_a_bulletin_mail_waits_in_quarantine(factory, settings, session):
    outcome = take(factory, settings, CORPUS["utf8_plain"].raw, mailbox="import")
    assert (outcome.status, outcome.reason) == ("quarantined", NO_BULLETIN)
    assert count(session, Submission) == 0


def test_a_message_that_cannot_be_registered_is_quarantined_not_retried_forever(
        factory, settings, session, bulletin, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(inbound, "create_submission", broken)
    outcome = take(factory, settings, CORPUS["utf8_plain"].raw, mailbox="import")
    assert (outcome.status, outcome.reason) == ("quarantined", "登记失败（OSError），请人工处理")
    reread(session)
    row = session.get(InboundMessage, outcome.inbound_id)
    assert (row.subject, row.sender) == ("关于第5项整改的意见", "zhang.san@example.com")


def test_arrival_time_comes_from_the_newest_received_header(factory, settings, session, bulletin, tmp_path):
    raw = (b"Received: from b by c; Wed, 02 Apr 2025 08:00:00 +0800\nReceived: from a by b; Tue, 01 Apr 2025 "
           b"23:00:00 +0800\nFrom: x@example.com\nDate: Mon, 31 Mar 2025 12:00:00 +0800\nSubject: t\n\nbody text\n")
    (tmp_path / "m.eml").write_bytes(raw)
    unstamped = b"From: y@example.com\nDate: Mon, 31 Mar 2025 12:00:00 +0800\nSubject: u\n\nno server stamp\n"
    (tmp_path / "n.eml").write_bytes(unstamped)
    before = utcnow()
    import_paths(factory, settings, [tmp_path / "m.eml", tmp_path / "n.eml"])
    reread(session)
    stamped, other = session.scalars(select(Submission).order_by(Submission.id)).all()
    assert stamped.received_at.astimezone(settings.tz).isoformat() == "2025-04-02T08:00:00+08:00"
    assert other.received_at >= before  # the sender's Date: is not trusted as the day of receipt


def test_unreadable_paths_are_reported(factory, settings, bulletin, tmp_path):
    report = import_paths(factory, settings, [tmp_path / "nowhere.eml"])
    assert report.errors and "无法读取" in report.errors[0]


def test_raw_bytes_are_kept_exactly(factory, settings, session, bulletin):
    raw = CORPUS["raw_8bit_headers"].raw
    outcome = take(factory, settings, raw, mailbox="import")
    reread(session)
    row = session.get(InboundMessage, outcome.inbound_id)
    assert row.raw == raw and row.size == len(raw)
    assert message_from_bytes(row.raw, policy=policy.default) is not None


def test_fetch_without_a_configured_server_records_nothing(factory, settings, session):
    assert fetch_once(factory, settings).error == "未配置 IMAP 服务器（FEEDBACK_IMAP_HOST）"
    assert count(session, MailboxState) == 0

