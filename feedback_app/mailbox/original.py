"""Messages over the size limit, kept whole in the attachment store and never whole in memory.

The bytes are written as they arrive (from the IMAP server part by part, or from a file chunk by
chunk) to a temporary file in ``mail-partial/`` of the store, hashed on the way, and synced to disk.
The message's row is committed next (``inbound.store_original``), and only then is the file renamed
to its place (``attachments.path_of``). A file in its place therefore always has its row:

- storing the row fails: the temporary file is removed;
- the message is known already (the same SHA-256): this copy is removed, the earlier row and file stay;
- a crash before the commit leaves a temporary file that no row names: a later run removes it once it
  is ``STALE_SECONDS`` old (a younger one may be another run's, still being written or committed);
- a crash after the commit, before the rename: the next run finds the row and puts the file in place.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.models import InboundMessage
from feedback_app.intake.attachments import move_into_place, path_of
from feedback_app.mailbox.parse import header_block

log = logging.getLogger("feedback_app.mail")

PARTIAL_DIR = "mail-partial"
SUFFIX = ".part"
CHUNK_BYTES = 1024 * 1024  # read and written at a time
HEAD_BYTES = 256 * 1024  # of the message's start, kept in memory to find its header block
STALE_SECONDS = 3600
_NAME = re.compile(r"[0-9a-f]{32}")


def oversized_reason(size: int, limit: int) -> str:
    return f"邮件过大（{size:,} 字节，上限 {limit:,} 字节），原件已完整保存，请下载原件查看"


@dataclass(frozen=True)
class Original:
    """A message written whole to a temporary file, not yet in its place."""

    directory: Path  # the attachment store
    name: str
    size: int
    sha256: str
    head: bytes  # its header block

    @property
    def partial(self) -> Path:
        return partial_path(self.directory, self.name)


def partial_path(directory: Path, name: str) -> Path:
    return directory / PARTIAL_DIR / f"{name}{SUFFIX}"


class Receiver:
    """Bytes in, a temporary file out: counted and hashed as they come, the start kept for the header."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = uuid.uuid4().hex
        self.size = 0
        self._hash = hashlib.sha256()
        self._start = bytearray()
        self._path = partial_path(directory, self.name)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(self._path, "xb")  # noqa: SIM115 (closed by finish or discard)

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        if len(self._start) < HEAD_BYTES:
            self._start += data[:HEAD_BYTES - len(self._start)]

    def finish(self) -> Original:
        """The file complete and on disk."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return Original(self.directory, self.name, self.size, self._hash.hexdigest(),
                        header_block(bytes(self._start)))

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


@contextlib.contextmanager
def receiving(directory: Path) -> Iterator[Receiver]:
    """A receiver whose temporary file is removed if the block fails."""
    receiver = Receiver(directory)
    try:
        yield receiver
    except BaseException:
        receiver.discard()
        raise


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def copy(source: Readable, receiver: Receiver) -> None:
    while chunk := source.read(CHUNK_BYTES):
        receiver.write(chunk)


def discard(original: Original) -> None:
    original.partial.unlink(missing_ok=True)


def put_in_place(directory: Path, name: str) -> None:
    """Rename the temporary file of a committed row to its place, durably. Done already (by another
    run tidying): nothing happens."""
    target = path_of(directory, name)
    if move_into_place(partial_path(directory, name), target):
        _sync_directory(target.parent)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tidy(factory: sessionmaker[Session], directory: Path, *, now: float | None = None) -> None:
    """What a crashed run left in ``mail-partial/``: a file whose row was committed is put in place; one
    no row names is removed once stale, and left until then. Files of other names are not touched."""
    folder = directory / PARTIAL_DIR
    if not folder.is_dir():
        return
    now = time.time() if now is None else now
    for item in sorted(folder.iterdir()):
        name = item.name.removesuffix(SUFFIX)
        if not item.name.endswith(SUFFIX) or not _NAME.fullmatch(name):
            continue
        with factory() as session:
            size = session.scalar(select(InboundMessage.original_size).where(InboundMessage.original_name == name))
        try:
            if size is None:
                if now - item.stat().st_mtime > STALE_SECONDS:
                    item.unlink(missing_ok=True)
                    log.info("mail: removed %s, left unfinished by an earlier run", item.name)
            elif item.stat().st_size == size:
                put_in_place(directory, name)
                log.info("mail: put %s in place, committed by an earlier run", name)
            else:  # never written so: the file was synced before its row was committed
                log.warning("mail: %s is not the size its row says; left where it is", item.name)
        except FileNotFoundError:  # another run got there first
            continue


def original_path(directory: Path, row: InboundMessage) -> Path | None:
    """Where the row's whole message is, if it is kept whole and the file is there."""
    if not row.original_name:
        return None
    path = path_of(directory, row.original_name)
    return path if path.is_file() else None


def open_original(directory: Path, row: InboundMessage) -> BinaryIO | None:
    """The row's whole message, opened for reading; None when the file is missing."""
    if not row.original_name:
        return None
    try:
        return open(path_of(directory, row.original_name), "rb")
    except (FileNotFoundError, IsADirectoryError):
        return None
