"""The quick multipart reader gives exactly what Werkzeug's parser gives, or leaves the body to it."""
from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bench.wire import multipart
from feedback_app.web.form_data import AppRequest
from feedback_app.web.multipart import SMALL, parse_small

BOUNDARY = "----formboundaryAbC123"


def browser_body(fields, files=(("attachments", "", b""),)) -> bytes:
    return multipart(fields, files)[1]


def body_with(boundary: str, raw: bytes) -> dict:
    return EnvironBuilder(method="POST", data=raw,
                          content_type=f"multipart/form-data; boundary={boundary}").get_environ()


def parsed(cls, environ) -> tuple:
    environ["wsgi.input"].seek(0)
    request = cls(environ)
    files = [(k, f.filename, f.content_type, f.read()) for k, f in request.files.items(multi=True)]
    return request.form.to_dict(flat=False), files


def same_as_werkzeug(content_type: str, raw: bytes) -> tuple:
    environ = EnvironBuilder(method="POST", data=raw, content_type=content_type).get_environ()
    ours, theirs = parsed(AppRequest, environ), parsed(Request, environ)
    assert ours == theirs
    return ours


FIELDS = [
    ("csrf_token", "IjE4ZTQ1NmE.Zz-abc"), ("item", "5"), ("kind", "suggestion"),
    ("body", "建议规范涉企会议。\r\n第二段：提前通知企业，减少影响！"), ("name", ""), ("email", "用户@例子.中国"),
    ("privacy_consent", "y"), ("body", "重复的字段名"), ("empty", ""), ("dashes", "--not-a-boundary--"),
]


def test_a_browser_form_is_read_quickly_and_exactly():
    content_type, raw = multipart(FIELDS, [("attachments", "", b"")])
    boundary = content_type.split("boundary=")[1].encode()
    assert parse_small(raw, boundary) is not None  # the quick path is taken
    form, files = same_as_werkzeug(content_type, raw)
    assert form["body"] == ["建议规范涉企会议。\r\n第二段：提前通知企业，减少影响！", "重复的字段名"]
    assert files == [("attachments", "", "application/octet-stream", b"")]


@pytest.mark.parametrize("change", [
    lambda raw, b: raw.replace(b'filename=""', 'filename="举报材料.pdf"'.encode()),  # a chosen file
    lambda raw, b: raw.replace(b'name="item"', b'name="it\\"em"'),  # a quoted escape
    lambda raw, b: raw.replace(b'name="kind"', b"name*=UTF-8''kind"),  # RFC 2231
    lambda raw, b: raw.replace(b'name="item"\r\n', b'name="item"\r\nContent-Type: text/plain; charset=utf-8\r\n'),
    lambda raw, b: raw.replace(b'name="item"\r\n', b'name="item"\r\nX-Other: 1\r\n'),
    lambda raw, b: b"preamble text\r\n" + raw,
    lambda raw, b: raw + b"epilogue",
    lambda raw, b: raw[:-2],  # no line break after the closing delimiter
    lambda raw, b: raw.replace(b"5\r\n--", b"5\r\n--" + b + b"\r\n--", 1),  # the boundary inside a value
    lambda raw, b: raw.replace(b"\r\n", b"\n"),  # bare line feeds
    lambda raw, b: raw.replace(b"Content-Disposition", b"content-disposition"),
    lambda raw, b: raw.replace(b'name="item"', b'name="%E4%BA%8B"'),
])
def test_any_other_shape_gets_werkzeugs_answer(change):
    content_type, raw = multipart(FIELDS, [("attachments", "", b"")])
    boundary = content_type.split("boundary=")[1].encode()
    same_as_werkzeug(content_type, change(raw, boundary))


def test_a_file_with_content_is_werkzeugs_to_read():
    pdf = b"%PDF-1.4\n" + b"0" * 3000 + b"\n%%EOF\n"
    content_type, raw = multipart(FIELDS[:3], [("attachments", "举报材料.pdf", pdf)])
    assert parse_small(raw, content_type.split("boundary=")[1].encode()) is None
    _form, files = same_as_werkzeug(content_type, raw)
    assert files == [("attachments", "举报材料.pdf", "application/octet-stream", pdf)]


def test_a_large_body_is_werkzeugs_to_read():
    content_type, raw = multipart([("body", "字" * (SMALL // 3 + 10))])
    assert len(raw) > SMALL
    same_as_werkzeug(content_type, raw)


def test_werkzeugs_limits_still_hold():
    content_type, raw = multipart([("body", "x" * 2000)])
    environ = EnvironBuilder(method="POST", data=raw, content_type=content_type).get_environ()

    class Small(AppRequest):
        max_form_memory_size = 1000

    with pytest.raises(RequestEntityTooLarge):
        Small(environ).form  # noqa: B018  (reading it parses it)
    content_type, raw = multipart([(f"f{i}", "v") for i in range(20)])
    environ = EnvironBuilder(method="POST", data=raw, content_type=content_type).get_environ()

    class FewParts(AppRequest):
        max_form_parts = 10

    with pytest.raises(RequestEntityTooLarge):
        FewParts(environ).form  # noqa: B018


def test_werkzeugs_own_test_client_bodies_still_parse():
    environ = EnvironBuilder(method="POST", data={"a": "1", "f": (io.BytesIO(b""), "")},
                             content_type="multipart/form-data").get_environ()
    assert parsed(AppRequest, environ) == parsed(Request, environ) and parsed(AppRequest, environ)[0] == {"a": ["1"]}


def test_the_app_reads_forms_with_it(app):
    assert app.request_class is AppRequest


def test_a_boundary_beyond_ascii_gets_werkzeugs_answer():
    """A header arrives decoded as Latin-1: a boundary with a byte above 127 is not read by the quick path
    (read with the character replaced by "?", a body framed with "?" would match)."""
    content_type, raw = multipart(FIELDS, [("attachments", "", b"")])
    ascii_boundary = content_type.split("boundary=")[1]
    odd = ascii_boundary[:-1] + "\xe9"
    framed_with_question_mark = raw.replace(ascii_boundary.encode(), odd[:-1].encode() + b"?")
    content_type = f'multipart/form-data; boundary="{odd}"'  # quoted: unquoted, Werkzeug drops the character
    form, _files = same_as_werkzeug(content_type, framed_with_question_mark)
    assert form == {}
    same_as_werkzeug(content_type, raw.replace(ascii_boundary.encode(), odd.encode("latin-1")))
