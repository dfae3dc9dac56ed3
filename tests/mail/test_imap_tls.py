"""``mail fetch`` over TLS against a real Dovecot that refuses logins without it: implicit TLS and STARTTLS
work with the office's CA (``FEEDBACK_IMAP_CA_FILE``); a certificate that CA did not sign stops the fetch
before the password is sent, with a message staff can act on, recorded on the mailbox's health."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from feedback_app.core.models import InboundMessage, MailboxState, Submission
from feedback_app.mailbox.health import mailbox_key
from feedback_app.mailbox.imap import fetch_once
from tests.conftest import make_settings
from tests.mail.corpus import CORPUS

UNTRUSTED = "IMAP 服务器证书验证失败：证书不是由受信任的 CA 签发的（可用 FEEDBACK_IMAP_CA_FILE 指定受信任的 CA）"
UNREADABLE = "无法读取 FEEDBACK_IMAP_CA_FILE 指定的 CA 证书文件"


@pytest.fixture
def settings(database_url, tmp_path, dovecot_tls):
    return make_settings(database_url, tmp_path, **dovecot_tls.settings_overrides())


@pytest.fixture
def factory(app):
    with app.app_context():
        yield app.extensions["db_sessionmaker"]


def logins(dovecot) -> list[str]:
    return [line for line in dovecot.log().splitlines() if "Login: user=<app>" in line]


def counts(session) -> tuple[int, int]:
    session.commit()
    return (session.scalar(select(func.count()).select_from(Submission)),
            session.scalar(select(func.count()).select_from(InboundMessage)))


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_fetch_over_tls_ingests_the_mail(factory, settings, session, bulletin, dovecot_tls, security):
    dovecot_tls.deliver(CORPUS["utf8_plain"].raw)
    report = fetch_once(factory, replace(settings, **dovecot_tls.tls_overrides(security)))
    assert (report.error, report.fetched, report.ingested) == (None, 1, 1), dovecot_tls.log()
    assert counts(session) == (1, 1)
    [login] = logins(dovecot_tls)
    assert ", TLS," in login  # not ", secured,": Dovecot would take a plain login from loopback too


@pytest.mark.parametrize("security, trust, error", [
    ("tls", "stranger", UNTRUSTED),
    ("starttls", "stranger", UNTRUSTED),
    ("tls", "system", UNTRUSTED),  # a private CA is in no system store
    ("tls", "missing", UNREADABLE),
])
def test_a_certificate_not_from_the_trusted_ca_stops_the_fetch(factory, settings, session, bulletin, dovecot_tls,
                                                               tls_files, tmp_path, security, trust, error):
    ca_file = {"stranger": tls_files.stranger_ca, "system": None, "missing": tmp_path / "no-such-ca.pem"}[trust]
    dovecot_tls.deliver(CORPUS["utf8_plain"].raw)
    overrides = dovecot_tls.tls_overrides(security) | {"imap_ca_file": ca_file}
    report = fetch_once(factory, replace(settings, **overrides))
    assert report.error == error
    assert counts(session) == (0, 0)
    assert logins(dovecot_tls) == []  # the password never went out
    state = session.get(MailboxState, mailbox_key(settings))
    assert state.last_error == error and state.failing_since is not None and state.last_success_at is None
