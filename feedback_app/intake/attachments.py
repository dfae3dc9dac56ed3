"""Attachment checks (by content, never by name) and storage outside ``static/``."""
from __future__ import annotations

import hashlib
import os
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from feedback_app.core.config import Settings

SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
TYPE_LABELS = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}


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
    """Write the file under a generated name, durably, and describe it."""
    content_type = sniff(incoming.data)
    if content_type is None:
        raise ValueError("unsupported attachment type")
    digest = hashlib.sha256(incoming.data).hexdigest()
    stored_name = uuid.uuid4().hex
    target = path_of(directory, stored_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(incoming.data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return StoredFile(stored_name, digest, len(incoming.data), content_type, display_name(incoming.filename))


def path_of(directory: Path, stored_name: str) -> Path:
    return directory / stored_name[:2] / stored_name
