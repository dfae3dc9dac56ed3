"""补发查询码 in Chromium, CSRF on: a clerk checks a caller, gives a new code, reads it once; axe-core
checks the submission page (with an error next to the field) and the page that shows the code."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.auth.helpers import create_staff
from tests.browser.axe import DESKTOP, axe_violations, describe
from tests.browser.test_staff_day import action, log_in
from tests.factories import create_web_submission

pytestmark = pytest.mark.xdist_group("browser")


@pytest.fixture(scope="module")
def browser_context_args(browser_context_args):
    return {**browser_context_args, **DESKTOP}


def test_a_clerk_reissues_a_lost_query_code(new_context, live_server, session, settings, bulletin):
    create_staff(session, username="deng.ji", role="clerk", display_name="邓登记")
    submission, old_code = create_web_submission(session, settings, bulletin=bulletin, name="陈小红",
                                                 phone="+8613800138000")
    reference = submission.reference
    found: dict[str, list[dict]] = {}

    page = new_context().new_page()
    log_in(page, live_server, "deng.ji")
    page.goto(f"{live_server}/staff/submissions/{reference}")
    form = action(page, "补发查询码")
    form.get_by_label("补充说明（可选，记入审计日志）").fill("来电号码尾号8000")
    form.get_by_role("button", name="补发查询码").click()  # no method chosen
    form = action(page, "补发查询码")
    expect(form.locator("#qc-method-error")).to_have_text("请选择核验反映人身份的方式")
    expect(form.get_by_label("补充说明（可选，记入审计日志）")).to_have_value("来电号码尾号8000")
    found["detail with an error"] = axe_violations(page)

    form.get_by_label("来电号码与登记的电话号码一致").check()
    form.get_by_role("button", name="补发查询码").click()
    expect(page).to_have_url(re.compile(rf"/staff/submissions/{reference}/query-code$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("已补发新的查询码")
    code = page.locator("#query-code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code), code
    found["new code"] = axe_violations(page)

    page.reload()  # shown once
    expect(page.get_by_role("heading", level=1)).to_have_text("没有可显示的查询码")
    assert code not in page.content()

    citizen = new_context().new_page()
    for typed, works in ((old_code, False), (code, True)):
        citizen.goto(f"{live_server}/track")
        citizen.get_by_label("受理编号").fill(reference)
        citizen.get_by_label("查询码").fill(typed)
        citizen.get_by_role("button", name="查询").click()
        if works:
            expect(citizen).to_have_url(re.compile(r"/track/status$"))
        else:
            expect(citizen.get_by_text("受理编号或查询码不正确")).to_be_visible()

    print("\naxe-core findings (all impacts):\n" + (describe(found) or "none"))
    blocking = describe(found, impacts=("serious", "critical"))
    assert not blocking, "axe-core serious/critical violations:\n" + blocking
