"""Text that is not what it looks like, end to end through the real app, on SQLite and on PostgreSQL
(``FEEDBACK_DATABASE_URL``): the one rule for text (``core.text``) on the citizen's form and on the
clerk's letter form, bodies in other charsets or not text at all (``web.form_data``), and a NUL that
must never reach the database — PostgreSQL refuses to be asked about one — from a form field, a
query parameter or a path.

What is refused comes back as 400 with the form as it was typed (escaped, U+FFFD where bytes were not
text, direction controls written out as [U+202E]) and the Chinese message next to the field; nothing is
stored. What is accepted is 303 to the receipt, and stored exactly as sent: not NFC, not re-quoted.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from urllib.parse import quote, quote_plus

import pytest
from markupsafe import escape
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from feedback_app.app import create_app
from feedback_app.core.database import utcnow
from feedback_app.core.models import Submission
from feedback_app.core.text import CONTROL_CHARACTERS, DIRECTION_CHARACTERS, GARBLED
from feedback_app.core.text import CONTROLS as CONTROL_RE
from tests.auth.helpers import client_as, create_staff, csrf_of
from tests.conftest import make_settings
from tests.factories import FORM, create_web_submission, form_fields, receipt_of, valid_data

LETTER = "/staff/intake/letter"
BODY = "建议进一步规范涉企会议的时间安排，提前通知企业。"
NAME = "李四"
ADDRESS = "广州市黄埔区大沙地东路1号 510700"
BOUNDARY = "----faultsBoundary7MA4YWxkTrZu0gW"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
RLO, PDF = "\u202e", "\u202c"  # RIGHT-TO-LEFT OVERRIDE, POP DIRECTIONAL FORMATTING


# ---------- the two ways in: the citizen's form and the clerk's letter form ----------

@dataclass
class Way:
    """A form that takes a comment, with the browser that fills it in."""

    name: str
    client: object
    path: str
    base: dict[str, str]

    def fields(self, **overrides: str | bytes | None) -> dict[str, str | bytes]:
        """The page's hidden tokens (read from a fresh GET, as a browser has them) and a complete,
        valid filling-in, with ``overrides`` (None: the field left out)."""
        html = self.client.get(self.path).get_data(as_text=True)
        hidden = {"form_token": re.search(r'name="form_token" value="([^"]*)"', html).group(1), **csrf_of(html)}
        data = {**hidden, **self.base, **overrides}
        return {k: v for k, v in data.items() if v is not None}

    def send(self, data: dict[str, str | bytes], encoding: str = "multipart", charset: str | None = None):
        """POST ``data`` as a ``multipart`` or ``urlencoded`` body; ``charset``: the one declared (and
        used to percent-encode the text) of a URL-encoded body."""
        body, content_type = encode(data, encoding, charset)
        return self.client.post(self.path, data=body, content_type=content_type)

    def receipt(self) -> str:
        receipt = "/staff/intake/receipt" if self.name == "letter" else "/receipt"
        html = self.client.get(receipt).get_data(as_text=True)
        return re.search(r'id="reference">([^<]+)<', html).group(1)


@pytest.fixture
def clerk(app, session, bulletin):
    return client_as(app, create_staff(session, username="deng.ji", role="clerk", display_name="邓记"))


@pytest.fixture
def admin(app, session):
    return client_as(app, create_staff(session, username="guan.li", role="admin", totp=True))


@pytest.fixture(params=["citizen", "letter"])
def way(request, app, client, bulletin, settings) -> Way:
    if request.param == "citizen":
        return Way("citizen", client, FORM, {**valid_data(body=BODY), "name": NAME, "address": ADDRESS})
    today = utcnow().astimezone(settings.tz).date()
    base = {"name": NAME, "address": ADDRESS, "postmark_date": (today - timedelta(days=6)).isoformat(),
            "arrival_date": (today - timedelta(days=3)).isoformat(), "envelope_note": "yes", "item": "5",
            "kind": "suggestion", "body": BODY, "reply_by": "letter"}
    return Way("letter", request.getfixturevalue("clerk"), LETTER, base)


# ---------- bodies as a program may send them ----------

def urlencoded(data: dict[str, str | bytes], charset: str = "utf-8") -> bytes:
    """Text percent-encoded in ``charset``; bytes put in as they are (a client that did not escape them)."""
    return b"&".join(quote_plus(k).encode() + b"=" + (v if isinstance(v, bytes) else
                                                      quote_plus(v, encoding=charset).encode("ascii"))
                     for k, v in data.items())


def multipart(data: dict[str, str | bytes]) -> bytes:
    """A browser's multipart body; bytes put in as they are."""
    out = b""
    for k, v in data.items():
        out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                + (v if isinstance(v, bytes) else v.encode()) + b"\r\n")
    return out + f"--{BOUNDARY}--\r\n".encode()


def encode(data: dict[str, str | bytes], encoding: str, charset: str | None = None) -> tuple[bytes, str]:
    """The body and its Content-Type."""
    if encoding == "multipart":
        return multipart(data), MULTIPART
    return urlencoded(data, charset or "utf-8"), URLENCODED + (f"; charset={charset}" if charset else "")


# ---------- what the page says, what was stored ----------

def count(session) -> int:
    session.rollback()  # end the test's read transaction: see what the requests committed
    return session.scalar(select(func.count()).select_from(Submission))


def stored(session, reference: str) -> Submission:
    session.rollback()
    return session.scalar(select(Submission).where(Submission.reference == reference))


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.S)
    assert match, f"no error next to {field}"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def shown_again(html: str, field: str) -> str:
    """The field's value on the page, as the HTML has it (escaped)."""
    if field == "body":
        match = re.search(r'<textarea id="body"[^>]*>(.*?)</textarea>', html, re.S)
    else:
        match = re.search(rf'<input[^>]*id="{field}"[^>]*value="([^"]*)"', html)
    assert match, f"no field {field}"
    return match.group(1)


def refused(response, session, field: str, message: str) -> str:
    """400, the message next to ``field``, nothing stored; the page."""
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:2000]
    assert field_error(html, field) == message
    assert count(session) == 0
    return html


def accepted(way: Way, response, session) -> Submission:
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    assert response.headers["Location"].endswith("/receipt")
    submission = stored(session, way.receipt())
    assert count(session) == 1
    return submission


# ---------- control characters: refused at the field, on every form ----------

TAIL = "，请督促落实。"
CONTROLS = [
    pytest.param("body", "建议<b>规范</b>涉企\x00会议&安排" + TAIL, id="NUL-body"),
    pytest.param("name", "李<四>\x00", id="NUL-name"),
    pytest.param("address", "黄埔区\x00大沙地东路1号", id="NUL-address"),
    pytest.param("body", "建议规范涉企会议的时间\x07安排" + TAIL, id="BEL-body"),
    pytest.param("name", "李\x07四", id="BEL-name"),
    pytest.param("address", "黄埔区大沙地东路\x07 1号", id="BEL-address"),
    pytest.param("body", "建议规范涉企会议的时间\x85安排" + TAIL, id="NEL-body"),
    pytest.param("name", "李四\x85", id="NEL-name"),
    pytest.param("address", "黄埔区\x85大沙地东路1号", id="NEL-address"),
    pytest.param("body", "\x1b[31m建议规范涉企会议的时间安排\x1b[0m" + TAIL, id="ESC-body"),
    pytest.param("body", "建议规范涉企会议的时间安排\x7f" + TAIL, id="DEL-body"),
    pytest.param("body", "建议规范涉企会议的时间安排\x9b" + TAIL, id="CSI-body"),
    pytest.param("body", "第一行：建议规范涉企会议\r第二行：提前通知企业" + TAIL, id="lone-CR-body"),
]


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
@pytest.mark.parametrize("field, typed", CONTROLS)
def test_a_control_character_is_refused_next_to_its_field_and_nothing_is_stored(
        way, session, field, typed, encoding):
    response = way.send(way.fields(**{field: typed}), encoding)
    html = refused(response, session, field, CONTROL_CHARACTERS)
    # as typed, each control character shown as U+FFFD (as the message says): the person deletes it
    assert unescape(shown_again(html, field)) == CONTROL_RE.sub("\ufffd", typed)
    for other in {"body", "name", "address"} - {field}:
        assert unescape(shown_again(html, other)) == way.base[other]


def test_tabs_and_line_breaks_are_text(way, session):
    body = "第一段：建议规范涉企会议。\r\n\t第二段：提前通知企业。\n第三段：公开检查计划。"
    submission = accepted(way, way.send(way.fields(body=body)), session)
    assert submission.body == body.replace("\r\n", "\n")


# ---------- bytes that are not text ----------

def within(bad: bytes) -> bytes:
    """A comment that is UTF-8 but for ``bad``."""
    return "建议规范".encode() + bad + ("涉企会议的时间安排" + TAIL).encode()


GARBAGE = [
    pytest.param("body", within(b"\xff\xfe"), id="FF-FE-body"),
    pytest.param("body", within(b"\xc0\xaf"), id="overlong-body"),  # "/" in two bytes
    pytest.param("body", ("建议规范涉企会议的时间安排" + TAIL).encode() + b"\xe4\xba", id="cut-short-body"),
    pytest.param("body", within(b"\xed\xa0\x80"), id="surrogate-body"),
    pytest.param("name", "李".encode() + b"\xc0\xaf", id="overlong-name"),
    pytest.param("address", "黄埔区".encode() + b"\x80\x80" + "1号".encode(), id="continuation-address"),
]


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded-raw", "urlencoded-escaped"])
@pytest.mark.parametrize("field, raw", GARBAGE)
def test_bytes_that_are_not_utf8_are_refused_next_to_the_field(way, session, field, raw, encoding):
    value = quote(raw).encode("ascii") if encoding == "urlencoded-escaped" else raw
    response = way.send(way.fields(**{field: value}), encoding.split("-")[0])
    html = refused(response, session, field, GARBLED)
    as_read = raw.decode("utf-8", "replace")  # each byte that is not text: one U+FFFD, never %C0%AF
    assert "\ufffd" in as_read and "%" not in unescape(shown_again(html, field))
    assert shown_again(html, field) == escape(as_read)


# ---------- declared charsets ----------

GBK_BODY = "来信反映：第5项整改中提到的涉企检查计划至今没有在网站公开，请督促落实。"
GBK_NAME = "朱镕基"  # 镕: in GBK, not in GB2312
GBK_ADDRESS = "广州市黄埔区堃元路1号"  # 堃: likewise


@pytest.mark.parametrize("charset", ["gbk", "GBK", "gb2312", "x-gbk", "gb18030"])  # GB2312: as browsers read it
@pytest.mark.parametrize("escaped", [True, False], ids=["escaped", "raw-bytes"])
def test_a_gbk_body_is_decoded_and_stored_exactly(way, session, charset, escaped):
    data = way.fields(body=GBK_BODY, name=GBK_NAME, address=GBK_ADDRESS)
    if escaped:
        body = urlencoded(data, "gbk")
    else:  # a client that wrote the GBK bytes without percent-escapes
        body = b"&".join(k.encode() + b"=" + (quote_plus(v).encode() if v.isascii() else v.encode("gbk"))
                         for k, v in data.items())
        assert b"%" not in body.partition(b"body=")[2][:10]
    response = way.client.post(way.path, data=body, content_type=f"{URLENCODED}; charset={charset}")
    submission = accepted(way, response, session)  # never re-quoted, never garbled
    assert (submission.body, submission.name, submission.address) == (GBK_BODY, GBK_NAME, GBK_ADDRESS)
    assert submission.body.encode("utf-8") == GBK_BODY.encode("utf-8")


def test_gb18030_reads_what_gbk_cannot(way, session):
    body = "反映：𠀀与䶮字在名单上显示为问号，请核查系统编码问题。"  # 4-byte GB18030 sequences
    assert accepted(way, way.send(way.fields(body=body), "urlencoded", "gb18030"), session).body == body


def test_gbk_sent_without_its_charset_is_refused_not_guessed(way, session):
    data = way.fields(body=GBK_BODY, name=GBK_NAME)
    response = way.client.post(way.path, data=urlencoded(data, "gbk"), content_type=URLENCODED)  # no charset
    html = refused(response, session, "body", GARBLED)
    assert field_error(html, "name") == GARBLED
    assert shown_again(html, "body") == escape(GBK_BODY.encode("gbk").decode("utf-8", "replace"))


@pytest.mark.parametrize("charset", ["x-no-such-charset", "rot13"])  # unknown; not a text encoding
def test_an_unknown_charset_is_read_as_utf8_and_judged_as_such(way, session, charset):
    data = way.fields(body=GBK_BODY, name=GBK_NAME)
    utf8 = way.client.post(way.path, data=urlencoded(data), content_type=f"{URLENCODED}; charset={charset}")
    submission = accepted(way, utf8, session)
    assert (submission.body, submission.name) == (GBK_BODY, GBK_NAME)


def test_gbk_bytes_under_an_unknown_charset_are_refused(way, session):
    data = way.fields(body=GBK_BODY)
    response = way.client.post(way.path, data=urlencoded(data, "gbk"),
                               content_type=f"{URLENCODED}; charset=x-no-such-charset")
    refused(response, session, "body", GARBLED)


# ---------- direction controls ----------

@pytest.mark.parametrize("field, typed", [
    ("name", f"张{RLO}三"),
    ("name", "\u2066李四\u2069"),
    ("address", f"黄埔区{RLO}号1路东地沙大"),
])
def test_a_direction_control_in_a_name_or_address_is_refused(way, session, field, typed):
    html = refused(way.send(way.fields(**{field: typed})), session, field, DIRECTION_CHARACTERS)
    shown = re.sub("[\u202a-\u202e\u2066-\u2069]", lambda m: f"[U+{ord(m.group()):04X}]", typed)
    assert shown_again(html, field) == escape(shown)  # written out where it is, for the person to delete
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", html)


def test_a_direction_control_in_the_text_survives_the_form_coming_back(way, session):
    """The text comes back for another field's mistake: the direction control is in the text area as a
    character reference, which the browser reads back as the character, so sending again stores the
    text as first typed, not a written-out [U+202E]."""
    body = f"反映：某公司把合同编号写成{RLO}5202-ABC{PDF}，请核查是否存在伪造。"
    html = refused(way.send(way.fields(body=body, name="李\x07四")), session, "name", CONTROL_CHARACTERS)
    assert "&#x202E;" in shown_again(html, "body") and "[U+202E]" not in shown_again(html, "body")
    assert unescape(shown_again(html, "body")) == body
    submission = accepted(way, way.send(way.fields(body=unescape(shown_again(html, "body")))), session)
    assert submission.body == body


def test_a_direction_control_in_the_text_is_kept_and_shown_written_out(way, app, session, admin):
    body = f"反映：某公司把合同编号写成{RLO}5202-ABC{PDF}，请核查是否存在伪造。"
    submission = accepted(way, way.send(way.fields(body=body)), session)
    assert submission.body == body and submission.body.encode() == body.encode()  # stored byte for byte

    page = admin.get(f"/staff/submissions/{submission.reference}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "反映：某公司把合同编号写成[U+202E]5202-ABC[U+202C]，请核查是否存在伪造。" in html
    assert RLO not in html and PDF not in html

    for fmt in ("csv", "xlsx"):  # the ledger has no column for the text: it must not leak in raw either
        response = admin.post(f"/staff/ledger/export.{fmt}")
        assert response.status_code == 200
        text = ledger_text(response.get_data(), fmt)
        assert submission.reference in text and RLO not in text


def ledger_text(data: bytes, fmt: str) -> str:
    """Every cell of an export, as one text."""
    if fmt == "csv":
        return "\n".join(",".join(row) for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "\n".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))


# ---------- stored as sent ----------

NFD_BODY = "Cafe\u0301与\u1112\u1161\u11ab\u1100\u116e\u11a8（韩文字母）、ＡＢＣ全角字母：建议如实记录外籍企业名称。"
NFD_NAME = "Jose\u0301 \u1100\u1175\u11b7"  # José 김, decomposed
NFD_ADDRESS = "黄埔区\u1112\u1161\u11ab路1号"


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_decomposed_text_is_stored_as_sent_not_composed(way, session, encoding):
    assert unicodedata.normalize("NFC", NFD_BODY) != NFD_BODY  # the test means something
    response = way.send(way.fields(body=NFD_BODY, name=NFD_NAME, address=NFD_ADDRESS), encoding)
    submission = accepted(way, response, session)
    assert submission.body.encode() == NFD_BODY.encode()
    assert submission.name.encode() == NFD_NAME.encode()
    assert submission.address.encode() == NFD_ADDRESS.encode()


# ---------- a body without a length ----------

def streamed(client, path: str, body: bytes, content_type: str):
    """A POST without Content-Length (chunked), as a server that ends the stream itself passes it on."""
    environ = EnvironBuilder(path=path, method="POST").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"CONTENT_TYPE": content_type, "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
                    "HTTP_TRANSFER_ENCODING": "chunked"})
    return client.open(Request(environ))


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_a_streamed_body_past_the_limit_is_refused_whole_never_cut_short(database_url, tmp_path, bulletin, encoding):
    app = create_app(make_settings(database_url, tmp_path, max_request_bytes=256 * 1024))
    client = app.test_client()
    factory = app.extensions["db_sessionmaker"]
    try:
        too_long = {**form_fields(client), **valid_data(body=BODY + "。" * 100_000)}  # 300 kB in UTF-8
        response = streamed(client, FORM, *encode(too_long, encoding))
        assert response.status_code == 413 and "提交内容过大" in response.get_data(as_text=True)
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Submission)) == 0
        response = streamed(client, FORM, *encode({**form_fields(client), **valid_data(body=BODY)}, encoding))
        assert response.status_code == 303
        with factory() as s:
            assert s.scalar(select(Submission.body)) == BODY
        assert receipt_of(client)[0]
    finally:
        app.extensions["db_engine"].dispose()


# ---------- a NUL never reaches the database ----------

PUBLIC_URLS = [
    FORM + "?item=5%00", FORM + "?item=%00", "/bulletins/huangpu-2025-03-28%00/feedback",
    "/bulletins/huangpu%002025", "/bulletins/huangpu-2025-03-28/items/5/comments?page=%00",
    "/track?reference=HP2025-000001%00", "/staff/login?next=%2Fstaff%2F%00", "/statistics?month=2025-03%00",
    "/?%00=1",
]
STAFF_URLS = [
    "/staff/?q=%00", "/staff/?search=1&after=%00", "/staff/?state=received%00", "/staff/items?bulletin=%00",
    "/staff/items/5?bulletin=huangpu%00&after=%00", "/staff/submissions/HP2025-000001%00",
    "/staff/submissions/%00/replies/1/letter", "/staff/publication/HP2025-000001%00",
    "/staff/ledger?state=%00&from=%00", "/staff/stats?bulletin=%00", "/staff/mail/?before=%00",
]


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_a_nul_in_a_public_url_is_a_bad_request(client, bulletin, url):
    response = client.get(url)
    assert response.status_code == 400 and "请求无效" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", STAFF_URLS)
def test_a_nul_in_a_staff_url_is_a_bad_request(admin, bulletin, url):
    response = admin.get(url)
    assert response.status_code == 400 and "请求无效" in response.get_data(as_text=True)


def test_no_page_answers_a_nul_with_500(app, session, settings, bulletin, admin, client):
    """Every GET route, with a NUL in each of its arguments, and in every query parameter any page reads."""
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    good = {"reference": submission.reference, "slug": bulletin.slug}
    params = ["q", "item", "page", "bulletin", "next", "before", "after", "month", "search", "from", "to", "state",
              "channel", "kind", "unit", "due", "sort", "reference"]
    tried = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        urls = []
        for bad in [None, *rule.arguments]:
            path = rule.rule
            for arg in rule.arguments:
                value = "a%00b" if arg == bad else good.get(arg, "1")
                path = re.sub(rf"<(?:[^>:]+:)?{arg}>", value, path)
            urls.append(path if bad else path + "?" + "&".join(f"{p}=x%00" for p in params))
        for url in urls:
            for who in (admin, client):
                tried += 1  # 404: a NUL where a number belongs matches no route
                assert who.get(url).status_code in (400, 404), url
    assert tried > 50


FIELDS = ["q", "after", "state", "channel", "item", "kind", "unit", "due", "from", "to", "search", "sort", "reference",
          "query_code", "target", "reason", "body", "note", "name", "username", "password", "code", "method", "days",
          "handler", "display_name", "role", "email", "phone", "address", "text", "reply", "slug", "bulletin",
          "month", "next", "acknowledge", "caller_number", "line", "place", "visitor_name_1", "visitor_name_9"]


def test_no_form_answers_a_nul_with_500(app, session, settings, bulletin, admin):
    """Every POST route, with a NUL in each of its arguments, and with a NUL in every field any form has:
    a form refuses it at the field (``web.forms.Form``), a view that reads a field itself never sends it
    on to the database. Staff routes as an admin (acting on another account), the others as the citizen
    who is following the submission."""
    submission, code = create_web_submission(session, settings, bulletin=bulletin)
    other = create_staff(session, username="qi.ta", role="clerk")
    citizen = app.test_client()
    assert citizen.post("/track", data={"reference": submission.reference, "query_code": code}).status_code == 303
    good = {"reference": submission.reference, "slug": bulletin.slug, "fmt": "csv", "action": "note",
            "user_id": str(other.id)}
    actions = ["accept", "reject", "merge", "assign", "close", "reopen", "note", "reveal", "extend", "draft_reply",
               "approve_reply", "record_delivery"]
    tried = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint == "auth.logout":
            continue
        who = admin if rule.rule.startswith("/staff") else citizen
        for bad in [None, *rule.arguments]:
            path = rule.rule
            for arg in rule.arguments:
                path = re.sub(rf"<(?:[^>:]+:)?{arg}>", "a%00b" if arg == bad else good.get(arg, "1"), path)
            if bad is not None:
                assert who.post(path).status_code in (400, 404), path
                continue
            for one in (actions if "<action>" in rule.rule else [None]):
                target = path if one is None else path.replace("/note", f"/{one}")
                tried += 1
                response = who.post(target, data=dict.fromkeys(FIELDS, "a\x00b"))
                assert response.status_code < 500, target
                assert response.headers.get("Location", "").split("?")[0] not in ("/staff/login", "/track"), target
    assert tried > 30 and admin.get("/staff/").status_code == 200  # still logged in: every form was tried


def test_a_nul_in_the_staff_search_box_is_refused(admin, bulletin, session, settings):
    create_web_submission(session, settings, bulletin=bulletin)
    assert admin.post("/staff/search", data={"q": "营商\x00环境"}).status_code == 400
    assert admin.post("/staff/search", data={"q": "营商\x07环境"}).status_code == 400
    assert admin.post("/staff/search", data={"q": "营商环境"}).status_code == 303


@pytest.mark.parametrize("field", ["reference", "query_code"])
def test_a_nul_on_the_tracking_form_is_refused_next_to_the_field(client, session, settings, bulletin, field):
    submission, code = create_web_submission(session, settings, bulletin=bulletin)
    data = {"reference": submission.reference, "query_code": code}
    data[field] += "\x00"
    response = client.post("/track", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(html, field) == CONTROL_CHARACTERS


def test_a_nul_on_the_login_form_is_refused_and_a_nul_in_a_password_is_a_wrong_password(app, session):
    create_staff(session, username="deng.ji", role="clerk")
    client = app.test_client()
    response = client.post("/staff/login", data={"username": "deng.ji\x00", "password": "x"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "username") == CONTROL_CHARACTERS
    response = client.post("/staff/login", data={"username": "deng.ji", "password": "correct horse\x00battery"})
    assert response.status_code in (400, 401) and "用户名或密码" in response.get_data(as_text=True)
