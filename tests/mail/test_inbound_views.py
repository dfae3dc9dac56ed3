"""The quarantine pages: clerks, reviewers and admins see and release; handlers get 403."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from feedback_app.audit.log import verify
from feedback_app.auth.accounts import create_unit
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.models import AuditEntry, InboundMessage, OutboxMessage, Submission
from feedback_app.mailbox.inbound import NO_BULLETIN, take
from tests.auth.helpers import create_staff, csrf_of, login
from tests.conftest import SEED, SEED_SLUG, make_settings
from tests.mail.corpus import CORPUS, OVERSIZE_LIMIT


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, mail_max_bytes=OVERSIZE_LIMIT, csrf_enabled=True)


@pytest.fixture
def quarantined(app, bulletin):
    """Ids of quarantined corpus messages by name."""
    factory = app.extensions["db_sessionmaker"]
    with app.app_context():
        return {name: take(factory, app.extensions["settings"], CORPUS[name].raw, mailbox="import").inbound_id
                for name in ("auto_reply", "bounce", "many_parts", "malformed_garbage", "oversized")}


def reread(session):
    session.commit()
    session.expire_all()


def test_clerk_sees_the_quarantine_and_a_message(client, session, quarantined):
    create_staff(session, username="deng.ji", role="clerk")
    assert login(client, "deng.ji").status_code in (302, 303)
    page = client.get("/staff/mail/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "邮件隔离区" in html and "隔离中的邮件（共 5 封）" in html
    assert "自动回复: 已收到您的来信" in html and "MIME 部分过多（超过 200 个）" in html and "文件导入" in html

    detail = client.get(f"/staff/mail/{quarantined['auto_reply']}").get_data(as_text=True)
    assert "我正在休假，回来后回复。" in detail and "放行登记" in detail
    assert "不发送受理回执：自动发送的邮件，不回复" in detail
    many = client.get(f"/staff/mail/{quarantined['many_parts']}")
    assert many.status_code == 200 and "part 0" in many.get_data(as_text=True)


def test_clerk_releases_a_message_and_it_is_audited(client, session, quarantined, settings):
    clerk = create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    path = f"/staff/mail/{quarantined['auto_reply']}"
    response = client.post(path + "/release", data=csrf_of(client.get(path).get_data(as_text=True)))
    assert response.status_code == 303
    reread(session)
    row = session.get(InboundMessage, quarantined["auto_reply"])
    submission = session.get(Submission, row.submission_id)
    assert row.status == "released" and row.reason.startswith("自动回复")
    assert response.headers["Location"].endswith(f"/staff/submissions/{submission.reference}")
    assert (submission.channel, submission.body, submission.email) == ("email", "我正在休假，回来后回复。", None)
    facts = json.loads(submission.channel_facts)
    assert facts["released"] == {"by": "deng.ji", "quarantine_reason": row.reason}
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "mail_released"))
    assert (entry.actor_id, entry.target) == (clerk.id, submission.reference)
    assert json.loads(entry.details)["inbound_id"] == row.id
    assert verify(session, settings).broken_id is None

    again = client.post(path + "/release", data=csrf_of(client.get(path).get_data(as_text=True)))
    assert again.status_code == 409 and "不在隔离区" in again.get_data(as_text=True)
    reread(session)
    assert session.scalar(select(func.count()).select_from(Submission)) == 1


def test_release_waits_for_a_bulletin_and_may_acknowledge_the_sender(app, client, session, settings):
    factory = app.extensions["db_sessionmaker"]
    with app.app_context():
        first = take(factory, settings, CORPUS["utf8_plain"].raw, mailbox="import")
        second = take(factory, settings, CORPUS["gbk_base64"].raw, mailbox="import")
    assert first.reason == second.reason == NO_BULLETIN
    create_staff(session, username="shen.he", role="reviewer", totp=True)
    login(client, "shen.he")
    path = f"/staff/mail/{first.inbound_id}"
    html = client.get(path).get_data(as_text=True)
    assert 'name="acknowledge" value="y" checked' in html and "zhang.san@example.com" in html
    refused = client.post(path + "/release", data={**csrf_of(html), "acknowledge": "y"})
    assert refused.status_code == 409 and NO_BULLETIN in refused.get_data(as_text=True)

    import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
    session.commit()
    assert client.post(path + "/release", data={**csrf_of(html), "acknowledge": "y"}).status_code == 303
    other = f"/staff/mail/{second.inbound_id}"
    assert client.post(other + "/release", data=csrf_of(client.get(other).get_data(as_text=True))).status_code == 303

    reread(session)
    acknowledged = session.get(Submission, session.get(InboundMessage, first.inbound_id).submission_id)
    silent = session.get(Submission, session.get(InboundMessage, second.inbound_id).submission_id)
    assert (acknowledged.email, acknowledged.reply_by, acknowledged.item_number) == (
        "zhang.san@example.com", "email", 5)
    assert (silent.email, silent.reply_by) == (None, "online")
    assert json.loads(silent.channel_facts)["no_acknowledgement"] == "工作人员选择不发送回执"
    assert [m.recipient for m in session.scalars(select(OutboxMessage))] == ["zhang.san@example.com"]


def test_release_needs_the_form_token(client, session, quarantined):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    response = client.post(f"/staff/mail/{quarantined['bounce']}/release", data={})
    assert response.status_code == 400
    reread(session)
    assert session.get(InboundMessage, quarantined["bounce"]).status == "quarantined"


def test_handlers_are_refused_and_strangers_sent_to_login(client, session, quarantined):
    unit = create_unit(session, "区住房和城乡建设局")
    session.commit()
    create_staff(session, username="cheng.ban", role="handler", unit=unit)
    anonymous = client.get("/staff/mail/")
    assert anonymous.status_code == 302 and "/staff/login" in anonymous.headers["Location"]
    login(client, "cheng.ban")
    target = quarantined["bounce"]
    for path in ("/staff/mail/", f"/staff/mail/{target}"):
        assert client.get(path).status_code == 403
    token = csrf_of(client.get("/staff/").get_data(as_text=True))
    assert token, "the queue page carries a CSRF token"
    assert client.post(f"/staff/mail/{target}/raw", data=token).status_code == 403
    assert client.post(f"/staff/mail/{target}/release", data=token).status_code == 403
    reread(session)
    assert session.get(InboundMessage, target).status == "quarantined"


def test_the_raw_message_downloads_as_is_and_is_audited(client, session, quarantined):
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    target = quarantined["malformed_garbage"]
    refused = client.post(f"/staff/mail/{target}/raw")  # without the page's token: not downloaded
    assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    assert refused.data != CORPUS["malformed_garbage"].raw
    token = csrf_of(client.get(f"/staff/mail/{target}").get_data(as_text=True))
    response = client.post(f"/staff/mail/{target}/raw", data=token)
    assert response.status_code == 200 and response.data == CORPUS["malformed_garbage"].raw
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "attachment" in response.headers["Content-Disposition"]
    reread(session)
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "mail_raw_downloaded")) is not None
