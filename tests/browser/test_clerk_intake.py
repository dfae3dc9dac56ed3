"""A clerk logs a phone call and a letter in Chromium (desktop 1280×900, zh-CN, CSRF on).

The clerk logs in (no second factor for clerks), fills the phone form (after one round of errors),
reads the reference and query code off the receipt, logs a letter with a PDF scan, and a citizen then
finds the call on /track with that code. axe-core checks both forms, with and without errors, and the
receipt.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from feedback_app.core.database import utcnow
from feedback_app.core.models import Deadline, Submission
from tests.auth.helpers import create_staff
from tests.browser.axe import DESKTOP, axe_violations, describe

pytestmark = pytest.mark.xdist_group("browser")

REFERENCE = re.compile(r"^[A-Z]+\d{4}-\d{6}$")
QUERY_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
CALL = "来电人反映：区政务服务中心午休时段窗口无人值守，企业办事要等到下午两点，希望安排轮班。"
LETTER = "来信反映：第5项整改中提到的涉企检查计划至今没有在区政府网站公开，请督促落实。"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    """Clerks work at a desk."""
    return {**browser_context_args, **DESKTOP}


def read_receipt(page: Page) -> tuple[str, str]:
    expect(page).to_have_url(re.compile(r"/staff/intake/receipt$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("登记成功")
    reference, code = page.locator("#reference"), page.locator("#query-code")
    expect(reference).to_have_text(REFERENCE)
    expect(code).to_have_text(QUERY_CODE)
    expect(page.get_by_role("button", name="打印回执")).to_be_visible()
    return reference.inner_text().strip(), code.inner_text().strip()


def stored(session, reference: str) -> Submission:
    session.rollback()
    session.expire_all()
    return session.scalar(select(Submission).where(Submission.reference == reference))


def test_a_clerk_logs_a_call_and_a_letter(new_context, live_server, session, settings, bulletin):
    create_staff(session, username="deng.ji", role="clerk", display_name="邓记")
    found: dict[str, list[dict]] = {}
    page = new_context().new_page()

    page.goto(f"{live_server}/staff/login")
    page.get_by_label("用户名").fill("deng.ji")
    page.get_by_label("密码").fill("correct horse battery")
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))

    # ---- a phone call ----
    page.goto(f"{live_server}/staff/intake/phone")
    expect(page.get_by_role("heading", level=1)).to_have_text("登记来电")
    expect(page.get_by_label("来电打入的号码")).to_have_value("020-82378781")
    expect(page.get_by_label("接听人")).to_contain_text("邓记")
    found["phone form"] = axe_violations(page)

    page.get_by_label("来电号码", exact=True).fill("12345")
    page.get_by_label(re.compile(r"^通话时长")).fill("6")
    page.get_by_label(re.compile(r"^来电内容")).fill(CALL)
    page.get_by_role("button", name="登记来电").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("登记未成功")
    expect(summary.get_by_role("link", name=re.compile(r"^来电号码：来电号码无效"))).to_be_visible()
    number = page.get_by_label("来电号码", exact=True)
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_accessible_description(re.compile("来电号码无效"))
    expect(page.get_by_label(re.compile(r"^来电内容"))).to_have_value(CALL)  # nothing typed is lost
    expect(page.get_by_label(re.compile(r"^通话时长"))).to_have_value("6")
    found["phone form with errors"] = axe_violations(page)

    number.fill("138 0013 8000")
    page.get_by_label("来电人姓名").fill("王先生")
    page.get_by_role("button", name="登记来电").click()
    call_reference, call_code = read_receipt(page)
    found["receipt"] = axe_violations(page)
    call = stored(session, call_reference)
    assert call.channel == "phone" and call.body == CALL and call.phone == "+8613800138000"
    assert json.loads(call.channel_facts)["taken_by"] == "邓记"

    # ---- a letter with a scan ----
    page.goto(f"{live_server}/staff/intake/letter")
    expect(page.get_by_role("heading", level=1)).to_have_text("登记来信")
    found["letter form"] = axe_violations(page)
    arrived = (utcnow().astimezone(settings.tz) - timedelta(days=2)).date()
    page.get_by_label("寄信人姓名", exact=True).fill("李某")
    page.get_by_label("回信地址", exact=True).fill("广州市黄埔区大沙地东路1号 510700")
    page.get_by_label(re.compile(r"^到达日期")).fill(arrived.isoformat())
    page.get_by_role("group", name=re.compile(r"^信封是否注明")).get_by_label("是").check()
    page.get_by_label(re.compile(r"^来信扫描件")).set_input_files(
        files=[{"name": "来信第1页.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.get_by_label(re.compile(r"^来信内容")).fill(LETTER)
    page.get_by_role("button", name="登记来信").click()
    letter_reference, letter_code = read_receipt(page)
    assert letter_reference != call_reference and letter_code != call_code
    letter = stored(session, letter_reference)
    assert letter.channel == "letter" and [a.display_name for a in letter.attachments] == ["来信第1页.pdf"]
    inform = session.scalar(select(Deadline).where(Deadline.submission_id == letter.id, Deadline.kind == "inform"))
    assert inform.starts_on == arrived

    # ---- the citizen who called checks with the code read out to them ----
    citizen = new_context().new_page()
    citizen.goto(f"{live_server}/track")
    citizen.get_by_label("受理编号").fill(call_reference)
    citizen.get_by_label("查询码").fill(call_code.lower().replace("-", " "))
    citizen.get_by_role("button", name="查询").click()
    expect(citizen).to_have_url(re.compile(r"/track/status$"))
    expect(citizen.locator("main")).to_contain_text(call_reference)

    print("\naxe-core findings (all impacts):\n" + (describe(found) or "none"))
    blocking = describe(found, impacts={"serious", "critical"})
    assert not blocking, "axe-core serious/critical violations:\n" + blocking
