"""A message over the size limit in the files ``mail import`` reads (.eml, mbox, Maildir): copied whole to
the attachment store in chunks, never held whole, quarantined with the reason, known again by its
SHA-256; no file left when its row cannot be stored; and the migration of its columns, down and up."""
from __future__ import annotations

import mailbox
import tracemalloc

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from feedback_app.core.models import InboundMessage
from feedback_app.intake.attachments import path_of
from feedback_app.mailbox.importer import import_paths
from feedback_app.mailbox.original import CHUNK_BYTES, PARTIAL_DIR
from feedback_app.mailbox.parse import header_block
from feedback_app.migrations import alembic_config, upgrade
from tests.conftest import make_settings
from tests.mail.corpus import CORPUS
from tests.mail.oversized import (
    LIMIT,
    big_message,
    inbound_rows,
    kept,
    kept_files,
    partial_files,
    refusing_inserts,
    sha256,
)

REASON = "邮件过大（{size:,} 字节，上限 {limit:,} 字节），原件已完整保存，请下载原件查看"


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, mail_max_bytes=LIMIT)


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


def count(session) -> int:
    reread(session)
    return session.scalar(select(func.count()).select_from(InboundMessage))


def write(kind: str, messages: list[bytes], directory):
    """The messages as ``kind`` files; the paths to import."""
    directory.mkdir()
    if kind == "eml":
        for n, raw in enumerate(messages):
            (directory / f"{n}.eml").write_bytes(raw)
        return [directory]
    if kind == "mbox":
        box = mailbox.mbox(directory / "inbox.mbox")
        for raw in messages:
            box.add(raw)
        box.close()
        return [directory / "inbox.mbox"]
    folder = mailbox.Maildir(directory / "Maildir")
    for raw in messages:
        folder.add(raw)
    folder.close()
    return [directory / "Maildir"]


@pytest.mark.parametrize("kind", ["eml", "mbox", "maildir"])
def test_an_oversized_file_is_kept_whole_and_quarantined(kind, factory, settings, session, bulletin, store,
                                                         tmp_path):
    raw = big_message(300 * 1024, f"import-{kind}")
    paths = write(kind, [CORPUS["utf8_plain"].raw, raw, CORPUS["gbk_base64"].raw], tmp_path / "mail")
    report = import_paths(factory, settings, paths)
    assert (report.read, report.ingested, report.quarantined, report.errors) == (3, 2, 1, [])

    reread(session)
    [row] = session.scalars(select(InboundMessage).where(InboundMessage.original_name.is_not(None))).all()
    assert (row.status, row.reason) == ("quarantined", REASON.format(size=len(raw), limit=LIMIT))
    assert (row.mailbox, row.original_size, row.sha256) == ("import", len(raw), sha256(raw))
    assert row.raw == header_block(raw) and row.subject == f"现场视频材料 import-{kind}"
    assert kept(store, row) == raw  # byte for byte
    assert kept_files(store) == [path_of(store, row.original_name)] and partial_files(store) == []

    again = import_paths(factory, settings, paths)
    assert (again.read, again.already_known, again.quarantined, again.ingested) == (3, 3, 0, 0)
    assert count(session) == 3
    assert kept_files(store) == [path_of(store, row.original_name)] and partial_files(store) == []


@pytest.mark.parametrize("kind", ["eml", "mbox"])
def test_a_large_file_is_copied_in_chunks_never_held_whole(kind, factory, settings, session, bulletin, store,
                                                           tmp_path):
    size = 6 * CHUNK_BYTES + 777
    raw = big_message(size, f"chunks-{kind}")
    paths = write(kind, [raw], tmp_path / "mail")
    tracemalloc.start()
    try:
        report = import_paths(factory, settings, paths)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (report.quarantined, report.errors) == (1, [])
    assert peak < 3 * CHUNK_BYTES, f"{peak:,} bytes at the peak for a message of {size:,}"
    reread(session)
    row = session.scalars(select(InboundMessage)).one()
    assert (row.original_size, row.sha256) == (size, sha256(raw)) and kept(store, row) == raw


def test_no_file_is_left_when_the_row_cannot_be_stored(app, factory, settings, session, bulletin, store, tmp_path):
    raw = big_message(300 * 1024, "import-refused")
    (tmp_path / "big.eml").write_bytes(raw)
    engine = app.extensions["db_engine"]
    with refusing_inserts(engine), pytest.raises(SQLAlchemyError, match="refused"):
        import_paths(factory, settings, [tmp_path / "big.eml"])
    assert (store / PARTIAL_DIR).is_dir()  # the message was written there before its row was refused
    assert inbound_rows(engine) == [] and kept_files(store) == [] and partial_files(store) == []

    report = import_paths(factory, settings, [tmp_path / "big.eml"])
    assert report.quarantined == 1
    assert len(kept_files(store)) == 1 and partial_files(store) == []


def test_the_migration_goes_down_and_up_again(app, factory, settings, session, bulletin, store, tmp_path):
    raw = big_message(300 * 1024, "migration")
    (tmp_path / "big.eml").write_bytes(raw)
    import_paths(factory, settings, [tmp_path / "big.eml"])
    engine = app.extensions["db_engine"]
    session.close()

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("inbound_message")}

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(engine).get_indexes("inbound_message")}

    assert {"original_name", "original_size"} <= columns() and "ix_inbound_message_original_name" in indexes()
    try:
        command.downgrade(alembic_config(engine), "0010")
        assert not {"original_name", "original_size"} & columns()
        assert "ix_inbound_message_original_name" not in indexes()
        assert [r["sha256"] for r in _plain_rows(engine)] == [sha256(raw)]  # the row itself stays
    finally:
        upgrade(engine)
    assert {"original_name", "original_size"} <= columns() and "ix_inbound_message_original_name" in indexes()
    [row] = inbound_rows(engine)
    assert (row["original_name"], row["original_size"], row["status"]) == (None, None, "quarantined")
    assert len(kept_files(store)) == 1  # the file stays in the store


def _plain_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT id, sha256 FROM inbound_message"))]
