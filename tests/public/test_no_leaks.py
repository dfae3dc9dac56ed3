"""The query code and the citizen's contact details stay out of logs, URLs, cookies, pages and mail."""
from __future__ import annotations

import base64
import io
import json
import logging
import re
import zlib

import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.core.logsafe import RedactingFilter, redact
from feedback_app.core.models import OutboxMessage, Submission, SubmissionEvent
from feedback_app.core.querycode import display
from tests.conftest import make_settings
from tests.factories import FORM, create_web_submission, form_fields, valid_data

NAME = "张三"
PHONE = "13800138000"
PHONE_E164 = "+8613800138000"
EMAIL = "zhangsan@example.com"
ADDRESS = "黄埔区香雪三路1号"
FOLLOW_UP = "补充情况：会议通知仍然只提前一天发出。"


def spellings(code: str) -> set[str]:
    """The query code as issued, as displayed, and as a citizen might type it."""
    shown = display(code)
    return {code, shown, code.lower(), shown.lower(), " ".join(shown.split("-"))}


class Collector(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def rendered(record: logging.LogRecord) -> str:
    """Everything a log line could carry: the message, its arguments, the traceback, the stack."""
    parts = [record.getMessage(), repr(record.args), record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def decode_session_cookie(value: str) -> str:
    """The JSON inside Flask's signed (not encrypted) session cookie."""
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


@pytest.fixture
def journey_app(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, log_level="DEBUG"))
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def captured(caplog, journey_app):
    """Every record from every logger at DEBUG, and separately what reaches ``app.logger`` itself."""
    # The root at DEBUG reaches every logger left at NOTSET; SQLAlchemy keeps its own WARNING level
    # (its DEBUG row logging would print stored rows, contact details included, whatever the app does).
    caplog.set_level(logging.DEBUG)
    for name in ("feedback_app", "werkzeug", "flask_limiter", "flask_wtf", "gunicorn.error"):
        caplog.set_level(logging.DEBUG, logger=name)
    own = Collector()
    journey_app.logger.addHandler(own)
    yield caplog, own
    journey_app.logger.removeHandler(own)


def run_journey(client):
    """The whole citizen journey; returns (responses by step, reference, code)."""
    steps: dict[str, object] = {}
    steps["form"] = client.get(FORM + "?item=5")
    data = {**form_fields(client), **valid_data(name=NAME, phone=PHONE, email=EMAIL, reply_by="phone")}
    steps["submit"] = client.post(FORM, data=data, content_type="multipart/form-data")
    assert steps["submit"].status_code == 303
    steps["receipt"] = client.get(steps["submit"].headers["Location"])
    html = steps["receipt"].get_data(as_text=True)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    code = re.search(r'id="query-code">([^<]+)<', html).group(1).replace("-", "")
    steps["track"] = client.get("/track")
    steps["lookup"] = client.post("/track", data={"reference": reference, "query_code": display(code).lower()})
    assert steps["lookup"].status_code == 303
    steps["status"] = client.get(steps["lookup"].headers["Location"])
    assert steps["status"].status_code == 200
    steps["follow_up"] = client.post("/track/follow-up", data={"text": FOLLOW_UP})
    assert steps["follow_up"].status_code == 303
    steps["status_after"] = client.get(steps["follow_up"].headers["Location"])
    assert FOLLOW_UP in steps["status_after"].get_data(as_text=True)
    return steps, reference, code


def test_journey_leaks_neither_code_nor_phone(journey_app, captured, session):
    caplog, own = captured
    journey_app.logger.debug("journey starts")  # the capture itself works
    steps, reference, code = run_journey(journey_app.test_client())
    secrets = spellings(code) | {PHONE, PHONE_E164}

    # Logs: no record from any logger carries the code or the phone number.
    assert any(r.getMessage() == "journey starts" for r in caplog.records)
    assert any(r.getMessage() == "journey starts" for r in own.records)
    for record in caplog.records + own.records:
        text = rendered(record)
        assert not [s for s in secrets if s in text], (record.name, text)

    # Headers: no URL and no header value names the code.
    for step, response in steps.items():
        for header, value in response.headers.items():
            assert not [s for s in spellings(code) if s in value], (step, header)
        assert not [s for s in spellings(code) if s in response.headers.get("Location", "")]

    # Bodies: the code only on the receipt; the phone number nowhere.
    for step, response in steps.items():
        body = response.get_data(as_text=True)
        shown = [s for s in spellings(code) if s in body]
        if step == "receipt":
            assert display(code) in body
        else:
            assert shown == [], step
        assert PHONE not in body and PHONE_E164 not in body, step
        assert "138 0013 8000" not in body, step

    # It was a real journey: the contact details were stored, normalised; the code is kept only as a hash.
    stored = session.scalar(select(Submission).where(Submission.reference == reference))
    assert (stored.name, stored.phone, stored.email, stored.reply_by) == (NAME, PHONE_E164, EMAIL, "phone")
    assert [e.text for e in stored.events if e.action == "follow_up"] == [FOLLOW_UP]
    for table in (Submission.__table__, SubmissionEvent.__table__, OutboxMessage.__table__):
        for row in session.execute(select(table)).all():
            assert not [s for s in spellings(code) if s in repr(tuple(row))], table.name


def test_tracking_grant_in_the_cookie_does_not_hold_the_code(journey_app, session, bulletin):
    """Looking a submission up leaves only its id and an expiry in the (signed, readable) session cookie."""
    submission, code = create_web_submission(session, journey_app.extensions["settings"], bulletin=bulletin,
                                             phone=PHONE_E164, name=NAME)
    client = journey_app.test_client()
    response = client.post("/track", data={"reference": submission.reference, "query_code": code})
    assert response.status_code == 303
    decoded = json.loads(decode_session_cookie(client.get_cookie("fb_session").value))
    assert set(decoded) == {"tracking"}
    assert set(decoded["tracking"]) == {"id", "until"}
    raw = json.dumps(decoded)
    assert not [s for s in spellings(code) | {PHONE, PHONE_E164, submission.reference} if s in raw]


def test_acknowledgement_mail_has_reference_and_link_but_no_code(journey_app, session):
    client = journey_app.test_client()
    data = {**form_fields(client), **valid_data(name=NAME, phone=PHONE, email=EMAIL, reply_by="email")}
    assert client.post(FORM, data=data, content_type="multipart/form-data").status_code == 303
    html = client.get("/receipt").get_data(as_text=True)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    code = re.search(r'id="query-code">([^<]+)<', html).group(1).replace("-", "")

    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    [mail] = session.scalars(select(OutboxMessage).where(OutboxMessage.submission_id == submission.id)).all()
    assert (mail.kind, mail.recipient, mail.status) == ("acknowledgement", EMAIL, "pending")
    assert reference in mail.subject and reference in mail.body
    public_url = journey_app.extensions["settings"].public_url
    assert public_url + "/track" in mail.body
    for secret in spellings(code):
        assert secret not in mail.subject and secret not in mail.body
    assert PHONE not in mail.body and PHONE_E164 not in mail.body


def test_anonymous_submission_keeps_no_contact_details_and_sends_no_mail(journey_app, session):
    client = journey_app.test_client()
    data = {**form_fields(client), **valid_data(anonymous="y", name=NAME, phone=PHONE, email=EMAIL,
                                                address=ADDRESS, reply_by="online")}
    response = client.post(FORM, data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    html = client.get("/receipt").get_data(as_text=True)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    assert re.search(r'id="query-code">[0-9A-Z-]{19}<', html)

    stored = session.scalar(select(Submission).where(Submission.reference == reference))
    assert stored.anonymous is True
    assert (stored.name, stored.phone, stored.email, stored.address) == (None, None, None, None)
    assert stored.reply_by == "online"
    assert session.scalars(select(OutboxMessage)).all() == []
    assert PHONE not in html and EMAIL not in html and NAME not in html


# --- the log redaction filter ----------------------------------------------------------------------

CODE = "7K3M9QXW2HT8VB4N"


def test_redacting_filter_masks_contacts_and_code_in_a_logged_exception():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("feedback_app.tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        try:
            raise ValueError(f"cannot reach {PHONE_E164} / {EMAIL}; code {display(CODE)} raw {CODE}")
        except ValueError:
            logger.exception("failed for %s (%s), code %s", PHONE, EMAIL, display(CODE))
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    out = stream.getvalue()
    assert "Traceback (most recent call last)" in out and "ValueError: cannot reach" in out
    for secret in (PHONE, PHONE_E164, EMAIL, display(CODE), CODE):
        assert secret not in out
    assert out.count("[phone]") == 2 and out.count("[email]") == 2 and out.count("[code]") == 3
    assert out.startswith("ERROR feedback_app.tests.redaction: failed for [phone] ([email]), code [code]")


@pytest.mark.parametrize(
    "line, secret",
    [
        (f"电话{PHONE}已登记", PHONE),
        (f"电话 {PHONE_E164}", PHONE_E164),
        ("电话 +86 13800138000", "13800138000"),
        ("座机020-82378781", "82378781"),
        (f"邮箱{EMAIL}。", EMAIL),
        (f"code={CODE}", CODE),
        (f"code {display(CODE)}.", display(CODE)),
        (f"typed {display(CODE).lower()}", display(CODE).lower()),
        (f"查询码{display(CODE)}已生成", display(CODE)),
        (f"查询码{CODE}已生成", CODE),
    ],
)
def test_redact_masks_each_spelling(line, secret):
    assert secret not in redact(line)


def test_redact_keeps_ordinary_text():
    line = "受理编号 HP2026-000123 已受理，共 3 个附件，耗时 1500 毫秒"
    assert redact(line) == line
