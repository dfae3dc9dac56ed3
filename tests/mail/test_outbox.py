"""The outbox against a real SMTP server (aiosmtpd) on the loopback interface."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from feedback_app.core.database import utcnow
from feedback_app.core.models import OutboxMessage, OutboxStatus
from feedback_app.outbox.delivery import SendReport, connect, enqueue, failed_messages, send_due

CITIZEN = "citizen@example.com"
INTERNATIONAL = "用户@例子.中国"
ADDRESSES = (CITIZEN, INTERNATIONAL, "user@xn--fsqu00a.xn--fiqs8s", "zhang.san@example.org")


class Recorder:
    """Accepts every message, unless told to answer some RCPT commands with a given reply."""

    def __init__(self, rcpt_replies=()):
        self.rcpt_replies = list(rcpt_replies)
        self.envelopes = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


class LoopbackController(Controller):
    """A controller that may bind port 0 and learns the port it was given."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server():
    started = []

    def start(handler, **kwargs):
        controller = LoopbackController(handler, hostname="127.0.0.1", port=0, **kwargs)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


class RawLines(logging.Handler):
    """Formats each record as it is emitted, before the app's redacting handler rewrites it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(autouse=True)
def no_address_in_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="feedback_app.mail")
    raw = RawLines()
    logger = logging.getLogger("feedback_app.mail")
    logger.addHandler(raw)
    yield raw
    logger.removeHandler(raw)
    logged = "\n".join(raw.lines + [r.getMessage() for r in caplog.get_records("call")])
    for address in ADDRESSES:
        assert address not in logged


@pytest.fixture
def factory(app):
    return app.extensions["db_sessionmaker"]


def pointed(settings, port, **overrides):
    values = dict(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=2, outbox_max_attempts=3,
                  outbox_backoff_seconds=60, mail_from="黄浦区纪委监委 <noreply@example.gov.cn>")
    values.update(overrides)
    return replace(settings, **values)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def queue(session, recipient=CITIZEN, subject="您的意见已受理", body="您好：\n您提交的意见已登记，受理编号 HP2025-0001。"):
    message = enqueue(session, kind="receipt", recipient=recipient, subject=subject, body=body)
    session.commit()
    return message.id


def reload(session, message_id):
    session.rollback()
    return session.get(OutboxMessage, message_id)


def counting(calls):
    def smtp_factory(settings):
        calls.append(1)
        return connect(settings)
    return smtp_factory


def test_delivers_and_marks_sent(session, settings, factory, smtp_server, no_address_in_logs):
    handler = Recorder()
    port = smtp_server(handler).port
    message_id = queue(session, subject="关于巡察整改意见的回复：已受理")
    before = utcnow()

    report = send_due(factory, pointed(settings, port))

    assert report == SendReport(sent=1, retried=0, failed=0)
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == [CITIZEN]
    assert envelope.mail_from == "noreply@example.gov.cn"
    [received] = handler.messages()
    assert received["Subject"] == "关于巡察整改意见的回复：已受理"
    assert received["From"].addresses[0].display_name == "黄浦区纪委监委"
    assert received["From"].addresses[0].addr_spec == "noreply@example.gov.cn"
    assert received["To"] == CITIZEN
    assert received["Message-ID"].endswith("@example.gov.cn>")
    assert received["Date"].datetime is not None
    assert received.get_content() == "您好：\n您提交的意见已登记，受理编号 HP2025-0001。\n"
    message = reload(session, message_id)
    assert message.status == OutboxStatus.sent.value
    assert message.sent_at >= before
    assert message.last_error is None
    assert any("sent=1" in line for line in no_address_in_logs.lines)


def test_one_connection_per_batch(session, settings, factory, smtp_server):
    handler = Recorder()
    port = smtp_server(handler).port
    ids = [queue(session, body=f"第 {n} 封通知的正文。") for n in range(3)]
    calls = []

    report = send_due(factory, pointed(settings, port), smtp_factory=counting(calls))

    assert report.sent == 3 and len(calls) == 1
    assert [m.get_content() for m in handler.messages()] == [f"第 {n} 封通知的正文。\n" for n in range(3)]
    assert {reload(session, i).status for i in ids} == {OutboxStatus.sent.value}


def test_temporary_refusal_is_retried_later(session, settings, factory, smtp_server):
    handler = Recorder(rcpt_replies=["451 4.3.0 Mailbox temporarily unavailable"])
    port = smtp_server(handler).port
    message_id = queue(session)
    mail_settings = pointed(settings, port)
    now = utcnow()

    assert send_due(factory, mail_settings, now=now) == SendReport(sent=0, retried=1, failed=0)

    message = reload(session, message_id)
    assert message.status == OutboxStatus.pending.value
    assert message.attempts == 1
    assert message.next_attempt_at == now + timedelta(seconds=60)
    assert "451" in message.last_error
    assert handler.envelopes == []

    assert send_due(factory, mail_settings, now=now + timedelta(seconds=30)) == SendReport()
    assert send_due(factory, mail_settings, now=now + timedelta(seconds=61)) == SendReport(sent=1)

    message = reload(session, message_id)
    assert message.status == OutboxStatus.sent.value
    assert len(handler.envelopes) == 1


def test_permanent_refusal_fails_at_once(session, settings, factory, smtp_server):
    handler = Recorder(rcpt_replies=[f"550 5.1.1 <{CITIZEN}>: Recipient address rejected"])
    port = smtp_server(handler).port
    message_id = queue(session)
    next_id = queue(session, recipient="zhang.san@example.org")
    calls = []

    report = send_due(factory, pointed(settings, port), smtp_factory=counting(calls))

    assert report == SendReport(sent=1, failed=1)
    message = reload(session, message_id)
    assert (message.status, message.attempts) == (OutboxStatus.failed.value, 1)
    assert "550" in message.last_error and "Recipient address rejected" in message.last_error
    assert CITIZEN not in message.last_error
    assert [m.id for m in failed_messages(session)] == [message_id]
    assert reload(session, next_id).status == OutboxStatus.sent.value
    assert len(calls) == 1


@pytest.mark.timeout(60)  # a closed port must not hang the batch
def test_unreachable_server_defers_the_batch_until_it_gives_up(session, settings, factory):
    ids = [queue(session), queue(session, recipient="zhang.san@example.org")]
    mail_settings = pointed(settings, free_port())
    now = utcnow()

    report = send_due(factory, mail_settings, now=now)
    assert report == SendReport(retried=2)
    for message_id in ids:
        message = reload(session, message_id)
        assert (message.status, message.attempts) == (OutboxStatus.pending.value, 1)
        assert message.next_attempt_at == now + timedelta(seconds=60)
        assert message.last_error

    now += timedelta(seconds=61)
    assert send_due(factory, mail_settings, now=now) == SendReport(retried=2)
    assert reload(session, ids[0]).next_attempt_at == now + timedelta(seconds=120)

    now += timedelta(seconds=121)
    assert send_due(factory, mail_settings, now=now) == SendReport(failed=2)
    for message_id in ids:
        message = reload(session, message_id)
        assert (message.status, message.attempts) == (OutboxStatus.failed.value, 3)
    assert sorted(m.id for m in failed_messages(session)) == sorted(ids)


def test_backoff_is_capped_at_six_hours(session, settings, factory):
    message_id = queue(session)
    mail_settings = pointed(settings, free_port(), outbox_backoff_seconds=3600, outbox_max_attempts=10)
    now = utcnow()
    for _ in range(4):
        send_due(factory, mail_settings, now=now)
        now = reload(session, message_id).next_attempt_at
    message = reload(session, message_id)
    assert message.attempts == 4
    assert message.status == OutboxStatus.pending.value
    send_due(factory, mail_settings, now=now)
    assert reload(session, message_id).next_attempt_at == now + timedelta(hours=6)


def test_message_not_yet_due_is_left_alone(session, settings, factory, smtp_server):
    handler = Recorder()
    port = smtp_server(handler).port
    message_id = queue(session)
    message = session.get(OutboxMessage, message_id)
    message.next_attempt_at = utcnow() + timedelta(minutes=5)
    session.commit()
    calls = []

    assert send_due(factory, pointed(settings, port), smtp_factory=counting(calls)) == SendReport()

    assert calls == [] and handler.envelopes == []
    message = reload(session, message_id)
    assert (message.status, message.attempts) == (OutboxStatus.pending.value, 0)


def test_international_address_uses_smtputf8(session, settings, factory, smtp_server):
    handler = Recorder()
    port = smtp_server(handler, enable_SMTPUTF8=True).port
    message_id = queue(session, recipient=INTERNATIONAL, subject="意见回复")

    assert send_due(factory, pointed(settings, port)) == SendReport(sent=1)

    [envelope] = handler.envelopes
    assert envelope.smtp_utf8 is True
    assert envelope.rcpt_tos == [INTERNATIONAL]
    [received] = handler.messages()
    assert received["To"] == INTERNATIONAL
    assert received["Subject"] == "意见回复"
    assert reload(session, message_id).status == OutboxStatus.sent.value


def test_international_address_without_smtputf8(session, settings, factory, smtp_server):
    handler = Recorder()
    port = smtp_server(handler, enable_SMTPUTF8=False).port
    unicode_local = queue(session, recipient=INTERNATIONAL)
    ascii_local = queue(session, recipient="user@例子.中国")

    assert send_due(factory, pointed(settings, port)) == SendReport(sent=1, failed=1)

    message = reload(session, unicode_local)
    assert message.status == OutboxStatus.failed.value
    assert "SMTPUTF8" in message.last_error
    assert reload(session, ascii_local).status == OutboxStatus.sent.value
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == ["user@xn--fsqu00a.xn--fiqs8s"]
    assert not envelope.smtp_utf8


def test_concurrent_senders_never_send_a_message_twice(session, settings, factory, smtp_server):
    handler = Recorder()
    port = smtp_server(handler).port
    ids = [queue(session, body=f"编号 {n:02d}") for n in range(20)]
    mail_settings = pointed(settings, port)
    reports = []

    def run():
        reports.append(send_due(factory, mail_settings))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    bodies = sorted(m.get_content() for m in handler.messages())
    assert bodies == sorted(f"编号 {n:02d}\n" for n in range(20))
    assert sum(r.sent for r in reports) == 20
    assert {reload(session, i).status for i in ids} == {OutboxStatus.sent.value}


def test_cli_send_once(app, session, smtp_server):
    handler = Recorder()
    port = smtp_server(handler).port
    app.extensions["settings"] = pointed(app.extensions["settings"], port)
    message_id = queue(session)

    result = app.test_cli_runner().invoke(args=["outbox", "send"])

    assert result.exit_code == 0, result.output
    assert "已发送 1 封，稍后重试 0 封，失败 0 封" in result.output
    assert len(handler.envelopes) == 1
    assert reload(session, message_id).status == OutboxStatus.sent.value


def test_cli_watch_stops_on_sigterm(app, session, smtp_server):
    handler = Recorder()
    port = smtp_server(handler).port
    app.extensions["settings"] = pointed(app.extensions["settings"], port)
    queue(session)
    stray = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stray.append(1))
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM))
    try:
        timer.start()
        result = app.test_cli_runner().invoke(args=["outbox", "send", "--watch", "--interval", "0.2"])
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)

    assert result.exit_code == 0, result.output
    assert "已发送 1 封，稍后重试 0 封，失败 0 封" in result.output
    assert result.output.rstrip().endswith("已停止")
    assert stray == []
    assert len(handler.envelopes) == 1
