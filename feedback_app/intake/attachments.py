"""Attachment checks (by content, never by name) and storage outside ``static/``.

A file is written, synced, to ``partial/`` of the store while its submission is being stored, and put
in its place (``path_of``) when that transaction commits; when it rolls back the file is removed
(``core.database.on_outcome``). A file in its place therefore always has its row. A crash between the
two leaves a file in ``partial/``: ``sweep``, at each start of a worker, puts it in place if its row was
committed, and removes it otherwise once it is old enough not to be another request's, still being stored.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback_app.core.config import Settings
from feedback_app.core.models import Attachment

SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
TYPE_LABELS = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}
PARTIAL_DIR, PARTIAL_SUFFIX = "partial", ".part"
STALE_SECONDS = 600  # a request stores its files and commits within seconds: older ones were left by a crash


@dataclass(frozen=True)
class IncomingFile:
    filename: str
    data: bytes


@dataclass(frozen=True)
class StoredFile:
    stored_name: str
    sha256: str
    size: int
    content_type: str
    display_name: str


def sniff(data: bytes) -> str | None:
    """The content type the bytes really are, or None when not JPEG, PNG or PDF."""
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    return None


def display_name(filename: str) -> str:
    """The original name as display text: any script kept, path and control characters dropped."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "附件"


def problems(files: list[IncomingFile], settings: Settings) -> list[str]:
    """Every rule the files break, in Chinese; empty when they may be stored."""
    errors = []
    if len(files) > settings.attachment_max_files:
        errors.append(f"最多上传 {settings.attachment_max_files} 个附件")
    mb = settings.attachment_max_bytes / (1024 * 1024)
    for f in files:
        if sniff(f.data) is None:
            errors.append(f"“{display_name(f.filename)}”不是 JPEG、PNG 或 PDF 文件")
        elif len(f.data) > settings.attachment_max_bytes:
            errors.append(f"“{display_name(f.filename)}”超过 {mb:g} MB")
        elif not f.data:
            errors.append(f"“{display_name(f.filename)}”是空文件")
    if sum(len(f.data) for f in files) > settings.attachments_max_total_bytes:
        errors.append(f"附件合计不能超过 {settings.attachments_max_total_bytes / (1024 * 1024):g} MB")
    return errors


def store(directory: Path, incoming: IncomingFile) -> StoredFile:
    """Write the file under a generated name in ``partial/``, durably, and describe it; ``place`` or
    ``discard`` it once its row is committed or not."""
    content_type = sniff(incoming.data)
    if content_type is None:
        raise ValueError("unsupported attachment type")
    digest = hashlib.sha256(incoming.data).hexdigest()
    stored_name = uuid.uuid4().hex
    partial = partial_path(directory, stored_name)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(partial, "wb") as fh:
            fh.write(incoming.data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:  # a full disk: nothing half-written is left behind
        partial.unlink(missing_ok=True)
        raise
    return StoredFile(stored_name, digest, len(incoming.data), content_type, display_name(incoming.filename))


def place(directory: Path, stored_name: str) -> None:
    """Its row committed: move the file from ``partial/`` to its place."""
    move_into_place(partial_path(directory, stored_name), path_of(directory, stored_name))


def move_into_place(source: Path, target: Path) -> bool:
    """Rename a file whose row was committed from where it was written to its place in the store. Done
    already (by a sweep or a tidy at another process's start): nothing happens, and False."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not target.exists():
            raise
        return False
    return True


def discard(directory: Path, stored_name: str) -> None:
    """Its row not stored: remove the file."""
    partial_path(directory, stored_name).unlink(missing_ok=True)


def partial_path(directory: Path, stored_name: str) -> Path:
    return directory / PARTIAL_DIR / f"{stored_name}{PARTIAL_SUFFIX}"


def sweep(session: Session, directory: Path, *, older_than: float = STALE_SECONDS) -> tuple[int, int]:
    """After a crash: each file left in ``partial/`` whose row was committed is put in place at once
    (it was synced before the commit); one without a row is removed once it is older than
    ``older_than`` seconds (a younger one may be another request's, not yet committed). Returns
    (placed, removed)."""
    folder = directory / PARTIAL_DIR
    if not folder.is_dir():
        return 0, 0
    left = {path.name.removesuffix(PARTIAL_SUFFIX): path for path in folder.glob(f"*{PARTIAL_SUFFIX}")}
    if not left:
        return 0, 0
    known = set(session.scalars(select(Attachment.stored_name).where(Attachment.stored_name.in_(list(left)))))
    cutoff = time.time() - older_than
    placed = removed = 0
    for name, path in left.items():
        with contextlib.suppress(FileNotFoundError):  # another process, starting too, got there first
            if name in known:
                place(directory, name)
                placed += 1
            elif path.stat().st_mtime <= cutoff:
                path.unlink()
                removed += 1
    return placed, removed


def path_of(directory: Path, stored_name: str) -> Path:
    return directory / stored_name[:2] / stored_name
