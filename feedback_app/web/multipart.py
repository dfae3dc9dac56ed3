"""A quick reader for the small multipart forms browsers send; anything else goes to Werkzeug's parser.

Every citizen comment is a multipart POST (the form has a file input, so browsers send multipart
even without a file), and Werkzeug's streaming parser spends about half a millisecond on one: it
compiles two regular expressions for every new boundary. That is a large share of the server's work
per comment. Most comments are a few kilobytes and carry no file. Such a body is read at once and
split on its boundary, but only when it has exactly the framing browsers produce:

- ``--boundary CRLF`` first (after at most one CRLF), ``CRLF --boundary-- CRLF`` last, the boundary nowhere else;
- parts whose headers are ``Content-Disposition: form-data; name="…"`` alone (a text field), or
  with ``; filename=""``, an optional ``Content-Type`` and no content (a file input left empty).

A body in any other shape (a chosen file, quoted escapes, RFC 2231 parameters, other headers, a
preamble, more than ``SMALL`` bytes, a part over Werkzeug's limits) goes to Werkzeug's parser
unchanged, so the result is always the one Werkzeug would give. ``web.form_data`` calls it, through
Werkzeug's public hook (``Request.form_data_parser_class`` and ``FormDataParser.parse``).
"""
from __future__ import annotations

import io
import re

from werkzeug.datastructures import FileStorage, Headers

SMALL = 64 * 1024
_DISPOSITION = re.compile(rb'form-data; name="([^"\\\r\n%]*)"(; filename="")?')

Fields = list[tuple[str, str]]
Files = list[tuple[str, FileStorage]]


def parse_small(body: bytes, boundary: bytes, max_field_bytes: int | None = None,
                max_parts: int | None = None) -> tuple[Fields, Files] | None:
    """The fields and (empty) files of a body in the browsers' exact framing; None for any other."""
    delimiter = b"--" + boundary
    if body.startswith(b"\r\n"):  # an empty preamble, as some clients write it
        body = body[2:]
    head, tail = delimiter + b"\r\n", b"\r\n" + delimiter + b"--\r\n"
    if not boundary or not body.startswith(head) or not body.endswith(tail) or len(body) < len(head + tail):
        return None
    inner = body[len(head):len(body) - len(tail)]
    parts = inner.split(b"\r\n" + delimiter + b"\r\n")
    if inner.count(delimiter) != len(parts) - 1 or (max_parts is not None and len(parts) > max_parts):
        return None
    fields: Fields = []
    files: Files = []
    for part in parts:
        parsed = _part(part, max_field_bytes)
        if parsed is None:
            return None
        name, value = parsed
        if isinstance(value, FileStorage):
            files.append((name, value))
        else:
            fields.append((name, value))
    return fields, files


def _part(part: bytes, max_field_bytes: int | None) -> tuple[str, str | FileStorage] | None:
    header_block, separator, content = part.partition(b"\r\n\r\n")
    if not separator:
        return None
    disposition = content_type = None
    for line in header_block.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        key = key.strip(b" \t").lower()
        if not colon:
            return None
        if key == b"content-disposition" and disposition is None:
            disposition = value.strip(b" \t")
        elif key == b"content-type" and content_type is None:
            content_type = value.strip(b" \t")
        else:
            return None
    match = _DISPOSITION.fullmatch(disposition or b"")
    if match is None:
        return None
    try:
        name = match.group(1).decode()
    except UnicodeDecodeError:
        return None
    if match.group(2) is None:  # a text field
        if content_type is not None or (max_field_bytes is not None and len(content) > max_field_bytes):
            return None
        return name, content.decode("utf-8", "replace")
    if content:  # a file input with content but no name: not what a browser sends
        return None
    assert disposition is not None  # the pattern matched it
    try:
        headers = Headers([("Content-Disposition", disposition.decode())])
        if content_type is not None:
            headers.add("Content-Type", content_type.decode())
    except UnicodeDecodeError:
        return None
    return name, FileStorage(io.BytesIO(b""), "", name, headers=headers)
