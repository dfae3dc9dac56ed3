"""Text out of mail bytes: Chinese charsets, RFC 2047 headers, and HTML turned into plain text.

Nothing here raises on bad input: undecodable bytes become U+FFFD.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re
import urllib.parse
from html.parser import HTMLParser

# Labels seen in Chinese mail, mapped to the codec that reads what such mail really contains.
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030",
    "euc-cn": "gb18030", "x-euc-cn": "gb18030", "gb_2312-80": "gb18030", "csgb2312": "gb18030",
    "chinese": "gb18030", "ms936": "gb18030", "windows-936": "gb18030", "hz-gb-2312": "hz",
    "big5": "big5", "big-5": "big5", "cn-big5": "big5", "x-x-big5": "big5", "csbig5": "big5",
    "big5-hkscs": "big5", "cp950": "big5", "ms950": "big5", "x-big5": "big5",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "us-ascii": "utf-8", "ascii": "utf-8",
}
_BIG5_CODECS = ("cp950", "big5hkscs")  # cp950 (what Windows writes) first, then the Hong Kong extension


def codec_for(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None when it is unknown."""
    if not charset:
        return None
    label = charset.strip().strip('"').split("*", 1)[0].lower()
    label = _SUPERSETS.get(label, label)
    if label == "big5":
        return label
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes as text under the declared charset, guessing (UTF-8, then GB18030) when it is absent or wrong."""
    codec = codec_for(charset)
    if codec == "big5":
        for name in _BIG5_CODECS:
            try:
                return data.decode(name)
            except UnicodeDecodeError:
                continue
        return data.decode("cp950", "replace")
    if codec and codec not in {"utf-8", "ascii"}:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            return data.decode(codec, "replace")
        except (LookupError, ValueError):  # a codec Python knows but cannot use here (e.g. a mbcs label)
            pass
    for name in ("utf-8", "gb18030"):
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes:
    if encoding in "bB":
        text = text + "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return text.encode("ascii", "replace")
    return quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=True)


def decode_header(value: str | None) -> str:
    """A header's text: RFC 2047 words decoded (adjacent words of one charset joined before decoding,
    since Chinese mailers split characters across them), raw 8-bit bytes guessed, lines unfolded."""
    if not value:
        return ""
    if any("\udc80" <= ch <= "\udcff" for ch in value):  # raw 8-bit bytes, kept by the parser as surrogates
        value = decode_bytes(value.encode("ascii", "surrogateescape"))
    value = re.sub(r"\r?\n[ \t]", " ", value).replace("\r", "").replace("\n", " ")
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_charset))
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos:match.start()]
        charset = match.group(1).split("*", 1)[0]
        if between and not (pending and between.isspace()):
            flush()
            out.append(between)
        elif pending and charset.lower() != (pending_charset or "").lower():
            flush()
        pending.append(_word_bytes(match.group(2), match.group(3)))
        pending_charset = charset
        pos = match.end()
    flush()
    out.append(value[pos:])
    return re.sub(r"\s+", " ", "".join(out)).strip()


# --- header parameters (file names): RFC 2231 with continuations, RFC 2047, raw 8-bit; any charset ----

_PARAM = re.compile(r';\s*([A-Za-z0-9_.\-]+)(?:\*(\d+))?(\*)?\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_param(value: str, name: str) -> str | None:
    """A parameter of a raw header value (``filename`` of Content-Disposition…), decoded."""
    value = re.sub(r"\r?\n[ \t]", " ", value)
    simple: str | None = None
    pieces: list[tuple[int, bool, str]] = []
    for match in _PARAM.finditer(value):
        if match.group(1).lower() != name:
            continue
        text = match.group(4).strip()
        if text.startswith('"') and text.endswith('"') and len(text) >= 2:
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        if match.group(2) is None and match.group(3) is None:
            simple = text
        else:
            pieces.append((int(match.group(2) or 0), bool(match.group(3)), text))
    if not pieces:
        if simple is None:
            return None
        if any("\udc80" <= ch <= "\udcff" for ch in simple):
            return decode_bytes(simple.encode("ascii", "surrogateescape"))
        return decode_header(simple) if "=?" in simple else simple
    pieces.sort(key=lambda p: p[0])
    charset, data = None, b""
    for n, (_, extended, text) in enumerate(pieces):
        if extended and n == 0 and text.count("'") >= 2:
            charset, _, text = text.split("'", 2)
        raw = text.encode("ascii", "surrogateescape")
        data += urllib.parse.unquote_to_bytes(raw) if extended else raw
    return decode_bytes(data, charset or None)


# --- HTML ----------------------------------------------------------------------------------------

_PARAGRAPHS = {"p", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "ul", "ol", "dl", "hr"}
_LINES = {
    "address", "article", "aside", "dd", "div", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "header", "li", "main", "nav", "section", "tr", "center",
}
_HIDDEN = {"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe", "math"}


class _TextExtractor(HTMLParser):
    """Block elements end lines (paragraphs leave an empty line), <br> always does."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0
        self.pre = 0

    def _break(self, lines: int) -> None:
        tail = "".join(self.chunks[-4:]).rstrip(" \t")
        have = len(tail) - len(tail.rstrip("\n")) if self.chunks else lines
        if have < lines:
            self.chunks.append("\n" * (lines - have))

    def _block(self, tag: str) -> None:
        if tag in _PARAGRAPHS:
            self._break(2)
        elif tag in _LINES:
            self._break(1)

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "pre":
            self.pre += 1
        if tag == "br":
            self.chunks.append("\n")
        elif tag in {"td", "th"}:
            self.chunks.append(" ")
        else:
            self._block(tag)

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.chunks.append("\n")
        else:
            self._block(tag)

    def handle_endtag(self, tag):
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        self._block(tag)

    def handle_data(self, data):
        if self.hidden:
            return
        self.chunks.append(data if self.pre else re.sub(r"[ \t\r\n\f\v]+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML body: tags, scripts and styles gone, entities unescaped, line breaks kept."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup: keep what it got
        pass
    return tidy("".join(parser.chunks), strip_lines=True)


def tidy(text: str, *, strip_lines: bool = False) -> str:
    """Unified line ends, no trailing spaces, at most one empty line in a row, no control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = "".join(ch for ch in text if ch in "\n\t" or (ch >= " " and not "\x7f" <= ch <= "\x9f"))
    lines = [line.strip(" \t") if strip_lines else line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n").rstrip()


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.I)


def html_charset(data: bytes) -> str | None:
    """The charset an HTML document declares in a meta tag near its start."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None
