"""A message over the size limit, fetched from a real IMAP server (Dovecot): kept whole in the attachment
store, fetched in parts and never held whole, quarantined with the reason, known again by its SHA-256,
downloaded whole by staff (audited), and no file left when its row cannot be stored."""
from __future__ import annotations

import json
import tracemalloc

import pytest
from sqlalchemy import func, select

from feedback_app.audit.log import verify
from feedback_app.core.models import AuditEntry, InboundMessage
from feedback_app.intake.attachments import path_of
from feedback_app.mailbox import imap
from feedback_app.mailbox.imap import PART_BYTES, fetch_once
from feedback_app.mailbox.importer import import_paths
from feedback_app.mailbox.original import PARTIAL_DIR
from feedback_app.mailbox.parse import header_block
from tests.auth.helpers import create_staff, csrf_of, login
from tests.conftest import make_settings
from tests.mail.corpus import CORPUS
from tests.mail.corpus.encode import crlf
from tests.mail.oversized import (
    LIMIT,
    Recorder,
    append,
    big_message,
    inbound_rows,
    kept,
    kept_files,
    part_offsets,
    partial_files,
    refusing_inserts,
    sha256,
)
from tests.mail.test_imap_fetch import server_flags

REASON = "邮件过大（{size:,} 字节，上限 {limit:,} 字节），原件已完整保存，请下载原件查看"


@pytest.fixture
def settings(database_url, tmp_path, dovecot):
    return make_settings(database_url, tmp_path, mail_max_bytes=LIMIT, csrf_enabled=True,
                         **dovecot.settings_overrides())


@pytest.fixture
def factory(app):
    with app.app_context():
        yield app.extensions["db_sessionmaker"]


@pytest.fixture
def store(settings):
    return settings.attachments_path


def reread(session):
    session.commit()
    session.expire_all()


def the_original(session) -> InboundMessage:
    reread(session)
    [row] = session.scalars(select(InboundMessage).where(InboundMessage.original_name.is_not(None))).all()
    return row


def count(session, model) -> int:
    reread(session)
    return session.scalar(select(func.count()).select_from(model))


def test_an_oversized_message_is_kept_whole_and_quarantined(factory, settings, session, bulletin, dovecot, store,
                                                            monkeypatch, tmp_path):
    monkeypatch.setattr(imap, "PART_BYTES", 64 * 1024)  # several parts from a message of this size
    raw = big_message(300 * 1024, "whole")
    uid = append(settings, raw)
    append(settings, crlf(CORPUS["utf8_plain"].raw))  # an ordinary one beside it, fetched whole as before
    recorder = Recorder()
    report = fetch_once(factory, settings, connector=recorder)
    assert report.error is None, dovecot.log()
    assert (report.fetched, report.ingested, report.quarantined) == (2, 1, 1)

    row = the_original(session)
    assert (row.status, row.reason) == ("quarantined", REASON.format(size=len(raw), limit=LIMIT))
    assert (row.uid, row.original_size, row.sha256) == (uid, len(raw), sha256(raw))
    assert row.raw == header_block(raw) and row.size == len(row.raw) < 1024  # the header alone in the database
    assert (row.subject, row.sender, row.message_id) == ("现场视频材料 whole", "zhou@example.com",
                                                         "<whole@oversized.test>")
    assert kept(store, row) == raw  # byte for byte
    assert kept_files(store) == [path_of(store, row.original_name)] and partial_files(store) == []
    assert row.flagged_at is not None and imap.KEYWORD.encode() in server_flags(settings)[uid]

    # fetched in parts, each following the last, never whole
    parts = part_offsets(recorder.fetches(uid))
    assert parts == [(n * 64 * 1024, 64 * 1024) for n in range(5)]

    # fetched again: nothing new; the same bytes under another UID: the same message, no second file
    assert (fetch_once(factory, settings).fetched, count(session, InboundMessage)) == (0, 2)
    again_uid = append(settings, raw)
    again = fetch_once(factory, settings)
    assert (again.error, again.fetched, again.already_known, again.quarantined) == (None, 1, 1, 0)
    assert count(session, InboundMessage) == 2
    assert kept_files(store) == [path_of(store, row.original_name)] and partial_files(store) == []
    assert imap.KEYWORD.encode() in server_flags(settings)[again_uid]

    # and the same bytes from a file
    (tmp_path / "same.eml").write_bytes(raw)
    imported = import_paths(factory, settings, [tmp_path / "same.eml"])
    assert (imported.read, imported.already_known, imported.quarantined) == (1, 1, 0)
    assert count(session, InboundMessage) == 2 and len(kept_files(store)) == 1 and partial_files(store) == []


@pytest.mark.parametrize("size", [6 * PART_BYTES, 6 * PART_BYTES + 12_345])
def test_a_large_message_is_fetched_in_parts_and_never_held_whole(size, factory, settings, session, bulletin,
                                                                  dovecot, store):
    raw = big_message(size, f"parts-{size}")
    uid = append(settings, raw)
    recorder = Recorder()
    tracemalloc.start()
    try:
        report = fetch_once(factory, settings, connector=recorder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.error is None, dovecot.log()
    # parts of PART_BYTES until one comes back short (empty when the size is a multiple of PART_BYTES)
    assert part_offsets(recorder.fetches(uid)) == [(n * PART_BYTES, PART_BYTES) for n in range(7)]
    # what one part costs on its way through imaplib, whatever the message's size
    assert peak < 3 * PART_BYTES, f"{peak:,} bytes at the peak for a message of {size:,}"
    row = the_original(session)
    assert (row.original_size, row.sha256, row.status) == (size, sha256(raw), "quarantined")
    assert kept(store, row) == raw


def test_staff_download_the_whole_message_and_it_is_audited(client, factory, settings, session, bulletin, dovecot,
                                                             store):
    raw = big_message(300 * 1024, "download")
    append(settings, raw)
    assert fetch_once(factory, settings).quarantined == 1
    row = the_original(session)
    create_staff(session, username="deng.ji", role="clerk")
    login(client, "deng.ji")
    page = f"/staff/mail/{row.id}"

    listing = client.get("/staff/mail/").get_data(as_text=True)
    assert row.reason in listing and "现场视频材料 download" in listing
    html = client.get(page).get_data(as_text=True)
    assert row.reason in html and f"{len(raw):,} 字节（原件已完整保存，可下载）" in html and "下载邮件原件" in html
    token = csrf_of(html)
    response = client.post(page + "/raw", data=token)
    assert response.status_code == 200 and response.data == raw
    assert response.headers["Content-Length"] == str(len(raw))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f"attachment; filename=mail-{row.id}.eml"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in response.headers["Cache-Control"]

    streamed = client.post(page + "/raw", data=token, buffered=False)  # from the file, a piece at a time
    try:
        pieces = list(streamed.response)
    finally:
        streamed.close()
    assert streamed.is_streamed and b"".join(pieces) == raw and max(map(len, pieces)) <= 64 * 1024

    reread(session)
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "mail_raw_downloaded")).all()
    assert [(e.target, e.actor, json.loads(e.details)) for e in entries] == 2 * [
        (f"inbound:{row.id}", "deng.ji", {"sha256": sha256(raw)})]
    assert verify(session, settings).broken_id is None

    # the file gone: the page and the download say so, in Chinese; nothing more is audited
    path_of(store, row.original_name).unlink()
    html = client.get(page).get_data(as_text=True)
    assert "原件文件已不存在" in html and "下载邮件原件（.eml）" not in html
    missing = client.post(page + "/raw", data=token)
    assert missing.status_code == 404 and "邮件原件文件已不存在" in missing.get_data(as_text=True)

    # the row gone
    session.delete(session.get(InboundMessage, row.id))
    session.commit()
    gone = client.post(page + "/raw", data=token)
    assert gone.status_code == 404 and "这封邮件的记录已不存在" in gone.get_data(as_text=True)
    reread(session)
    assert session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "mail_raw_downloaded")) == 2


def test_no_file_is_left_when_the_row_cannot_be_stored(app, factory, settings, session, bulletin, dovecot, store):
    raw = big_message(300 * 1024, "refused")
    append(settings, raw)
    engine = app.extensions["db_engine"]
    with refusing_inserts(engine):
        report = fetch_once(factory, settings)
    assert report.error.startswith("数据库错误"), report.error
    assert (store / PARTIAL_DIR).is_dir()  # the message was written there before its row was refused
    assert inbound_rows(engine) == [] and kept_files(store) == [] and partial_files(store) == []

    report = fetch_once(factory, settings)  # the database takes it now
    assert (report.error, report.quarantined) == (None, 1)
    row = the_original(session)
    assert kept_files(store) == [path_of(store, row.original_name)] and kept(store, row) == raw
    assert partial_files(store) == []


class WholeEachTime:
    """A real connection to Dovecot behind a server that ignores the part asked for and sends the whole
    message at every partial fetch: a download that trusted it would never end."""

    def __init__(self, conn):
        self.conn = conn

    def uid(self, command, *args):
        if command == "FETCH" and "BODY.PEEK[]<" in args[-1]:
            args = (*args[:-1], "(UID BODY.PEEK[])")
        return self.conn.uid(command, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_a_server_sending_more_than_it_announced_is_stopped_and_leaves_no_file(factory, settings, session, bulletin,
                                                                               dovecot, store, monkeypatch):
    monkeypatch.setattr(imap, "PART_BYTES", 64 * 1024)
    append(settings, big_message(300 * 1024, "endless"))
    report = fetch_once(factory, settings, connector=lambda s: WholeEachTime(imap.connect(s)))
    assert report.error and "超过它报告的" in report.error
    assert count(session, InboundMessage) == 0
    assert (store / PARTIAL_DIR).is_dir() and list((store / PARTIAL_DIR).iterdir()) == []  # begun, then removed
