"""A URL-encoded body is read as Werkzeug reads it when it is valid UTF-8, and never kept as
percent-escapes when it is not: what does not decode becomes U+FFFD, which the forms refuse."""
from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from feedback_app.web.form_data import AppRequest, parse_urlencoded

VALID = [
    urlencode({"body": "建议规范涉企会议。\r\n第二段：提前通知企业！", "name": "", "email": "用户@例子.中国"}),
    "a=1&a=2&b=&c&&d=x+y%2Bz&e=%E4%BA%8B",
    "only",
    "",
    "=value&name=",
    "x=%zz&y=%4",  # malformed escapes stay as typed
]


def werkzeugs(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict:
    environ = EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    return Request(environ).form.to_dict(flat=False)


def ours(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict:
    environ = EnvironBuilder(method="POST", data=body, content_type=content_type).get_environ()
    return AppRequest(environ).form.to_dict(flat=False)


@pytest.mark.parametrize("body", VALID)
def test_a_valid_body_reads_as_werkzeug_reads_it(body):
    assert ours(body.encode()) == werkzeugs(body.encode())


@pytest.mark.parametrize("escaped, expected", [
    ("%FF%FE", "\ufffd\ufffd"),  # not UTF-8 at all
    ("%C0%AF", "\ufffd\ufffd"),  # an overlong "/"
    ("%E4%BA", "\ufffd"),  # a character cut short
    ("ok%ED%A0%80", "ok\ufffd\ufffd\ufffd"),  # a surrogate
])
def test_bytes_that_are_not_utf8_become_replacement_characters_not_escapes(escaped, expected):
    assert werkzeugs(f"name={escaped}".encode())["name"] != [expected]  # Werkzeug keeps escapes
    assert ours(f"name={escaped}".encode()) == {"name": [expected]}


def test_a_declared_charset_is_decoded():
    gbk = urlencode({"name": "张三", "body": "涉企检查"}, encoding="gbk").encode()
    assert ours(gbk, "application/x-www-form-urlencoded; charset=gbk") == {"name": ["张三"], "body": ["涉企检查"]}
    assert ours(gbk, "application/x-www-form-urlencoded; charset=GB18030") == {"name": ["张三"], "body": ["涉企检查"]}
    assert "\ufffd" in ours(gbk)["name"][0]  # the same bytes as UTF-8: garbled, and refused by the forms


@pytest.mark.parametrize("charset", ["no-such-charset", "rot13", "hex"])
def test_an_unknown_or_non_text_charset_is_read_as_utf8(charset):
    body = ("name=" + quote("张三")).encode()
    assert ours(body, f"application/x-www-form-urlencoded; charset={charset}") == {"name": ["张三"]}


def test_raw_bytes_outside_ascii_are_read_as_if_escaped():
    assert ours("name=张三".encode()) == {"name": ["张三"]}
    assert ours(b"name=\xff") == {"name": ["\ufffd"]}
    assert parse_urlencoded("a=张三".encode("gbk"), "gbk") == [("a", "张三")]


def _streamed(body: bytes, limit: int, content_type: str) -> AppRequest:
    """A body sent without a length (chunked), as a server that ends the stream itself passes it."""
    environ = EnvironBuilder(method="POST").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["CONTENT_TYPE"] = content_type
    environ["wsgi.input"], environ["wsgi.input_terminated"] = io.BytesIO(body), True
    request = AppRequest(environ)
    request.max_content_length = limit
    return request


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b"])
def test_a_streamed_body_reaching_the_limit_is_refused_whole(content_type):
    body = b"body=" + b"x" * 5000 if "urlencoded" in content_type else (
        b'--b\r\nContent-Disposition: form-data; name="body"\r\n\r\n' + b"x" * 5000 + b"\r\n--b--\r\n")
    with pytest.raises(RequestEntityTooLarge):
        _ = _streamed(body, 4000, content_type).form
    assert _streamed(body, 6000, content_type).form["body"] == "x" * 5000


@pytest.mark.parametrize("charset", ["utf-16", "utf-32", "idna", "unicode_escape", "cp037", "rot13", "base64"])
def test_a_declared_charset_no_browser_sends_is_read_as_utf8(charset):
    """UTF-16 would raise on odd bytes, idna and unicode_escape would read escapes as text, EBCDIC is not
    ASCII: none is a browser's form encoding, so each body is read as UTF-8 and judged as such."""
    body = "body=%E5%BB%BA%E8%AE%AE%5Cx41&name=%E6%9D%8E".encode("ascii")
    assert parse_urlencoded(body, charset) == [("body", "建议\\x41"), ("name", "李")]
    assert parse_urlencoded(b"body=%C0%AF", charset) == [("body", "\ufffd\ufffd")]


def test_a_big5_or_latin_page_is_decoded_as_declared():
    assert parse_urlencoded("n=臺灣".encode("big5").replace(b"\xc1", b"%C1"), "big5") == [("n", "臺灣")]
    assert parse_urlencoded(b"n=Ren%E9e", "windows-1252") == [("n", "Renée")]
