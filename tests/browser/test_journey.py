"""The citizen's journey in a real browser (Chromium, 390 px phone, zh-CN), with CSRF on.

bulletin → an item's comment link → the form → the receipt → /track → the status page → a follow-up;
plus a validation round trip, the form without JavaScript, axe-core checks, the skip link, and
screenshots for people to look at (/tmp/shots).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from feedback_app.core.models import Submission
from tests.browser.axe import axe_violations, describe
from tests.conftest import SEED_SLUG

pytestmark = pytest.mark.xdist_group("browser")

BULLETIN = f"/bulletins/{SEED_SLUG}"
FORM = f"{BULLETIN}/feedback"
SHOTS = Path("/tmp/shots")
BODY_LABEL = re.compile(r"^意见内容")  # not 同意在答复时公开我的意见内容…

REFERENCE = re.compile(r"[A-Z]+\d{4}-\d{6}")
QUERY_CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")
BODY = "建议进一步规范涉企会议的时间安排，至少提前三天通知企业，并公开会议清单。"
FOLLOW_UP = "补充：本月仍有两次涉企会议只提前一天通知，请继续督促整改。"


# ---------- helpers ----------

def assert_no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state()  # the style sheets are in
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"{page.url} scrolls sideways: {widths}"


def site_nav(page: Page):
    return page.get_by_role("navigation", name="站点导航")


def fill_valid_form(page: Page, body: str = BODY) -> None:
    page.get_by_label(BODY_LABEL).fill(body)
    page.get_by_label("我已阅读并同意上述个人信息处理说明").check()


def submit_form(page: Page) -> None:
    page.get_by_role("button", name="提交意见").click()


def read_receipt(page: Page) -> tuple[str, str]:
    expect(page).to_have_url(re.compile(r"/receipt$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("提交成功")
    reference = page.locator("#reference")
    code = page.locator("#query-code")
    expect(reference).to_have_text(REFERENCE)
    expect(code).to_have_text(QUERY_CODE)
    page.wait_for_load_state()
    return reference.inner_text().strip(), code.inner_text().strip()


def submit_comment(page: Page, base: str, body: str = BODY) -> tuple[str, str]:
    page.goto(f"{base}{FORM}?item=5")
    fill_valid_form(page, body)
    submit_form(page)
    return read_receipt(page)


def track(page: Page, reference: str, code: str) -> None:
    site_nav(page).get_by_role("link", name="查询办理进度").click()
    expect(page).to_have_url(re.compile(r"/track$"))
    page.get_by_label("受理编号").fill(reference)
    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查询").click()


def detail(page: Page, term: str):
    """The <dd> that follows the <dt> saying `term`."""
    return page.locator("dt", has_text=term).locator("xpath=following-sibling::dd[1]")


def stored(session, reference: str) -> Submission | None:
    session.rollback()  # a fresh snapshot: see what the server's requests committed
    return session.scalar(select(Submission).where(Submission.reference == reference))


# ---------- 1. the whole journey ----------

def test_whole_journey_from_bulletin_to_follow_up(page: Page, live_server, session):
    page.goto(f"{live_server}{BULLETIN}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("巡察")
    assert_no_sideways_scroll(page)

    page.get_by_role("link", name="对第5项整改提意见").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(FORM)}\?item=5$"))
    item = page.get_by_label("涉及的整改事项")
    expect(item).to_have_value("5")
    expect(item.locator("option:checked")).to_have_text(re.compile(r"^第5项："))
    assert_no_sideways_scroll(page)

    fill_valid_form(page)
    submit_form(page)
    reference, code = read_receipt(page)
    assert_no_sideways_scroll(page)

    submission = stored(session, reference)
    assert submission is not None and submission.item_number == 5 and submission.body == BODY

    track(page, reference, code.lower())
    expect(page).to_have_url(re.compile(r"/track/status$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("办理进度")
    expect(detail(page, "受理编号")).to_have_text(reference)
    expect(detail(page, "当前状态")).to_contain_text("已收到")
    expect(detail(page, "涉及事项")).to_have_text("第5项")
    history = page.get_by_role("region", name="办理经过").get_by_role("listitem")
    expect(history).to_have_count(1)

    page.get_by_label("追评内容").fill(FOLLOW_UP)
    page.get_by_role("button", name="提交追评").click()
    expect(page).to_have_url(re.compile(r"/track/status$"))
    expect(page.get_by_role("status")).to_contain_text("已收到您的追评")
    expect(history).to_have_count(2)
    expect(history.last).to_contain_text("追评")
    expect(history.last).to_contain_text(FOLLOW_UP)
    assert_no_sideways_scroll(page)


# ---------- 2. a validation error, then success ----------

def test_validation_error_keeps_what_was_typed_then_submits(page: Page, live_server):
    page.goto(f"{live_server}{FORM}?item=5")
    page.get_by_label("姓名", exact=True).fill("张三")
    page.get_by_label("我已阅读并同意上述个人信息处理说明").check()
    submit_form(page)

    expect(page).to_have_url(re.compile(rf"{re.escape(FORM)}$"))
    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("提交未成功")
    expect(summary.get_by_role("link", name="意见内容：请填写意见内容")).to_have_attribute("href", "#body")

    body = page.get_by_label(BODY_LABEL)
    body_field = page.locator(".field").filter(has=page.locator("#body"))
    expect(body_field.locator(".field-error")).to_have_text("请填写意见内容")
    expect(body).to_have_attribute("aria-invalid", "true")
    expect(body).to_have_attribute("aria-describedby", re.compile(r"(^|\s)body-error(\s|$)"))
    expect(body).to_have_accessible_description(re.compile("请填写意见内容"))

    summary.get_by_role("link", name="意见内容：请填写意见内容").click()
    expect(body).to_be_focused()

    # nothing typed is lost
    expect(page.get_by_label("姓名", exact=True)).to_have_value("张三")
    expect(page.get_by_label("我已阅读并同意上述个人信息处理说明")).to_be_checked()
    expect(page.get_by_label("涉及的整改事项")).to_have_value("5")
    assert_no_sideways_scroll(page)

    body.fill(BODY)
    submit_form(page)
    read_receipt(page)


# ---------- 3. without JavaScript ----------

def test_form_works_without_javascript(new_context, live_server, session):
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_server}{BULLETIN}")
    page.get_by_role("link", name="对第5项整改提意见").click()
    expect(page.get_by_label("涉及的整改事项")).to_have_value("5")
    fill_valid_form(page)
    submit_form(page)
    reference, _code = read_receipt(page)
    assert stored(session, reference) is not None


def test_print_button_is_offered_only_when_it_can_work(new_context, live_server):
    """site.js un-hides [data-print] ("Shown only when they can work"): without JS it must stay hidden."""
    with_js = new_context().new_page()
    submit_comment(with_js, live_server)
    expect(with_js.get_by_role("button", name="打印回执")).to_be_visible()

    without_js = new_context(java_script_enabled=False).new_page()
    submit_comment(without_js, live_server, body="无脚本时提交的意见：" + BODY)
    expect(without_js.get_by_role("button", name="打印回执")).to_be_hidden()


def test_body_hint_survives_the_character_counter(page: Page, live_server):
    """The counter is added beside the hint; the hint (how many characters are needed) stays."""
    page.goto(f"{live_server}{FORM}?item=5")
    body = page.get_by_label(BODY_LABEL)
    expect(page.locator("#body-hint")).to_contain_text("请写明具体情况")
    body.fill("十个字以上的意见内容示例")
    expect(body).to_have_accessible_description(re.compile(r"请写明具体情况.*已输入 12 / 5000 字"))


# ---------- 4. axe-core ----------

def test_axe_finds_no_serious_or_critical_violations(page: Page, live_server):
    found: dict[str, list[dict]] = {}

    page.goto(f"{live_server}{BULLETIN}")
    found["bulletin"] = axe_violations(page)

    page.goto(f"{live_server}{FORM}?item=5")
    found["form"] = axe_violations(page)

    page.get_by_label("姓名", exact=True).fill("张三")
    page.get_by_label("联系电话").fill("12345")
    submit_form(page)
    expect(page.get_by_role("alert")).to_be_visible()
    found["form with errors"] = axe_violations(page)

    fill_valid_form(page)
    page.get_by_label("联系电话").fill("020-82378781")
    submit_form(page)
    reference, code = read_receipt(page)
    found["receipt"] = axe_violations(page)

    site_nav(page).get_by_role("link", name="查询办理进度").click()
    expect(page).to_have_url(re.compile(r"/track$"))
    found["track"] = axe_violations(page)

    page.get_by_label("受理编号").fill(reference)
    page.get_by_label("查询码").fill("0000-0000-0000-0000")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("alert")).to_be_visible()
    found["track with error"] = axe_violations(page)

    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查询").click()
    expect(page).to_have_url(re.compile(r"/track/status$"))
    found["status"] = axe_violations(page)

    print("\naxe-core findings (all impacts):\n" + (describe(found) or "none"))
    blocking = describe(found, impacts={"serious", "critical"})
    assert not blocking, "axe-core serious/critical violations:\n" + blocking


# ---------- 5. keyboard ----------

@pytest.mark.parametrize("path", [BULLETIN, f"{FORM}?item=5"])
def test_skip_link_is_the_first_tab_stop_and_moves_focus_to_main(page: Page, live_server, path):
    page.goto(f"{live_server}{path}")
    skip = page.get_by_role("link", name="跳到正文")
    expect(skip).not_to_be_in_viewport()  # out of sight until focused

    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport(ratio=1)
    assert skip.evaluate("el => getComputedStyle(el).outlineStyle") != "none"

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.locator("#main")).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('main') !== null"), \
        "the Tab after the skip link should stay inside <main>"


# ---------- 6. screenshots for people ----------

def test_screenshots_at_390px(page: Page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server}{FORM}?item=5")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    page.screenshot(path=str(SHOTS / "form-390.png"), full_page=True)

    page.get_by_label("姓名", exact=True).fill("张三")
    submit_form(page)
    expect(page.get_by_role("alert")).to_be_visible()
    page.screenshot(path=str(SHOTS / "form-errors-390.png"), full_page=True)

    fill_valid_form(page)
    submit_form(page)
    read_receipt(page)
    page.screenshot(path=str(SHOTS / "receipt-390.png"), full_page=True)
