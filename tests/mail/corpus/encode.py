"""Encoders for writing the corpus by hand, and tiny files of each kind the form accepts."""
from __future__ import annotations

import base64
import quopri

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00" + bytes(16)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(32) + b"\xff\xd9"
DOCX = b"PK\x03\x04" + bytes(60)


def b64(data: bytes | str, charset: str = "utf-8", width: int = 76) -> str:
    raw = data.encode(charset) if isinstance(data, str) else data
    text = base64.b64encode(raw).decode("ascii")
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))


def qp(text: str, charset: str) -> str:
    return quopri.encodestring(text.encode(charset)).decode("ascii")


def word(text: str, charset: str, encoding: str = "B") -> str:
    """One RFC 2047 encoded word."""
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="
    return f"=?{charset}?Q?{quopri.encodestring(data, header=True).decode('ascii')}?="


def split_words(text: str, charset: str, cut: int) -> str:
    """Two encoded words that split the bytes at ``cut``, through a character, as some mailers do."""
    data = text.encode(charset)
    first, second = (base64.b64encode(part).decode("ascii") for part in (data[:cut], data[cut:]))
    return f"=?{charset}?B?{first}?=\n =?{charset}?B?{second}?="


def pct(text: str, charset: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode(charset))


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
