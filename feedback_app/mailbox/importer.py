"""``mail import``: .eml files, mbox files and Maildir folders, through the same steps as IMAP.

Files are only read. A message already known (the same bytes, from any source) is not registered
again, so importing the same files twice, or files also fetched over IMAP, registers nothing twice.
A message over ``mail_max_bytes`` is copied in chunks to the attachment store, kept whole and
quarantined (see ``original``).
"""
from __future__ import annotations

import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from feedback_app.core.config import Settings
from feedback_app.core.models import InboundStatus
from feedback_app.mailbox.draft import IMPORT_MAILBOX
from feedback_app.mailbox.inbound import Outcome, finish_stored, pause, take, take_original
from feedback_app.mailbox.original import CHUNK_BYTES, Original, Readable, copy, receiving, tidy
from feedback_app.mailbox.parse import header_block

log = logging.getLogger("feedback_app.mail")

HEAD_LIMIT = 256 * 1024


@dataclass
class ImportReport:
    read: int = 0
    ingested: int = 0
    quarantined: int = 0
    already_known: int = 0
    resumed: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        if not outcome.done_now:
            self.already_known += 1
        elif outcome.status == InboundStatus.ingested.value:
            self.ingested += 1
        else:
            self.quarantined += 1


@dataclass(frozen=True)
class Source:
    raw: bytes  # the whole message, or the header block of one kept whole in the store
    size: int  # the whole message's size
    label: str
    original: Original | None = None  # a message over the size limit, copied whole to the store


def is_maildir(path: Path) -> bool:
    return path.is_dir() and ((path / "cur").is_dir() or (path / "new").is_dir())


def is_mbox(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(5) == b"From "


def _read(source: Readable, max_bytes: int, store: Path, label: str) -> Source:
    """One message: read into memory up to ``max_bytes``; past that, copied in chunks to the store."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = source.read(min(CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            return Source(b"".join(chunks), size, label)
        chunks.append(chunk)
        size += len(chunk)
    with receiving(store) as receiver:
        for chunk in chunks:
            receiver.write(chunk)
        chunks.clear()
        copy(source, receiver)
        original = receiver.finish()
    return Source(original.head, original.size, label, original)


def _read_file(path: Path, max_bytes: int, store: Path) -> Source:
    with open(path, "rb") as fh:
        return _read(fh, max_bytes, store, path.name)


def messages(path: Path, max_bytes: int, store: Path) -> Iterator[Source]:
    """Every message under ``path``: a Maildir (new/ then cur/), a folder of .eml files, an mbox, an .eml.
    One over ``max_bytes`` is copied to a temporary file in ``store`` (the attachment store), for
    ``take_original`` to keep or remove."""
    if is_maildir(path):
        for sub in ("new", "cur"):
            folder = path / sub
            if folder.is_dir():
                for item in sorted(folder.iterdir()):
                    if item.is_file() and not item.name.startswith("."):
                        yield _read_file(item, max_bytes, store)
    elif path.is_dir():
        for item in sorted(path.glob("*.eml")):
            yield _read_file(item, max_bytes, store)
    elif is_mbox(path):
        box = mailbox.mbox(path, create=False)
        try:
            for n, key in enumerate(box.iterkeys(), start=1):
                with box.get_file(key) as fh:  # the message without its "From " line
                    yield _read(fh, max_bytes, store, f"{path.name}#{n}")
        finally:
            box.close()
    else:
        yield _read_file(path, max_bytes, store)


_RECEIVED = re.compile(rb"^Received:(.*?)(?=^\S)", re.M | re.S | re.I)


def arrival(raw: bytes) -> datetime | None:
    """When the message reached its last server: the date of its newest Received: header. (The Date:
    header is what the sender's program claims, so it is not used: without a server's stamp, the
    message counts as received now.)"""
    head = header_block(raw[:HEAD_LIMIT]) + b"\nX:"
    received = _RECEIVED.search(head)
    if not received or b";" not in received.group(1):
        return None
    try:
        when = parsedate_to_datetime(received.group(1).rpartition(b";")[2].decode("ascii", "replace").strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else None


def import_paths(factory: sessionmaker, settings: Settings, paths: list[Path]) -> ImportReport:
    """Store and ingest every message in ``paths``; unreadable files are reported, not fatal."""
    report = ImportReport()
    tidy(factory, settings.attachments_path)
    for outcome in finish_stored(factory, settings):
        report.resumed += 1
        report.count(outcome)
    for path in paths:
        try:
            for source in messages(path, settings.mail_max_bytes, settings.attachments_path):
                report.read += 1
                if source.original is not None:
                    report.count(take_original(factory, settings, source.original, mailbox=IMPORT_MAILBOX,
                                               received_at=arrival(source.raw)))
                else:
                    report.count(take(factory, settings, source.raw, mailbox=IMPORT_MAILBOX,
                                      received_at=arrival(source.raw)))
                pause()
        except OSError as exc:
            report.errors.append(f"{path}：无法读取（{exc.strerror or type(exc).__name__}）")
        except mailbox.Error as exc:
            report.errors.append(f"{path}：不是可读取的邮箱文件（{type(exc).__name__}）")
    return report
