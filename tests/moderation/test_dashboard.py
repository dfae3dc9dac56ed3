"""The channel dashboard: today's numbers per channel, mailbox alarms, quarantine, outbox failures."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from feedback_app.audit.log import record
from feedback_app.auth.accounts import create_unit
from feedback_app.core.database import utcnow
from feedback_app.core.models import InboundMessage, MailboxState, OutboxMessage
from feedback_app.moderation.channels import channel_alarms
from tests.auth.helpers import client_as, create_staff
from tests.conftest import make_settings
from tests.factories import create_web_submission

DASHBOARD = "/staff/dashboard"
INBOX = "imap:yshjggj@gdd.gov.cn@mail.gdd.gov.cn/INBOX"


@pytest.fixture
def team(app, session):
    unit = create_unit(session, "区发展和改革局")
    session.commit()
    return {
        "clerk": create_staff(session, username="deng.ji", role="clerk"),
        "reviewer": create_staff(session, username="shen.he", role="reviewer", totp=True),
        "admin": create_staff(session, username="guan.li", role="admin", totp=True),
        "handler": create_staff(session, username="cheng.ban", role="handler", unit=unit),
    }


def text_of(html: str) -> str:
    main = re.search(r"<main\b[^>]*>(.*?)</main>", html, re.S).group(1)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", main)).split())


def failing_mailbox(session, since=timedelta(hours=2), name=INBOX):
    now = utcnow()
    session.add(MailboxState(mailbox=name, last_attempt_at=now - timedelta(minutes=1),
                             last_success_at=now - since - timedelta(minutes=5), failing_since=now - since,
                             last_error="LOGIN failed for yshjggj@gdd.gov.cn"))
    session.commit()


def quarantine(session, n):
    for i in range(n):
        session.add(InboundMessage(mailbox=INBOX, uidvalidity=1, uid=i + 1, sha256=f"{i:064d}", raw=b"x", size=1,
                                   status="quarantined", reason="自动回复"))
    session.add(InboundMessage(mailbox=INBOX, uidvalidity=1, uid=99, sha256="f" * 64, raw=b"x", size=1,
                               status="ingested"))
    session.commit()


def failed_mail(session, kind, attempts, recipient="cz@example.com"):
    session.add(OutboxMessage(kind=kind, recipient=recipient, subject="已收到您的意见", body="…", status="failed",
                              attempts=attempts, last_error=f"550 5.1.1 <{recipient}> user unknown"))
    session.commit()


def test_a_mailbox_failing_for_two_hours_raises_the_alarm(app, session, settings, team):
    failing_mailbox(session)
    assert channel_alarms(session, settings) == [
        "邮箱 yshjggj@gdd.gov.cn@mail.gdd.gov.cn/INBOX 已连续 120 分钟收取失败"]
    page = client_as(app, team["reviewer"]).get(DASHBOARD)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    alarm = re.search(r'<div class="form-errors alarms" role="alert" id="alarms">(.*?)</div>', html, re.S)
    assert alarm and "已连续 120 分钟收取失败" in alarm.group(1)
    assert "告警：已连续 120 分钟收取失败" in text_of(html)


def test_a_short_failure_is_shown_but_no_alarm(app, session, settings, team):
    failing_mailbox(session, since=timedelta(minutes=10))
    assert channel_alarms(session, settings) == []
    text = text_of(client_as(app, team["clerk"]).get(DASHBOARD).get_data(as_text=True))
    assert "收取失败 10 分钟（超过 30 分钟告警）" in text and "没有告警" in text


def test_the_alarm_threshold_is_a_setting(session, database_url, tmp_path, team):
    failing_mailbox(session, since=timedelta(minutes=10))
    assert channel_alarms(session, make_settings(database_url, tmp_path, mail_alarm_minutes=5)) == [
        "邮箱 yshjggj@gdd.gov.cn@mail.gdd.gov.cn/INBOX 已连续 10 分钟收取失败"]


def test_a_configured_mailbox_that_is_never_fetched_alarms(session, database_url, tmp_path, team):
    configured = make_settings(database_url, tmp_path, imap_host="mail.gdd.gov.cn")
    assert channel_alarms(session, configured) == ["已配置收件邮箱，但邮件收取从未运行"]
    session.add(MailboxState(mailbox=INBOX, last_attempt_at=utcnow() - timedelta(minutes=50),
                             last_success_at=utcnow() - timedelta(minutes=50)))
    session.commit()
    assert channel_alarms(session, configured) == ["邮件收取已 50 分钟没有运行"]


def test_quarantine_and_outbox_failures_are_counted(app, session, settings, team):
    quarantine(session, 3)
    failed_mail(session, "acknowledgement", 8)
    failed_mail(session, "reply", 5, recipient="li@example.com")
    session.add(OutboxMessage(kind="reply", recipient="ok@example.com", subject="s", body="b", status="sent",
                              attempts=1))
    session.commit()
    html = client_as(app, team["reviewer"]).get(DASHBOARD).get_data(as_text=True)
    text = text_of(html)
    assert "隔离区待处理邮件： 3 封" in text
    assert 'href="/staff/mail/"' in html
    assert "发送失败（已停止重试）： 2 封" in text
    assert "受理回执 8" in text and "答复 5" in text
    assert "cz@example.com" in text  # reviewers fix addresses


def test_handlers_see_counts_but_no_addresses(app, session, settings, team):
    failing_mailbox(session)
    failed_mail(session, "reply", 5, recipient="li@example.com")
    html = client_as(app, team["handler"]).get(DASHBOARD).get_data(as_text=True)
    text = text_of(html)
    assert "发送失败（已停止重试）： 1 封" in text and "答复 5" in text
    assert "li@example.com" not in html and "LOGIN failed" not in html
    assert "登记：" not in text  # handlers do not log calls


def test_today_counts_per_channel(app, session, settings, bulletin, team):
    with app.app_context():
        create_web_submission(session, settings, bulletin=bulletin)
        create_web_submission(session, settings, bulletin=bulletin, body="另一条关于第五项整改的意见建议。")
        old, _ = create_web_submission(session, settings, bulletin=bulletin, body="前天收到的意见，不计入今天。")
    old.received_at = utcnow() - timedelta(days=2)
    record(session, settings, action="intake_phone", actor="deng.ji", target="HP2026-000009")
    record(session, settings, action="intake_phone", actor="deng.ji", target="HP2026-000010")
    record(session, settings, action="intake_letter", actor="deng.ji", target="HP2026-000011")
    session.commit()
    html = client_as(app, team["clerk"]).get(DASHBOARD).get_data(as_text=True)
    rows = dict(re.findall(r'<tr id="channel-(\w+)"><th scope="row">[^<]+</th><td>(\d+)</td>', html))
    assert rows == {"web": "2", "phone": "2", "letter": "1", "visit": "0", "email": "0"}


@pytest.mark.parametrize("role", ["clerk", "reviewer", "handler", "admin"])
def test_every_staff_role_may_look(app, team, role):
    assert client_as(app, team[role]).get(DASHBOARD).status_code == 200


def test_anonymous_goes_to_the_login_page(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
