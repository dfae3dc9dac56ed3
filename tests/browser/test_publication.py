"""Publishing a comment in Chromium, with CSRF on: the reviewer logs in with a TOTP code, opens a
consented and answered submission, sees the original and the masked text side by side, edits the
text (a first try that still holds a phone number is refused), publishes; the public bulletin page
and the item page then show it, without the citizen's details. axe-core checks the redaction page,
the bulletin page and the item page. Screenshots for people: /tmp/shots.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from feedback_app.core.database import utcnow
from feedback_app.core.models import Publication
from tests.auth.helpers import create_staff, fresh_code
from tests.browser.axe import DESKTOP, axe_violations, describe
from tests.browser.conftest import PHONE
from tests.conftest import SEED_SLUG
from tests.factories import create_reply, create_web_submission

pytestmark = pytest.mark.xdist_group("browser")

BULLETIN = f"/bulletins/{SEED_SLUG}"
SHOTS = Path("/tmp/shots")
BODY = ("我叫王小明，家住黄埔区丰乐北路38号3栋502房。第5项整改说要压减涉企会议，但上周我们企业又被通知参加三次会议，"
        "每次只提前一天。请打我的手机 138 0013 8000，或发邮件 xiaoming.wang@example.com。")
REPLY = "王小明同志：经核查，区有关部门已将涉企会议压减三成，并要求至少提前三天通知企业。"
EDITED = "第5项整改说要压减涉企会议，但上周我们企业又被通知参加三次会议，每次只提前一天，希望继续整改。"
PERSONAL = ("王小明", "丰乐北路", "13800138000", "138 0013 8000", "xiaoming.wang")


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    """Staff work at a desk: desktop contexts here; the public page gets a phone context of its own."""
    return {**browser_context_args, **DESKTOP}


def log_in_with_code(page: Page, base: str, app, user) -> None:
    page.goto(f"{base}/staff/login")
    page.get_by_label("用户名").fill(user.username)
    page.get_by_label("密码").fill("correct horse battery")
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/staff/2fa$"))
    page.get_by_label("验证码").fill(fresh_code(app.test_client(), user.username, user.totp_secret))
    page.get_by_role("button", name="验证").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))


def test_reviewer_publishes_a_redacted_comment_and_the_public_sees_it(
        new_context, browser, live_server, app, session, settings, bulletin):
    reviewer = create_staff(session, username="shen.he", role="reviewer", totp=True, display_name="沈审核")
    with app.app_context():  # the acknowledgement e-mail is rendered from a template
        submission, _ = create_web_submission(
            session, settings, bulletin=bulletin, body=BODY, item=5, name="王小明", phone="+8613800138000",
            email="xiaoming.wang@example.com", address="广州市黄埔区丰乐北路38号3栋502房", publish_consent=True)
    submission.state, submission.accepted_at, submission.concluded_at = "answered", utcnow(), utcnow()
    session.commit()
    create_reply(session, submission=submission, body=REPLY)
    reference = submission.reference
    found: dict[str, list[dict]] = {}
    SHOTS.mkdir(parents=True, exist_ok=True)

    page = new_context().new_page()
    log_in_with_code(page, live_server, app, reviewer)
    page.goto(f"{live_server}/staff/submissions/{reference}")
    publication = page.get_by_role("region", name="公开", exact=True)
    expect(publication).to_contain_text("反映人同意公开其意见")
    publication.get_by_role("link", name="隐去个人信息并公开").click()
    expect(page).to_have_url(re.compile(rf"/staff/publication/{reference}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("公开前隐去个人信息")

    # side by side: the original on the left, the masked text to edit on the right
    table = page.get_by_role("table", name="原文与拟公开文本对照")
    expect(table.get_by_role("columnheader", name="原文（不公开）")).to_be_visible()
    expect(table.get_by_role("columnheader", name="拟公开文本（可修改）")).to_be_visible()
    original = page.locator("#original-text")
    expect(original).to_contain_text("丰乐北路38号3栋502房")
    expect(original.locator("mark")).to_have_count(4)  # name, address, phone, e-mail
    text = page.get_by_label("公开的意见内容")
    reply = page.get_by_label("公开的答复内容")
    original_box, text_box = original.bounding_box(), text.bounding_box()
    assert text_box["x"] > original_box["x"] + original_box["width"] - 1, "the two columns are side by side"
    assert abs(text_box["y"] - original_box["y"]) < 120
    masked = text.input_value()
    assert "【电话已隐去】" in masked and "【邮箱已隐去】" in masked and "王某某" in masked
    for detail in PERSONAL:
        assert detail not in masked and detail not in reply.input_value()
    found["redaction"] = axe_violations(page)
    page.screenshot(path=str(SHOTS / "publication-redaction-1280.png"), full_page=True)

    # a first edit that puts a phone number back is refused, and what was typed stays
    text.fill(EDITED + "联系 138-0013-8000。")
    page.get_by_role("button", name="确认隐去个人信息并公开").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("公开文本中仍有个人信息")
    expect(alert).to_contain_text("电话号码")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_have_value(EDITED + "联系 138-0013-8000。")
    found["redaction with errors"] = axe_violations(page)
    session.rollback()
    assert session.scalar(select(Publication).where(Publication.submission_id == submission.id)) is None

    # the reviewer edits and confirms
    text.fill(EDITED)
    page.get_by_role("button", name="确认隐去个人信息并公开").click()
    expect(page).to_have_url(re.compile(rf"/staff/submissions/{reference}$"))
    expect(page.get_by_role("status")).to_contain_text("已公开")
    expect(page.get_by_role("region", name="公开", exact=True)).to_contain_text(EDITED)
    session.rollback()
    row = session.scalar(select(Publication).where(Publication.submission_id == submission.id))
    assert row.text == EDITED and "压减三成" in row.reply_text and "王小明" not in row.reply_text

    # the public, on a phone: the bulletin page, under item 5, then the item's own page
    public_context = browser.new_context(**PHONE)
    try:
        public = public_context.new_page()
        public.goto(f"{live_server}{BULLETIN}")
        item = public.locator("#item-5")
        comments = item.get_by_role("region", name=re.compile("^群众意见和答复"))
        expect(comments).to_contain_text("本项共收到意见 1 件，已受理 1 件，已答复 1 件。")
        expect(comments).to_contain_text(EDITED)
        expect(comments).to_contain_text("已将涉企会议压减三成")
        for detail in PERSONAL:
            expect(public.locator("main")).not_to_contain_text(detail)
        expect(public.locator("main")).not_to_contain_text(reference)
        found["bulletin"] = axe_violations(public)
        comments.scroll_into_view_if_needed()
        public.screenshot(path=str(SHOTS / "bulletin-item-comments-390.png"))

        comments.get_by_role("link", name=re.compile("查看本项全部 1 条公开的意见和答复")).click()
        expect(public).to_have_url(re.compile(rf"{BULLETIN}/items/5/comments$"))
        expect(public.get_by_role("heading", level=1)).to_contain_text("第5项")
        expect(public.locator("main")).to_contain_text(EDITED)
        for detail in PERSONAL:
            expect(public.locator("main")).not_to_contain_text(detail)
        found["item page"] = axe_violations(public)
        public.screenshot(path=str(SHOTS / "item-comments-390.png"), full_page=True)
    finally:
        public_context.close()

    print("\naxe-core findings (all impacts):\n" + (describe(found) or "none"))
    blocking = describe(found, impacts={"serious", "critical"})
    assert not blocking, "axe-core serious/critical violations:\n" + blocking


def test_a_submission_without_consent_offers_no_publishing(new_context, live_server, app, session, settings,
                                                         bulletin):
    reviewer = create_staff(session, username="shen.he", role="reviewer", totp=True)
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, body="未同意公开的一件意见内容。",
                                          publish_consent=False)
    submission.state = "answered"
    session.commit()
    page = new_context().new_page()
    log_in_with_code(page, live_server, app, reviewer)
    page.goto(f"{live_server}/staff/submissions/{submission.reference}")
    region = page.get_by_role("region", name="公开", exact=True)
    expect(region).to_contain_text("未同意公开其意见")
    expect(region.get_by_role("link", name="隐去个人信息并公开")).to_have_count(0)
    response = page.goto(f"{live_server}/staff/publication/{submission.reference}")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("反映人未同意公开其意见，不能公开。")
    expect(page.get_by_role("button", name="确认隐去个人信息并公开")).to_have_count(0)
