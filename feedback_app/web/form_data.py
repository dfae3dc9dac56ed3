"""How a request's body becomes its form, through Werkzeug's public hook
(``Request.form_data_parser_class`` and ``FormDataParser.parse``):

- a small multipart body in the browsers' framing is read at once (``web.multipart``); any other,
  Werkzeug reads;
- a URL-encoded body is read in its declared charset (UTF-8 when none is declared, and when the one
  declared is unknown; GB2312 and GBK as browsers read them, by the GB18030 decoder); bytes that are
  not text in it become U+FFFD, which the forms refuse with a message next to the field
  (``core.text``), where Werkzeug would keep them as percent-escapes;
- a body sent without a length (chunked) that reaches the size limit is refused whole with 413,
  where it would otherwise be cut at the limit and the rest ignored.

And a URL whose path or query string carries a NUL (``%00``) is refused with 400 before any view runs
(``AppRequest``): no page could answer it, and PostgreSQL cannot even be asked about such a text.
"""
from __future__ import annotations

import codecs
import io
import re
from typing import IO
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from feedback_app.web.multipart import SMALL, parse_small

URLENCODED = "application/x-www-form-urlencoded"
_RAW_BYTE = re.compile(rb"[\x80-\xff]")
# The labels the WHATWG Encoding Standard (what browsers do) reads as GBK, whose decoder is GB18030's:
# a client that says GB2312 writes GBK characters (镕, 堃) that Python's strict gb2312 codec cannot read.
_GBK_LABELS = {"chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk", "iso-ir-58",
               "x-gbk", "cp936", "ms936"}


# The encodings a browser may send a form in that Python reads as browsers do (the Encoding Standard's
# ASCII-compatible ones for Chinese, Japanese, Korean and the Latin and Cyrillic pages): anything else
# declared (UTF-16, a codec that is no text encoding, an unknown name) is read as UTF-8 and judged so.
_DECODERS = frozenset({"utf-8", "ascii", "gb18030", "big5", "big5hkscs", "shift_jis", "euc_jp", "euc_kr",
                       "iso8859-1", "iso8859-2", "iso8859-15", "cp1250", "cp1251", "cp1252", "koi8-r"})


def _decoder(charset: str) -> str:
    if charset.strip().lower() in _GBK_LABELS:
        return "gb18030"
    try:
        name = codecs.lookup(charset.strip()).name
    except (LookupError, ValueError):
        return "utf-8"
    return name if name in _DECODERS else "utf-8"


def parse_urlencoded(body: bytes, charset: str = "utf-8") -> list[tuple[str, str]]:
    """The fields of a URL-encoded body as Werkzeug reads them (blank values kept, ``+`` a space), each
    decoded from ``charset`` (a GB2312 or GBK label by the GB18030 decoder); what does not decode becomes
    U+FFFD. Raw bytes outside ASCII (a client that did not percent-encode) are read as if they had been."""
    charset = _decoder(charset)
    ascii_body = _RAW_BYTE.sub(lambda m: b"%%%02X" % m.group()[0], body).decode("ascii")
    return parse_qsl(ascii_body, keep_blank_values=True, encoding=charset, errors="replace")


class QuickFormParser(FormDataParser):
    """Werkzeug's form parser, with the three differences above. ``tests/test_multipart.py`` and
    ``tests/test_form_data.py`` compare the results with Werkzeug's and fail if its answer changes."""

    def parse(self, stream: IO[bytes], mimetype: str, content_length: int | None,
              options: dict[str, str] | None = None) -> tuple[IO[bytes], MultiDict, MultiDict]:
        options = options or {}
        if content_length is None and mimetype in (URLENCODED, "multipart/form-data"):
            body = stream.read()  # within max_content_length: Werkzeug limits a stream without a length
            if getattr(stream, "is_exhausted", False):  # reached the limit (as Werkzeug's own reading would): refused
                raise RequestEntityTooLarge()
            stream, content_length = io.BytesIO(body), len(body)
        if mimetype == URLENCODED:  # Werkzeug has limited the stream to max_content_length
            return stream, self.cls(parse_urlencoded(stream.read(), options.get("charset", "utf-8"))), self.cls()
        if mimetype != "multipart/form-data" or content_length is None or content_length > SMALL:
            return super().parse(stream, mimetype, content_length, options)
        body = stream.read()
        boundary = options.get("boundary", "")
        parsed = (parse_small(body, boundary.encode("ascii"), self.max_form_memory_size, self.max_form_parts)
                  if boundary.isascii() else None)  # browsers send ASCII boundaries; Werkzeug judges the rest
        if parsed is None:
            _stream, werkzeug_form, werkzeug_files = super().parse(io.BytesIO(body), mimetype, len(body), options)
            return stream, werkzeug_form, werkzeug_files
        fields, files = parsed
        return stream, self.cls(fields), self.cls(files)


class AppRequest(Request):
    """The app's request: its forms read by ``QuickFormParser``; a URL with a NUL in its path (a view's
    argument: a reference, a slug) or in a query parameter (``?item=``, ``?bulletin=``…) is refused as a
    URL that matches nothing is, through Flask's ``routing_exception``: the before-request hooks run as for
    any request, then the 400 page answers in place of the view. Form fields are judged by the forms
    (``web.forms.Form``), with the message next to the field."""

    form_data_parser_class = QuickFormParser

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "\x00" in self.path or any("\x00" in key or "\x00" in value
                                       for key, value in self.args.items(multi=True)):
            self.routing_exception = BadRequest("网址中包含空字符（%00）")
