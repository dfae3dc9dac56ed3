"""``mail fetch`` against a real IMAP server (Dovecot): the corpus in, each message once, flags after commit."""
from __future__ import annotations

import json
import socket
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from feedback_app.core.database import utcnow
from feedback_app.core.models import InboundMessage, MailboxState, Submission
from feedback_app.mailbox.health import alarms, mailbox_health, mailbox_key
from feedback_app.mailbox.imap import KEYWORD, connect, fetch_once
from tests.conftest import make_settings
from tests.mail.corpus import CORPUS, INGESTED, OVERSIZE_LIMIT, QUARANTINED


@pytest.fixture
def settings(database_url, tmp_path, dovecot):
    return make_settings(database_url, tmp_path, mail_max_bytes=OVERSIZE_LIMIT, **dovecot.settings_overrides())


@pytest.fixture
def factory(app):
    with app.app_context():
        yield app.extensions["db_sessionmaker"]


def deliver_corpus(dovecot) -> None:
    for name, sample in CORPUS.items():
        dovecot.deliver(sample.raw, name)


def server_flags(settings) -> dict[int, bytes]:
    conn = connect(settings)
    try:
        conn.select("INBOX")
        typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK"
        return {int(line.split(b"UID ")[1].split()[0]): line for line in data if line}
    finally:
        conn.logout()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(session) -> tuple[int, int, Counter]:
    session.commit()
    rows = session.scalars(select(InboundMessage)).all()
    submissions = session.scalar(select(func.count()).select_from(Submission))
    return submissions, len(rows), Counter(r.status for r in rows)


def test_the_corpus_is_ingested_once_and_flagged_after(factory, settings, session, bulletin, dovecot):
    deliver_corpus(dovecot)
    report = fetch_once(factory, settings)
    assert report.error is None, dovecot.log()
    assert (report.fetched, report.ingested, report.quarantined) == (len(CORPUS), len(INGESTED), len(QUARANTINED))

    submissions, rows, by_status = snapshot(session)
    assert (submissions, rows) == (len(INGESTED), len(CORPUS))
    assert by_status == {"ingested": len(INGESTED), "quarantined": len(QUARANTINED)}
    all_rows = session.scalars(select(InboundMessage)).all()
    assert all(r.flagged_at is not None and r.mailbox == mailbox_key(settings) and r.uid > 0 for r in all_rows)
    assert len({r.uidvalidity for r in all_rows}) == 1
    flags = server_flags(settings)
    assert len(flags) == len(CORPUS) and all(KEYWORD.encode() in f and b"\\Seen" in f for f in flags.values())

    reasons = {r.message_id: r.reason for r in all_rows if r.status == "quarantined"}
    assert "邮件过大" in reasons["<oversized@corpus.test>"] and "MIME 部分过多" in reasons["<many-parts@corpus.test>"]
    assert reasons["<bounce@corpus.test>"].startswith("退信")
    oversized = next(r for r in all_rows if r.message_id == "<oversized@corpus.test>")
    assert oversized.size < 4096 and oversized.subject == "超大附件"  # only its header was fetched

    facts = [json.loads(s.channel_facts) for s in session.scalars(select(Submission))]
    assert {f["mailbox"] for f in facts} == {mailbox_key(settings)} and all(f["uid"] > 0 for f in facts)
    assert {f["message_id"] for f in facts} == {CORPUS_IDS[n] for n in INGESTED}

    again = fetch_once(factory, settings)
    assert (again.error, again.fetched, again.ingested, again.quarantined) == (None, 0, 0, 0)
    assert snapshot(session)[:2] == (len(INGESTED), len(CORPUS))


def test_new_mail_after_a_run_is_picked_up(factory, settings, session, bulletin, dovecot):
    dovecot.deliver(CORPUS["utf8_plain"].raw)
    assert fetch_once(factory, settings).ingested == 1
    dovecot.deliver(CORPUS["big5_qp"].raw)
    report = fetch_once(factory, settings)
    assert (report.fetched, report.ingested) == (1, 1)
    assert snapshot(session)[0] == 2


def test_unfinished_flags_are_completed_on_the_next_run(factory, settings, session, bulletin, dovecot):
    for name in ("utf8_plain", "gbk_base64", "bounce"):
        dovecot.deliver(CORPUS[name].raw, name)
    fetch_once(factory, settings)
    rows = session.scalars(select(InboundMessage).order_by(InboundMessage.uid)).all()
    # a crash after the commit, before the server was told (first row), and after it, before the record (second)
    conn = connect(settings)
    conn.select("INBOX")
    conn.uid("STORE", str(rows[0].uid), "-FLAGS.SILENT", f"({KEYWORD} \\Seen)")
    conn.logout()
    with factory() as s:
        s.execute(update(InboundMessage).where(InboundMessage.id.in_([rows[0].id, rows[1].id]))
                  .values(flagged_at=None))
        s.commit()

    report = fetch_once(factory, settings)
    assert (report.error, report.ingested, report.quarantined) == (None, 0, 0)
    session.commit()
    session.expire_all()
    assert snapshot(session)[:2] == (2, 3)
    assert all(r.flagged_at is not None for r in session.scalars(select(InboundMessage)))
    assert all(KEYWORD.encode() in f for f in server_flags(settings).values())


def test_mailbox_health_records_failure_and_recovery(factory, settings, session, bulletin, dovecot):
    unreachable = replace(settings, imap_port=closed_port())
    assert fetch_once(factory, unreachable).error == "无法连接 IMAP 服务器（ConnectionRefusedError）"
    assert fetch_once(factory, unreachable).error
    session.commit()
    state = session.get(MailboxState, mailbox_key(settings))
    first_failure = state.failing_since
    assert first_failure is not None and state.last_success_at is None and state.last_attempt_at >= first_failure
    assert state.last_error == "无法连接 IMAP 服务器（ConnectionRefusedError）"

    assert alarms(session, settings) == []  # not failing for long yet
    later = utcnow() + timedelta(minutes=settings.mail_alarm_minutes + 1)
    lines = alarms(session, settings, now=later)
    assert len(lines) == 1 and "收取失败" in lines[0] and "ConnectionRefusedError" in lines[0]
    health = mailbox_health(session, settings, now=later)
    assert health[0].mailbox == mailbox_key(settings) and health[0].alarm and health[0].configured

    dovecot.deliver(CORPUS["auto_reply"].raw)
    assert fetch_once(factory, settings).error is None
    session.commit()
    session.expire_all()
    state = session.get(MailboxState, mailbox_key(settings))
    assert state.failing_since is None and state.last_error is None and state.last_success_at is not None
    [health] = mailbox_health(session, settings)
    assert (health.alarm, health.quarantined, health.failing_since) == (False, 1, None)
    stale = utcnow() + timedelta(minutes=settings.mail_alarm_minutes + 5)
    assert "没有成功收取" in alarms(session, settings, now=stale)[0]


def test_a_wrong_password_is_reported_without_it(factory, settings, session, bulletin, dovecot):
    report = fetch_once(factory, replace(settings, imap_password="wrong-secret"))
    assert report.error == "IMAP 登录失败，请检查用户名和密码"
    session.commit()
    state = session.get(MailboxState, mailbox_key(settings))
    assert state.last_error == report.error and state.failing_since is not None


@pytest.mark.parametrize("security, allow, error", [
    ("plain", False, "不允许未加密的 IMAP 连接（需设置 FEEDBACK_IMAP_ALLOW_PLAIN）"),
    ("starttls", False, "IMAP 服务器不支持 STARTTLS"),
    ("tls", False, "TLS 连接失败"),
    ("smoke", True, "FEEDBACK_IMAP_SECURITY 只能是 tls、starttls 或 plain"),
])
def test_no_plain_text_login_unless_allowed(factory, settings, bulletin, dovecot, security, allow, error):
    report = fetch_once(factory, replace(settings, imap_security=security, imap_allow_plain=allow))
    assert report.error.startswith(error)
    assert "Login: user=<app>" not in dovecot.log()


def test_a_server_that_goes_away_is_reported(factory, settings, bulletin, dovecot):
    dovecot.process.kill()
    dovecot.process.wait()
    report = fetch_once(factory, settings)
    assert report.error.startswith("无法连接 IMAP 服务器")


CORPUS_IDS = {
    name: next((line.split(b":", 1)[1].strip().decode() for line in sample.raw.splitlines()
                if line.lower().startswith(b"message-id:")), None)
    for name, sample in CORPUS.items()
}
