"""The clerk's pages: log a phone call, a letter, a visit; the receipt; who may; nothing typed lost."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from feedback_app.app import create_app
from feedback_app.audit.log import verify
from feedback_app.auth.accounts import create_unit
from feedback_app.core.database import utcnow
from feedback_app.core.models import Attachment, AuditEntry, Deadline, Submission
from tests.auth.helpers import client_as, create_staff, csrf_of
from tests.conftest import make_settings

PHONE, LETTER, VISIT, RECEIPT = ("/staff/intake/phone", "/staff/intake/letter", "/staff/intake/visit",
                                 "/staff/intake/receipt")
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CALL_BODY = "来电人反映：区政务服务中心午休时段窗口无人值守，企业办事要等到下午两点。"
LETTER_BODY = "来信反映：第5项整改中提到的涉企检查计划至今没有在网站公开，请督促落实。"
VISIT_BODY = "来访人反映：园区周边道路改造一再拖延，企业货车只能绕行，请督促整改。"
REFERENCE = re.compile(r'id="reference">([^<]+)<')
CODE = re.compile(r'id="query-code">([^<]+)<')


@pytest.fixture
def people(app, session):
    unit = create_unit(session, "区发展和改革局")
    session.commit()
    return {
        "clerk": create_staff(session, username="deng.ji", role="clerk", display_name="邓记"),
        "reviewer": create_staff(session, username="shen.he", role="reviewer", totp=True),
        "admin": create_staff(session, username="guan.li", role="admin", totp=True),
        "handler": create_staff(session, username="cheng.ban", role="handler", unit=unit),
    }


@pytest.fixture
def clerk(app, people, bulletin):
    return client_as(app, people["clerk"])


def today(settings):
    return utcnow().astimezone(settings.tz).date()


def hidden_fields(html: str) -> dict[str, str]:
    fields = {"form_token": re.search(r'name="form_token" value="([^"]*)"', html).group(1)}
    fields.update(csrf_of(html))
    return fields


def phone_data(settings, **overrides):
    an_hour_ago = (utcnow() - timedelta(hours=1)).astimezone(settings.tz)
    data = {"caller_number": "138 0013 8000", "call_date": an_hour_ago.date().isoformat(),
            "call_time": f"{an_hour_ago:%H:%M}", "duration": "7", "line": "020-82378781", "item": "5",
            "kind": "suggestion", "body": CALL_BODY, "reply_by": "phone", "name": "王先生",
            "privacy_notice": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def letter_data(settings, **overrides):
    data = {"name": "李某", "address": "广州市黄埔区大沙地东路1号 510700",
            "postmark_date": (today(settings) - timedelta(days=6)).isoformat(),
            "arrival_date": (today(settings) - timedelta(days=3)).isoformat(), "envelope_note": "yes",
            "item": "5", "kind": "suggestion", "body": LETTER_BODY, "reply_by": "letter"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def visit_data(settings, **overrides):
    half_an_hour_ago = (utcnow() - timedelta(minutes=30)).astimezone(settings.tz)
    data = {"visitor_name_1": "赵一", "visitor_phone_1": "13900139000", "visitor_name_2": "钱二",
            "group_size": "8", "visit_date": half_an_hour_ago.date().isoformat(),
            "visit_time": f"{half_an_hour_ago:%H:%M}", "place": "来访接待室", "item": "12",
            "kind": "request", "body": VISIT_BODY, "reply_by": "phone"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post(c, path, data, files=None):
    """GET the form, then POST it with its hidden tokens, as a browser does."""
    html = c.get(path).get_data(as_text=True)
    payload = {**hidden_fields(html), **data}
    if files:
        payload["scans"] = [(io.BytesIO(content), name) for name, content in files]
    if "taken_by" not in payload and path == PHONE:
        payload["taken_by"] = re.search(r'<select id="taken_by" name="taken_by"[^>]*>\s*<option value="(\d+)"',
                                        html).group(1)
    if "received_by" not in payload and path == VISIT:
        payload["received_by"] = re.search(
            r'<select id="received_by" name="received_by"[^>]*>\s*<option value="(\d+)"', html).group(1)
    return c.post(path, data=payload, content_type="multipart/form-data")


def receipt_of(c) -> tuple[str, str | None]:
    html = c.get(RECEIPT).get_data(as_text=True)
    code = CODE.search(html)
    return REFERENCE.search(html).group(1), code.group(1) if code else None


def stored(session, reference) -> Submission:
    session.rollback()
    return session.scalar(select(Submission).where(Submission.reference == reference))


def field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">(.*?)</p>', html, re.S)
    assert match, f"no error next to {field_id}"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def value_of(html: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{re.escape(field_id)}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {field_id}"
    return unescape(match.group(1))


def track(app, reference, code):
    citizen = app.test_client()
    response = citizen.post("/track", data={"reference": reference, "query_code": code})
    assert response.status_code == 303, response.get_data(as_text=True)
    return citizen.get("/track/status").get_data(as_text=True)


# ---------- the forms ----------

def test_the_phone_form_offers_sensible_defaults(clerk, settings, people):
    html = clerk.get(PHONE).get_data(as_text=True)
    assert value_of(html, "line") == "020-82378781"  # the bulletin's number
    assert re.search(rf'<option value="{people["clerk"].id}" selected>邓记（登记员）</option>', html)
    assert value_of(html, "call_date") == today(settings).isoformat()
    assert 'id="reply_by-1" name="reply_by" value="phone" checked' in html
    for label in ("来电号码", "来电日期", "来电时刻", "通话时长（分钟）", "来电打入的号码", "接听人",
                  "来电内容（如实记录来电人所说）", "希望的答复方式", "匿名反映"):
        assert label in html, label


def test_a_phone_call_is_logged_and_the_citizen_can_track_it(app, clerk, session, settings, people):
    response = post(clerk, PHONE, phone_data(settings))
    assert response.status_code == 303 and response.headers["Location"].endswith(RECEIPT)
    html = clerk.get(RECEIPT).get_data(as_text=True)
    reference, code = receipt_of(clerk)
    assert re.fullmatch(r"HP\d{4}-\d{6}", reference)
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)
    assert "data-print hidden" in html and "打印回执" in html and "逐个读出" in html
    assert code not in response.headers["Location"]

    submission = stored(session, reference)
    assert submission.channel == "phone" and submission.body == CALL_BODY and submission.phone == "+8613800138000"
    assert submission.name == "王先生" and submission.reply_by == "phone"
    assert submission.privacy_consent_at is not None
    facts = json.loads(submission.channel_facts)
    assert facts["caller_number"] == "+8613800138000" and facts["duration_minutes"] == 7
    assert facts["taken_by"] == "邓记" and facts["line"] == "020-82378781"
    local_call = submission.received_at.astimezone(settings.tz)
    assert f"{local_call:%H:%M}" == phone_data(settings)["call_time"]
    assert code.replace("-", "") not in json.dumps(facts)

    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "intake_phone"))
    assert entry.target == reference and entry.actor == "deng.ji"
    assert verify(session, settings).broken_id is None

    status = track(app, reference, code)
    assert reference in status and "已收到" in status


def test_the_receipt_is_for_this_clerk_and_only_for_a_while(app, clerk, people, settings, bulletin, monkeypatch):
    post(clerk, PHONE, phone_data(settings))
    assert receipt_of(clerk)[1] is not None
    from feedback_app.web.staff import intake as staff_views

    monkeypatch.setattr(staff_views, "RECEIPT_SECONDS", -1)
    post(clerk, PHONE, phone_data(settings, body=CALL_BODY + "（第二次来电）"))
    later = clerk.get(RECEIPT)
    assert later.status_code == 302 and later.headers["Location"].endswith("/staff/intake/")


def test_sending_the_same_form_twice_logs_it_once(clerk, session, settings):
    html = clerk.get(PHONE).get_data(as_text=True)
    taken_by = re.search(r'name="taken_by"[^>]*>\s*<option value="(\d+)"', html).group(1)
    payload = {**hidden_fields(html), **phone_data(settings), "taken_by": taken_by}
    first = clerk.post(PHONE, data=payload)
    first_receipt = receipt_of(clerk)
    second = clerk.post(PHONE, data=payload)
    assert first.status_code == second.status_code == 303
    assert receipt_of(clerk) == first_receipt
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 1


def test_invalid_phone_form_keeps_everything_and_says_why_next_to_the_field(clerk, session, settings):
    data = phone_data(settings, caller_number="12345", duration="七分钟", body="太短")
    response = post(clerk, PHONE, data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "登记未成功" in html
    assert field_error(html, "caller_number").startswith("来电号码无效")
    assert "整数分钟" in field_error(html, "duration")
    assert "至少 10 个字" in field_error(html, "body")
    for field in ("caller_number", "duration", "line", "name", "call_date", "call_time"):
        assert value_of(html, field) == data[field], field
    assert ">太短</textarea>" in html
    assert '<option value="5" selected>' in html
    assert 'id="privacy_notice" name="privacy_notice" value="y" checked' in html
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_a_withheld_number_must_be_said_and_a_phone_answer_needs_a_number(clerk, settings):
    html = post(clerk, PHONE, phone_data(settings, caller_number="")).get_data(as_text=True)
    assert "来电号码未显示" in field_error(html, "caller_number")
    response = post(clerk, PHONE, phone_data(settings, caller_number="", caller_withheld="y"))
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "phone") == "选择电话答复时，请填写联系电话"
    ok = post(clerk, PHONE, phone_data(settings, caller_number="", caller_withheld="y", phone="020-82378781"))
    assert ok.status_code == 303


def test_a_call_in_the_future_is_refused(clerk, settings):
    tomorrow = (today(settings) + timedelta(days=1)).isoformat()
    html = post(clerk, PHONE, phone_data(settings, call_date=tomorrow)).get_data(as_text=True)
    assert field_error(html, "call_date") == "来电日期不能晚于今天"


def test_a_letter_with_scans_counts_from_its_arrival(app, clerk, session, settings):
    data = letter_data(settings)
    response = post(clerk, LETTER, data, files=[("信封.pdf", PDF), ("第1页.png", PNG), ("第2页.pdf", PDF)])
    assert response.status_code == 303, response.get_data(as_text=True)
    reference, code = receipt_of(clerk)
    submission = stored(session, reference)
    arrived = today(settings) - timedelta(days=3)
    assert submission.channel == "letter" and submission.received_at.astimezone(settings.tz).date() == arrived
    inform = session.scalar(select(Deadline).where(Deadline.submission_id == submission.id,
                                                   Deadline.kind == "inform"))
    assert inform.starts_on == arrived
    assert sorted(a.display_name for a in submission.attachments) == ["信封.pdf", "第1页.png", "第2页.pdf"]
    facts = json.loads(submission.channel_facts)
    assert facts["envelope_note_present"] is True and facts["arrived_on"] == arrived.isoformat()
    assert facts["envelope_note"] == "对黄埔区委巡察整改情况的意见建议" and facts["pages_scanned"] == 3
    assert submission.name == "李某" and submission.reply_by == "letter"
    assert session.scalar(select(AuditEntry.target).where(AuditEntry.action == "intake_letter")) == reference
    assert reference in track(app, reference, code)


def test_a_letter_may_bring_ten_pages_but_not_eleven(clerk, session, settings):
    eleven = [(f"第{i}页.pdf", PDF) for i in range(1, 12)]
    response = post(clerk, LETTER, letter_data(settings), files=eleven)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "最多上传 10 个附件" in field_error(html, "scans")
    assert "请重新选择扫描件" in field_error(html, "scans")
    assert value_of(html, "name") == "李某" and LETTER_BODY in html
    assert post(clerk, LETTER, letter_data(settings), files=eleven[:10]).status_code == 303
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Attachment)) == 10


def test_a_scan_must_really_be_a_pdf_jpeg_or_png(clerk, settings):
    response = post(clerk, LETTER, letter_data(settings), files=[("信.pdf", b"MZ\x90\x00 not a pdf")])
    assert response.status_code == 400
    assert "不是 JPEG、PNG 或 PDF 文件" in field_error(response.get_data(as_text=True), "scans")


def test_letter_needs_its_arrival_date_and_sane_dates(clerk, settings):
    html = post(clerk, LETTER, letter_data(settings, arrival_date="")).get_data(as_text=True)
    assert field_error(html, "arrival_date") == "请填写到达日期"
    html = post(clerk, LETTER, letter_data(
        settings, postmark_date=(today(settings) - timedelta(days=1)).isoformat())).get_data(as_text=True)
    assert field_error(html, "postmark_date") == "邮戳日期不能晚于到达日期"
    html = post(clerk, LETTER, letter_data(settings, arrival_date="2026年13月1日")).get_data(as_text=True)
    assert field_error(html, "arrival_date").startswith("到达日期格式不正确")
    assert value_of(html, "arrival_date") == "2026年13月1日"


def test_chinese_dates_are_understood(clerk, session, settings):
    day = today(settings) - timedelta(days=2)
    response = post(clerk, LETTER, letter_data(settings, arrival_date=f"{day.year}年{day.month}月{day.day}日",
                                               postmark_date=""))
    assert response.status_code == 303
    submission = stored(session, receipt_of(clerk)[0])
    assert json.loads(submission.channel_facts)["arrived_on"] == day.isoformat()


def test_a_visit_is_logged_with_its_representatives(app, clerk, session, settings):
    response = post(clerk, VISIT, visit_data(settings))
    assert response.status_code == 303, response.get_data(as_text=True)
    reference, code = receipt_of(clerk)
    submission = stored(session, reference)
    assert submission.channel == "visit" and submission.kind == "request" and submission.item_number == 12
    assert submission.name == "赵一" and submission.phone == "+8613900139000"
    facts = json.loads(submission.channel_facts)
    assert [v["name"] for v in facts["visitors"]] == ["赵一", "钱二"] and facts["group_size"] == 8
    assert facts["place"] == "来访接待室" and facts["received_by"] == "邓记"
    assert session.scalar(select(AuditEntry.target).where(AuditEntry.action == "intake_visit")) == reference
    assert reference in track(app, reference, code)


def test_a_visit_with_more_than_five_representatives_is_refused(clerk, session, settings):
    six = {f"visitor_name_{i}": f"代表{i}" for i in range(1, 7)}
    response = post(clerk, VISIT, visit_data(settings, visitor_phone_1=None, **six))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "代表不超过 5 人" in field_error(html, "representatives")
    assert '<a href="#representatives">来访代表：' in html
    for i in range(1, 6):
        assert value_of(html, f"visitor_name_{i}") == f"代表{i}"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 0
    five = {f"visitor_name_{i}": f"代表{i}" for i in range(1, 6)}
    assert post(clerk, VISIT, visit_data(settings, visitor_phone_1=None, reply_by="online", **five)).status_code == 303


def test_a_visit_names_its_visitors(clerk, settings):
    html = post(clerk, VISIT, visit_data(settings, visitor_name_1="", visitor_name_2="",
                                         visitor_phone_1="")).get_data(as_text=True)
    assert field_error(html, "representatives") == "请至少填写一位来访人的姓名"
    html = post(clerk, VISIT, visit_data(settings, visitor_name_1="")).get_data(as_text=True)
    assert field_error(html, "visitor_name_1") == "请填写这位代表的姓名"
    assert value_of(html, "visitor_phone_1") == "13900139000"


# ---------- who may ----------

@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_reviewers_and_admins_may_log_too(app, people, bulletin, settings, role):
    c = client_as(app, people[role])
    assert c.get(PHONE).status_code == 200
    assert post(c, VISIT, visit_data(settings)).status_code == 303


@pytest.mark.parametrize("path", [PHONE, LETTER, VISIT, "/staff/intake/", RECEIPT])
def test_handlers_may_not(app, people, bulletin, path):
    c = client_as(app, people["handler"])
    assert c.get(path).status_code == 403
    if path in (PHONE, LETTER, VISIT):
        assert c.post(path, data={}).status_code == 403


@pytest.mark.parametrize("path", [PHONE, LETTER, VISIT, RECEIPT])
def test_anonymous_goes_to_the_login_page(client, bulletin, path):
    response = client.get(path)
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    response = client.post(path, data={})
    assert response.status_code in (302, 405)
    session_count = client.application.extensions["db_sessionmaker"]()
    assert session_count.scalar(select(func.count()).select_from(Submission)) == 0
    session_count.close()


def test_csrf_is_checked(database_url, tmp_path, session, people, bulletin):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    c = client_as(app, people["clerk"])
    s = app.extensions["settings"]
    html = c.get(PHONE).get_data(as_text=True)
    assert 'name="csrf_token"' in html
    tokens = hidden_fields(html)
    taken_by = re.search(r'name="taken_by"[^>]*>\s*<option value="(\d+)"', html).group(1)
    data = {**phone_data(s), "taken_by": taken_by, "form_token": tokens["form_token"]}
    refused = c.post(PHONE, data=data)
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "页面已过期：提交的内容缺少安全校验信息" in page and "您填写的内容已保留" in page
    assert value_of(page, "caller_number") == "138 0013 8000"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 0
    accepted = c.post(PHONE, data={**data, **csrf_of(page)})
    assert accepted.status_code == 303
    app.extensions["db_engine"].dispose()


def test_without_a_bulletin_nothing_can_be_logged(app, people):
    c = client_as(app, people["clerk"])
    response = c.get(PHONE)
    assert response.status_code == 409 and "还没有发布通报" in response.get_data(as_text=True)


# ---------- on the submission page ----------

def test_the_submission_page_shows_the_channel_facts_masked_for_handlers(app, clerk, session, settings, people):
    post(clerk, PHONE, phone_data(settings))
    reference, _ = receipt_of(clerk)
    page = clerk.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    assert "来电登记信息" in page and "+8613800138000" in page and "7 分钟" in page and "邓记" in page

    submission = stored(session, reference)
    submission.unit_id = people["handler"].unit_id
    session.commit()
    handler = client_as(app, people["handler"])
    page = handler.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    assert "来电登记信息" in page and "138****8000" in page and "13800138000" not in page


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_a_form_without_a_token_of_ours_is_not_saved_and_keeps_what_was_typed(clerk, settings, session, token):
    response = post(clerk, PHONE, {**phone_data(settings), "form_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "页面已过期。您填写的内容已保留，请检查后再次提交。" in html
    assert CALL_BODY in html
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Submission)) == 0
    fresh = hidden_fields(html)["form_token"]
    assert fresh not in ("", token)
    again = post(clerk, PHONE, {**phone_data(settings), "form_token": fresh})  # the page as it came back
    assert again.status_code == 303
