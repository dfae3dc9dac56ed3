"""How a request's body becomes its form, through Werkzeug's public hook
(``Request.form_data_parser_class`` and ``FormDataParser.parse``):

- a small multipart body in the browsers' framing is read at once (``web.multipart``); any other,
  Werkzeug reads;
- a URL-encoded body is read in its declared charset (UTF-8 when none is declared, and when the one
  declared is unknown); bytes that are not text in it become U+FFFD, which the forms refuse with a
  message next to the field (``core.text``), where Werkzeug would keep them as percent-escapes;
- a body sent without a length (chunked) that reaches the size limit is refused whole with 413,
  where it would otherwise be cut at the limit and the rest ignored.
"""
from __future__ import annotations

import codecs
import io
import re
from typing import IO
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from feedback_app.web.multipart import SMALL, parse_small

URLENCODED = "application/x-www-form-urlencoded"
_RAW_BYTE = re.compile(rb"[\x80-\xff]")


def parse_urlencoded(body: bytes, charset: str = "utf-8") -> list[tuple[str, str]]:
    """The fields of a URL-encoded body as Werkzeug reads them (blank values kept, ``+`` a space), each
    decoded from ``charset``; what does not decode becomes U+FFFD. Raw bytes outside ASCII (a client
    that did not percent-encode) are read as if they had been."""
    try:
        codecs.lookup(charset)
        b"a".decode(charset)
    except (LookupError, TypeError):  # unknown, or not a text encoding: read as UTF-8, and judged as such
        charset = "utf-8"
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
            if getattr(stream, "is_exhausted", False):  # reached the limit: the rest was never read
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
    form_data_parser_class = QuickFormParser
