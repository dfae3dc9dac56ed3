"""A staff working day in Chromium (desktop 1280×900, zh-CN), with CSRF on.

A citizen's comment waits in the queue; the reviewer logs in with a TOTP code, filters the queue,
accepts the comment and routes it to unit A and its handler; the handler sees the citizen masked
and drafts a reply; the reviewer approves it; the citizen reads the reply on /track. axe-core
checks the staff pages on the way.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from feedback_app.auth.accounts import create_unit
from feedback_app.core.models import Submission
from tests.auth.helpers import create_staff, fresh_code
from tests.browser.axe import DESKTOP, axe_violations, describe
from tests.factories import create_web_submission

pytestmark = pytest.mark.xdist_group("browser")

BODY = "建议第五项整改公开办理进度，方便群众监督，并说明下一步安排。"
REPLY = "经核查，第五项整改进展已在区政府网站按月公开，下一步将增加季度通报。"
UNIT_A = "区发展和改革局"


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    """Staff work at a desk: this module's contexts are desktop ones, not the folder's phone."""
    return {**browser_context_args, **DESKTOP}


# ---------- helpers ----------

def dd(page: Page, term: str):
    """The <dd> that follows the <dt> saying exactly `term`."""
    return page.locator("dt", has_text=re.compile(rf"^{re.escape(term)}$")).locator("xpath=following-sibling::dd[1]")


def action(page: Page, title: str):
    """One action form on the submission page: a region named by its heading."""
    return page.get_by_role("region", name=title, exact=True)


def open_login(page: Page, base: str) -> None:
    page.goto(f"{base}/staff/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("工作人员登录")


def log_in(page: Page, base: str, username: str, password: str = "correct horse battery") -> None:
    if not page.url.endswith("/staff/login"):
        open_login(page, base)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def log_out(page: Page) -> None:
    page.get_by_role("navigation", name="工作台导航").get_by_role("button", name=re.compile(r"^退出")).click()
    expect(page).to_have_url(re.compile(r"/staff/login$"))
    expect(page.get_by_text("您已安全退出")).to_be_visible()


def second_factor(page: Page, app, username: str, secret: str) -> None:
    expect(page).to_have_url(re.compile(r"/staff/2fa$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("双重验证")
    page.get_by_label("验证码").fill(fresh_code(app.test_client(), username, secret))
    page.get_by_role("button", name="验证").click()


def open_from_queue(page: Page, reference: str) -> None:
    page.get_by_role("table").get_by_role("link", name=reference, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/staff/submissions/{reference}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(reference)


def stored(session, reference: str) -> Submission:
    """A fresh read of what the server committed (the objects made above are in this session too)."""
    session.rollback()
    session.expire_all()
    submission = session.scalar(select(Submission).where(Submission.reference == reference))
    session.commit()  # end the read; the attributes stay loaded
    return submission


# ---------- the day ----------

def test_a_staff_working_day(new_context, live_server, app, session, settings, bulletin):
    unit_a = create_unit(session, UNIT_A)
    create_unit(session, "区住房和城乡建设局")
    session.commit()
    reviewer = create_staff(session, username="shen.he", role="reviewer", totp=True, display_name="沈审核")
    handler = create_staff(session, username="cheng.ban", role="handler", unit=unit_a, display_name="程承办")
    submission, query_code = create_web_submission(
        session, settings, bulletin=bulletin, body=BODY, reply_by="online", name="陈小红",
        phone="+8613800138000")
    reference = submission.reference
    # another one, already accepted: the filter must leave it out
    other, _ = create_web_submission(session, settings, bulletin=bulletin, body="另一件已受理的意见，用于检验筛选。")
    other.state = "accepted"
    session.commit()

    found: dict[str, list[dict]] = {}
    page = new_context().new_page()

    # the reviewer: password, then the code from the authenticator
    open_login(page, live_server)
    found["login"] = axe_violations(page)
    log_in(page, live_server, reviewer.username)
    expect(page).to_have_url(re.compile(r"/staff/2fa$"))
    found["2fa"] = axe_violations(page)
    second_factor(page, app, reviewer.username, reviewer.totp_secret)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("待办队列")
    expect(page.get_by_role("navigation", name="工作台导航")).to_contain_text("沈审核")

    # the queue, filtered to what waits for acceptance
    page.get_by_label("状态", exact=True).select_option(label="已收到，等待受理")
    page.get_by_role("button", name="筛选").click()
    expect(page).to_have_url(re.compile(r"[?&]state=received(&|$)"))
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(reference)
    expect(page.get_by_role("table")).not_to_contain_text(other.reference)
    expect(page.get_by_role("navigation", name="按状态").get_by_role("link", name=re.compile(r"^已收到"))) \
        .to_have_attribute("aria-current", "page")
    found["queue (reviewer)"] = axe_violations(page)

    # accept and route to unit A and its handler
    open_from_queue(page, reference)
    expect(dd(page, "姓名")).to_have_text("陈小红")  # reviewers see the citizen unmasked
    found["detail (reviewer)"] = axe_violations(page)
    accept = action(page, "受理并分类")
    expect(accept.get_by_label("类型")).to_have_value("suggestion")
    accept.get_by_role("button", name="受理").click()
    expect(page.get_by_role("status")).to_contain_text("已受理")
    expect(dd(page, "状态")).to_have_text("已受理，正在办理")

    assign = action(page, "转交责任单位")
    assign.get_by_label("责任单位").select_option(label=UNIT_A)
    assign.get_by_label("承办人（可选）").select_option(label=f"程承办（{UNIT_A}）")
    assign.get_by_role("button", name="转交").click()
    expect(page.get_by_role("status")).to_contain_text("已转交责任单位")
    expect(dd(page, "状态")).to_have_text("已转交责任单位办理")
    expect(dd(page, "责任单位")).to_have_text(UNIT_A)
    routed = stored(session, reference)
    assert (routed.state, routed.unit_id, routed.handler_id) == ("assigned", unit_a.id, handler.id)
    log_out(page)

    # the handler: no second factor; the citizen is masked
    log_in(page, live_server, handler.username)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    expect(page.get_by_role("table")).not_to_contain_text(other.reference)
    open_from_queue(page, reference)
    expect(dd(page, "姓名")).to_have_text("陈**")
    expect(dd(page, "电话")).to_have_text("138****8000")
    expect(page.locator("main")).not_to_contain_text("陈小红")
    expect(page.get_by_text("身份信息已遮盖")).to_be_visible()
    expect(action(page, "受理并分类")).to_have_count(0)
    found["detail (handler)"] = axe_violations(page)

    draft = action(page, "起草答复")
    draft.get_by_label("答复内容").fill(REPLY)
    draft.get_by_role("button", name="保存答复稿").click()
    expect(page.get_by_role("status")).to_contain_text("答复稿已保存，等待审核")
    expect(page.get_by_role("region", name="答复", exact=True)).to_contain_text("待审核的答复稿")
    expect(action(page, "审核答复")).to_have_count(0)  # handlers draft, reviewers approve
    log_out(page)

    # the reviewer again (a new time step for the code) approves
    log_in(page, live_server, reviewer.username)
    second_factor(page, app, reviewer.username, reviewer.totp_secret)
    expect(page).to_have_url(re.compile(r"/staff/$"))
    open_from_queue(page, reference)
    expect(page.get_by_role("region", name="答复", exact=True)).to_contain_text(REPLY)
    action(page, "审核答复").get_by_role("button", name="审核通过并答复").click()
    expect(page.get_by_role("status")).to_contain_text("答复已审核通过")
    expect(dd(page, "状态")).to_have_text("已答复")
    log_out(page)
    assert stored(session, reference).state == "answered"

    # the citizen, in a browser context of their own (no staff cookie)
    citizen = new_context().new_page()
    citizen.goto(f"{live_server}/track")
    citizen.get_by_label("受理编号").fill(reference)
    citizen.get_by_label("查询码").fill(query_code)
    citizen.get_by_role("button", name="查询").click()
    expect(citizen).to_have_url(re.compile(r"/track/status$"))
    expect(dd(citizen, "当前状态")).to_have_text("已答复")
    expect(citizen.get_by_role("region", name="答复")).to_contain_text(REPLY)

    print("\naxe-core findings on the staff pages (all impacts):\n" + (describe(found) or "none"))
    blocking = describe(found, impacts={"serious", "critical"})
    assert not blocking, "axe-core serious/critical violations:\n" + blocking
