"""``mail fetch``: read the configured IMAP mailbox once.

For each message not yet marked on the server: store it raw (committed), ingest it (committed), and
only then mark it on the server with the keyword ``$Ingested`` (and ``\\Seen``), recording that too.
A message over ``mail_max_bytes`` is fetched in parts of ``PART_BYTES`` straight into the attachment
store, kept whole and quarantined (see ``original``).
Each step is idempotent, so a run killed at any point and started again ingests every message once.
Servers that keep no keywords get ``\\Seen`` alone, and unseen messages are fetched.
"""
from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import InboundMessage, InboundStatus
from feedback_app.mailbox.health import mailbox_key, record_attempt
from feedback_app.mailbox.inbound import finish_stored, pause, take, take_original
from feedback_app.mailbox.original import Original, receiving, tidy

log = logging.getLogger("feedback_app.mail")

KEYWORD = "$Ingested"
TIMEOUT = 60.0
BATCH_BYTES = 8 * 1024 * 1024
BATCH_COUNT = 50
UID_CHUNK = 500
PART_BYTES = 1024 * 1024  # of a message over the size limit, fetched at a time


class FetchError(Exception):
    """A fetch could not be done; the text is short, for staff, and holds no personal data."""


@dataclass
class FetchReport:
    mailbox: str
    fetched: int = 0
    ingested: int = 0
    quarantined: int = 0
    already_known: int = 0
    resumed: int = 0  # messages a crashed run had stored but not ingested
    error: str | None = None


def connect(settings: Settings) -> imaplib.IMAP4:
    """A logged-in connection: implicit TLS, STARTTLS, or (only when allowed) plain text."""
    if not settings.imap_host:
        raise FetchError("未配置 IMAP 服务器（FEEDBACK_IMAP_HOST）")
    security = settings.imap_security.lower()
    if security not in {"tls", "starttls", "plain"}:
        raise FetchError("FEEDBACK_IMAP_SECURITY 只能是 tls、starttls 或 plain")
    if security == "plain" and not settings.imap_allow_plain:
        raise FetchError("不允许未加密的 IMAP 连接（需设置 FEEDBACK_IMAP_ALLOW_PLAIN）")
    context = tls_context(settings)
    conn: imaplib.IMAP4
    if security == "tls":
        try:
            conn = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port, ssl_context=context, timeout=TIMEOUT)
        except ssl.SSLCertVerificationError as exc:
            raise _untrusted(exc) from exc
    else:
        conn = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=TIMEOUT)
    try:
        if security == "starttls":
            try:
                conn.starttls(ssl_context=context)
            except imaplib.IMAP4.error as exc:
                raise FetchError("IMAP 服务器不支持 STARTTLS") from exc
            except ssl.SSLCertVerificationError as exc:
                raise _untrusted(exc) from exc
        try:
            conn.login(settings.imap_username, settings.imap_password)
        except imaplib.IMAP4.error as exc:
            raise FetchError("IMAP 登录失败，请检查用户名和密码") from exc
    except BaseException:
        _close(conn)
        raise
    return conn


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name checked; against ``imap_ca_file`` alone when set (an office's own CA),
    else against the system store."""
    cafile = settings.imap_ca_file
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:  # missing, unreadable, or not PEM certificates
        raise FetchError("无法读取 FEEDBACK_IMAP_CA_FILE 指定的 CA 证书文件") from exc


# OpenSSL's verify codes staff can act on; the rest are reported by the general wording
_VERIFY_REASONS = {
    10: "证书已过期",
    18: "证书为自签名证书",
    19: "证书链中有不受信任的自签名根证书",
    20: "证书不是由受信任的 CA 签发的",
    62: "证书与服务器地址不符",  # a host name
    64: "证书与服务器地址不符",  # an IP address
}


def _untrusted(exc: ssl.SSLCertVerificationError) -> FetchError:
    """Certificate failures named plainly: they need an administrator, not a retry."""
    reason = _VERIFY_REASONS.get(exc.verify_code, "证书无法验证")
    return FetchError(f"IMAP 服务器证书验证失败：{reason}（可用 FEEDBACK_IMAP_CA_FILE 指定受信任的 CA）")


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, FetchError):
        return str(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "连接 IMAP 服务器超时"
    if isinstance(exc, ssl.SSLError):
        return f"TLS 连接失败（{type(exc).__name__}）"
    if isinstance(exc, OSError):
        return f"无法连接 IMAP 服务器（{type(exc).__name__}）"
    if isinstance(exc, SQLAlchemyError):
        return f"数据库错误（{type(exc).__name__}）"
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP 错误（{type(exc).__name__}）"
    return f"内部错误（{type(exc).__name__}）"


def fetch_once(factory: sessionmaker[Session], settings: Settings, *, connector=connect) -> FetchReport:
    """Fetch, store, ingest and mark every new message; record the mailbox's health. Never raises for
    mail or server problems (they are in ``report.error``)."""
    key = mailbox_key(settings)
    report = FetchReport(key)
    if not settings.imap_host:
        report.error = "未配置 IMAP 服务器（FEEDBACK_IMAP_HOST）"
        return report
    try:
        record_attempt(factory, key, error=None, started=True)
        tidy(factory, settings.attachments_path)
        for outcome in finish_stored(factory, settings):
            report.resumed += 1
            _count(report, outcome)
        conn = connector(settings)
        try:
            _fetch(conn, factory, settings, key, report)
        finally:
            _close(conn)
    except Exception as exc:
        report.error = describe_error(exc)
        if isinstance(exc, (imaplib.IMAP4.error, OSError, FetchError, SQLAlchemyError)):
            log.warning("mail fetch %s failed: %s", key, report.error)
        else:
            log.exception("mail fetch %s failed unexpectedly", key)
        try:
            record_attempt(factory, key, error=report.error)
        except SQLAlchemyError:
            log.error("mail fetch: the mailbox state could not be recorded")
        return report
    record_attempt(factory, key, error=None)
    return report


def _count(report: FetchReport, outcome) -> None:
    if not outcome.done_now:
        report.already_known += 1
    elif outcome.status == InboundStatus.ingested.value:
        report.ingested += 1
    else:
        report.quarantined += 1


def _ok(typ: str, what: str) -> None:
    if typ != "OK":
        raise FetchError(f"IMAP 服务器拒绝了 {what} 命令")


def _fetch(conn: imaplib.IMAP4, factory: sessionmaker[Session], settings: Settings, key: str,
           report: FetchReport) -> None:
    typ, _ = conn.select(_quote(settings.imap_mailbox))
    if typ != "OK":
        raise FetchError("无法打开邮箱文件夹")
    uidvalidity = int((conn.response("UIDVALIDITY")[1] or [b"0"])[0] or 0)
    permanent = b" ".join(x for x in conn.response("PERMANENTFLAGS")[1] or [] if isinstance(x, bytes))
    keywords = b"\\*" in permanent or KEYWORD.encode() in permanent
    flags = f"({KEYWORD} \\Seen)" if keywords else "(\\Seen)"
    _finish_flags(conn, factory, key, uidvalidity, flags)
    typ, data = conn.uid("SEARCH", *(("UNKEYWORD", KEYWORD) if keywords else ("UNSEEN",)))
    _ok(typ, "SEARCH")
    uids = sorted(int(u) for u in b" ".join(d for d in data if d).split())
    for batch in _batches(conn, uids, settings.mail_max_bytes):
        bodies = _bodies(conn, [uid for uid, size, _ in batch if size <= settings.mail_max_bytes], "BODY.PEEK[]")
        for uid, size, received in batch:
            if size > settings.mail_max_bytes:
                original = _download(conn, uid, settings.attachments_path, size)
                if original is None:  # expunged meanwhile
                    continue
                report.fetched += 1
                outcome = take_original(factory, settings, original, mailbox=key, uidvalidity=uidvalidity, uid=uid,
                                        received_at=received)
            else:
                raw = bodies.get(uid)
                if raw is None:  # expunged meanwhile
                    continue
                report.fetched += 1
                outcome = take(factory, settings, raw, mailbox=key, uidvalidity=uidvalidity, uid=uid,
                               received_at=received)
            _count(report, outcome)
            pause()
            _ok(conn.uid("STORE", str(uid), "+FLAGS.SILENT", flags)[0], "STORE")
            _mark_flagged(factory, [outcome.inbound_id], key, uidvalidity)
            pause()


def _finish_flags(conn, factory: sessionmaker[Session], key: str, uidvalidity: int, flags: str) -> None:
    """Mark on the server what a crashed run committed but had not marked yet."""
    with factory() as session:
        rows = session.execute(select(InboundMessage.id, InboundMessage.uid).where(
            InboundMessage.mailbox == key, InboundMessage.uidvalidity == uidvalidity,
            InboundMessage.flagged_at.is_(None), InboundMessage.status != InboundStatus.stored.value)).all()
    for start in range(0, len(rows), UID_CHUNK):
        chunk = rows[start:start + UID_CHUNK]
        _ok(conn.uid("STORE", ",".join(str(uid) for _, uid in chunk), "+FLAGS.SILENT", flags)[0], "STORE")
        _mark_flagged(factory, [row_id for row_id, _ in chunk], key, uidvalidity)


def _mark_flagged(factory: sessionmaker[Session], ids: list[int], key: str, uidvalidity: int) -> None:
    with factory() as session:
        session.execute(update(InboundMessage).where(
            InboundMessage.id.in_(ids), InboundMessage.mailbox == key, InboundMessage.uidvalidity == uidvalidity,
            InboundMessage.flagged_at.is_(None)).values(flagged_at=utcnow()))
        session.commit()


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")
_DATE = re.compile(rb'INTERNALDATE ("[^"]+")')


_Batch = list[tuple[int, int, datetime | None]]  # (uid, size, arrival time)


def _batches(conn: imaplib.IMAP4, uids: list[int], max_bytes: int) -> Iterator[_Batch]:
    """(uid, size, arrival time) in batches of bounded total size, oldest first."""
    for start in range(0, len(uids), UID_CHUNK):
        chunk = uids[start:start + UID_CHUNK]
        typ, data = conn.uid("FETCH", ",".join(map(str, chunk)), "(UID RFC822.SIZE INTERNALDATE)")
        _ok(typ, "FETCH")
        facts: dict[int, tuple[int, datetime | None]] = {}
        for line in data:
            line = line[0] if isinstance(line, tuple) else line
            uid_found, size_found = _UID.search(line or b""), _SIZE.search(line or b"")
            if uid_found and size_found:
                facts[int(uid_found.group(1))] = (int(size_found.group(1)), _arrival(line))
        batch: _Batch = []
        total = 0
        for uid in chunk:
            if uid not in facts:
                continue
            size, received = facts[uid]
            cost = min(size, max_bytes)
            if batch and (total + cost > BATCH_BYTES or len(batch) >= BATCH_COUNT):
                yield batch
                batch, total = [], 0
            batch.append((uid, size, received))
            total += cost
        if batch:
            yield batch


def _arrival(line: bytes) -> datetime | None:
    match = _DATE.search(line)
    parsed = imaplib.Internaldate2tuple(b"INTERNALDATE " + match.group(1)) if match else None
    return datetime.fromtimestamp(time.mktime(parsed), UTC) if parsed else None


def _bodies(conn, uids: list[int], item: str) -> dict[int, bytes]:
    if not uids:
        return {}
    typ, data = conn.uid("FETCH", ",".join(map(str, uids)), f"(UID {item})")
    _ok(typ, "FETCH")
    found: dict[int, bytes] = {}
    waiting: bytes | None = None
    for entry in data:
        if isinstance(entry, tuple):
            match = _UID.search(entry[0])
            if match:
                found[int(match.group(1))] = entry[1]
            else:
                waiting = entry[1]
        elif isinstance(entry, bytes) and waiting is not None:
            match = _UID.search(entry)
            if match:
                found[int(match.group(1))] = waiting
            waiting = None
    return found


def _download(conn: imaplib.IMAP4, uid: int, directory: Path, size: int) -> Original | None:
    """A message too large to hold in memory, fetched part by part into a temporary file of the
    attachment store (see ``original``); None when it is gone from the server. ``size``: what the
    server said the message holds; a server that sends more (one that ignores the part asked for and
    sends the whole message each time) is stopped there, before it fills the disk."""
    with receiving(directory) as receiver:
        while True:
            part = _part(conn, uid, receiver.size, PART_BYTES)
            if part is None:
                receiver.discard()
                return None
            if receiver.size + len(part) > size:
                raise FetchError(f"IMAP 服务器发来的邮件（UID {uid}）超过它报告的 {size:,} 字节，已停止下载")
            receiver.write(part)
            if len(part) < PART_BYTES:  # the last part (empty when the size is a multiple of PART_BYTES)
                return receiver.finish()


def _part(conn: imaplib.IMAP4, uid: int, offset: int, length: int) -> bytes | None:
    """``length`` bytes of the message from ``offset`` (fewer at its end); None when it is gone."""
    typ, data = conn.uid("FETCH", str(uid), f"(UID BODY.PEEK[]<{offset}.{length}>)")
    _ok(typ, "FETCH")
    answered = False
    waiting: bytes | None = None
    for entry in data:
        line = entry[0] if isinstance(entry, tuple) else entry
        if not isinstance(line, bytes):
            continue
        found = _UID.search(line)
        if isinstance(entry, tuple):
            if found and int(found.group(1)) == uid:
                return entry[1]
            waiting = None if found else entry[1]
        elif found and int(found.group(1)) == uid:
            if waiting is not None:  # the literal came before the UID
                return waiting
            answered = answered or b"BODY[]" in line  # a part written as "" or NIL: past the end
            waiting = None
    return b"" if answered else None


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        with contextlib.suppress(OSError):
            conn.shutdown()
