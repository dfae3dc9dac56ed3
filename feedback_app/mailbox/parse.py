"""One raw message in, its facts out: headers, the text a person wrote, the files; never an exception.

The parser stops as soon as a message has more MIME parts than allowed, so a hostile message costs
milliseconds; nesting and size are checked too. Whatever cannot be read is reported in ``problem``.

The text a person wrote (the sender, the subject, the body as its charset gives it) meets the one rule
for text of every channel (``core.text.text_problem``): a control character anywhere, or a direction
control in the sender, is a ``problem`` naming where and which (the message is quarantined, its raw
bytes kept); a direction control in the subject or the body is kept, and staff see it written out.
Bytes a charset cannot read are U+FFFD, as before: mail is read as well as it can be, not refused.
The facts themselves never carry a control character (PostgreSQL cannot hold a NUL): a release reads
a quarantined message without them, as ``tidy`` always did for the body.
"""
from __future__ import annotations

import contextlib
import email.header
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesFeedParser
from email.utils import getaddresses

from feedback_app.core.text import BIDI, CONTROL_CHARACTERS, CONTROLS, DIRECTION_CHARACTERS, text_problem
from feedback_app.mailbox.classify import auto_reply_reason, bounce_reason
from feedback_app.mailbox.decode import (
    decode_bytes,
    decode_header,
    header_param,
    html_charset,
    html_to_text,
    tidy,
)

FEED_CHUNK = 64 * 1024
_BROKEN = ("StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect", "MultipartInvariantViolationDefect")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_parts: int
    max_depth: int

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(settings.mail_max_bytes, settings.mail_max_parts, settings.mail_max_depth)


@dataclass
class Part:
    """A file attached to the mail (or a forwarded mail), as it came."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Parsed:
    message_id: str | None = None
    subject: str = ""
    from_header: str = ""
    sender_name: str | None = None
    sender: str | None = None  # the From address as written
    to: str = ""
    date: str | None = None
    text: str = ""
    html_only: bool = False
    parts: list[Part] = field(default_factory=list)
    problem: str | None = None  # why the message cannot be read as a comment
    auto_reply: str | None = None
    bounce: str | None = None


class _TooManyParts(Exception):
    pass


def _parse_tree(raw: bytes, max_parts: int | None) -> EmailMessage:
    """The message tree; raises _TooManyParts as soon as the parser makes one part too many."""
    made = 0

    def factory(policy=policy.default):
        nonlocal made
        made += 1
        if max_parts is not None and made > max_parts + 1:  # the message itself is not a MIME part
            raise _TooManyParts()
        return EmailMessage(policy=policy)

    parser = BytesFeedParser(_factory=factory, policy=policy.default)
    made = 0  # the parser calls the factory once to probe it
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(raw[start:start + FEED_CHUNK])
    return parser.close()


def _depth(msg: Message) -> int:
    deepest, stack = 0, [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():
            stack.extend((child, depth + 1) for child in part.get_payload() if isinstance(child, Message))
    return deepest


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw[:match.start() + 1] if match else raw


def parse_message(raw: bytes, limits: Limits, *, lenient: bool = False) -> Parsed:
    """The facts of a message. ``lenient`` (a release by staff): no limits, and broken structure is read
    as far as it goes instead of being reported."""
    if not lenient and len(raw) > limits.max_bytes:
        out = headers_only(raw)
        out.problem = f"邮件过大（{len(raw):,} 字节，上限 {limits.max_bytes:,} 字节）"
        return out
    try:
        msg = _parse_tree(raw, None if lenient else limits.max_parts)
    except _TooManyParts:
        out = headers_only(raw)
        out.problem = f"MIME 部分过多（超过 {limits.max_parts} 个）"
        return out
    except RecursionError:
        out = headers_only(raw)
        out.problem = "MIME 嵌套过深，无法解析"
        return out
    except Exception as exc:
        out = headers_only(raw)
        out.problem = f"无法解析（{type(exc).__name__}）"
        return out
    out = Parsed()
    try:
        _read_headers(msg, out)
        if not lenient:
            depth = _depth(msg)
            if depth > limits.max_depth:
                out.problem = f"MIME 嵌套过深（{depth} 层，上限 {limits.max_depth} 层）"
                return out
            if not msg.keys() or not _HEADER_LINE.match(raw[:1024].lstrip()):
                out.problem = "不是有效的邮件（没有邮件头）"
                return out
            broken = sorted({type(d).__name__ for p in msg.walk() for d in p.defects if type(d).__name__ in _BROKEN})
            if broken:
                out.problem = f"邮件结构损坏（{', '.join(broken)}）"
                return out
        out.auto_reply = auto_reply_reason(msg, out.subject)
        out.bounce = bounce_reason(msg, out.sender)
        texts: list[tuple[str, str, str]] = []
        _walk(msg, texts, out.parts)
        plain = [t for kind, t, _ in texts if kind == "plain" and t]
        out.html_only = not plain and any(t for kind, t, _ in texts if kind == "html")
        out.text = "\n\n".join(t for _, t, _ in texts if t).strip()
        if not lenient:
            out.problem = _breaks_text_rule(msg, [sent for _, _, sent in texts])
        if lenient and not out.text and not out.parts:
            out.text = tidy(decode_bytes(raw[len(header_block(raw)):]))
    except RecursionError:
        out.problem = "MIME 嵌套过深，无法解析"
    except Exception as exc:
        out.problem = f"无法解析（{type(exc).__name__}）"
        if lenient:
            out.problem, out.text = None, tidy(decode_bytes(raw[len(header_block(raw)):]))
    return out


def headers_only(raw: bytes) -> Parsed:
    """What the header section alone tells (for messages whose body is not read)."""
    out = Parsed()
    with contextlib.suppress(Exception):
        _read_headers(_parse_tree(header_block(raw)[:256 * 1024] + b"\n", 0), out)
    return out


def _raw(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _header(value: str | None) -> str:
    """A header's text (``decode_header``) without control characters: what the facts keep."""
    return CONTROLS.sub("", decode_header(value))


def _read_headers(msg: Message, out: Parsed) -> None:
    out.subject = _header(_raw(msg, "Subject"))[:500]
    message_id = _header(_raw(msg, "Message-ID"))
    out.message_id = message_id[:998] or None
    raw_from = _raw(msg, "From") or ""
    out.from_header = _header(raw_from)[:500]
    unfolded = re.sub(r"\r?\n[ \t]", " ", raw_from)
    pairs = [(n, a) for n, a in getaddresses([unfolded]) if a]
    if pairs:
        name, address = pairs[0]
        out.sender_name = _header(name)[:100] or None
        out.sender = _header(address)[:320] or None
    out.to = _header(_raw(msg, "To"))[:1000]
    out.date = _header(_raw(msg, "Date"))[:100] or None


# --- the one rule for text ------------------------------------------------------------------------

_BROKEN_RULE = {CONTROL_CHARACTERS: ("包含不可见的控制字符", CONTROLS),
                DIRECTION_CHARACTERS: ("包含改变文字方向的控制字符", BIDI)}


def text_reason(where: str, value: str, *, plain: bool = False) -> str | None:
    """Why ``value`` breaks the text rule (``core.text.text_problem``), for the quarantine list: where,
    what, and which characters — "邮件正文包含不可见的控制字符（U+0000）"; None when it does not."""
    trouble = text_problem(value, plain=plain, garbled_ok=True)
    if trouble is None:
        return None
    words, pattern = _BROKEN_RULE[trouble]
    found = sorted({f"U+{ord(ch):04X}" for ch in pattern.findall(value)})
    return f"{where}{words}（{'、'.join(found[:5])}{'等' if len(found) > 5 else ''}）"


def _header_text(value: str | None) -> str:
    """A header's text to be judged: its encoded words decoded, but, unlike ``decode_header``, no blank
    made a space (Python counts U+0085, U+001C–U+001F, vertical tab and form feed as blanks)."""
    if not value:
        return ""
    value = re.sub(r"(\r\n|\r|\n)(?=[ \t])", "", value)  # a folded line goes on: not a line break
    if any("\udc80" <= ch <= "\udcff" for ch in value):  # raw 8-bit bytes, as ``decode_header`` reads them
        value = decode_bytes(value.encode("ascii", "surrogateescape"))
    try:
        chunks = email.header.decode_header(value)
    except Exception:  # a malformed encoded word: judged as written
        return value
    return "".join(decode_bytes(data, charset) if isinstance(data, bytes) else data for data, charset in chunks)


def _breaks_text_rule(msg: Message, sent: list[str]) -> str | None:
    """The first place where a message breaks the text rule: the sender (a name: no direction control
    either), the subject, the text of the body as decoded (``sent``, before ``tidy`` drops controls)."""
    checks = [("发件人", _header_text(_raw(msg, "From")), True), ("邮件主题", _header_text(_raw(msg, "Subject")), False)]
    checks += [("邮件正文", text, False) for text in sent]
    for where, value, plain in checks:
        reason = text_reason(where, value, plain=plain)
        if reason is not None:
            return reason
    return None


def _is_body_text(part: Message, ctype: str) -> bool:
    return (ctype in {"text/plain", "text/html"} and part.get_content_disposition() != "attachment"
            and not filename_of(part))


def _walk(part: Message, texts: list[tuple[str, str, str]], parts: list[Part]) -> None:
    """The body's texts, each as (kind, text, the text as decoded before ``tidy``), and its files."""
    ctype = part.get_content_type()
    if ctype == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        assert isinstance(inner, Message)  # a multipart's payload is its messages
        subject = _header(_raw(inner, "Subject"))
        texts.append(("plain", f"—— 转发的邮件：{subject or '（无主题）'} ——", _header_text(_raw(inner, "Subject"))))
        _walk(inner, texts, parts)
        return
    if part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if ctype == "multipart/alternative":
            chosen = _alternative(children)
            for child in children:
                if child is chosen:
                    _walk(child, texts, parts)
                else:  # files attached inside the alternative that was not chosen
                    parts.extend(_files_in(child))
        else:
            for child in children:
                _walk(child, texts, parts)
        return
    if part.get_content_maintype() == "multipart":  # a broken multipart: its body is one undivided text
        decoded = decode_bytes(_payload(part))
        texts.append(("plain", tidy(decoded), decoded))
        return
    if _is_body_text(part, ctype):
        decoded = _decoded(part)
        if ctype == "text/html":  # HTML reads a form feed as a blank and a lone CR as a line break
            texts.append(("html", html_to_text(decoded), decoded.replace("\f", " ").replace("\r", "\n")))
        else:
            texts.append(("plain", tidy(decoded), decoded))
        return
    data = _payload(part)
    if data or filename_of(part):
        parts.append(Part(filename_of(part) or "", ctype, data))


def _alternative(children: list[Message]) -> Message | None:
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if child.get_content_type() == wanted and _is_body_text(child, wanted) and text_of(child):
                return child
    return next((c for c in children if c.is_multipart()), children[0] if children else None)


def _files_in(part: Message) -> list[Part]:
    found = []
    for sub in part.walk():
        if not sub.is_multipart() and sub.get_content_disposition() == "attachment":
            found.append(Part(filename_of(sub) or "", sub.get_content_type(), _payload(sub)))
    return found


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def _decoded(part: Message) -> str:
    """A text part's characters as its charset gives them (GB2312/GBK read as GB18030), nothing dropped."""
    data = _payload(part)
    charset = part.get_content_charset()
    if part.get_content_type() == "text/html":
        return decode_bytes(data, charset or html_charset(data))
    return decode_bytes(data, charset)


def text_of(part: Message) -> str:
    """A text part as plain text: its charset honoured (GB2312/GBK read as GB18030), HTML flattened."""
    if part.get_content_type() == "text/html":
        return html_to_text(_decoded(part))
    return tidy(_decoded(part))


# --- file names -----------------------------------------------------------------------------------

def filename_of(part: Message) -> str | None:
    """The attachment's file name, decoded whatever way the sender's program wrote it."""
    for header, name in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        value = _raw(part, header)
        if value:
            found = header_param(value, name)
            if found:
                return found.strip()
    try:
        fallback = part.get_filename()
    except Exception:
        return None
    return str(fallback).strip() if fallback else None
