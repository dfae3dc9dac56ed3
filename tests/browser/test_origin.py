"""In Chromium: a form of this site posts with its Origin and is taken; the same form on another site's page
is refused, and comes back as it was filled in, saying why (a host alias or a proxy set up wrong looks the
same to the site: what the person typed must not be lost)."""
from __future__ import annotations

import threading

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from feedback_app.core.models import Submission
from tests.factories import FORM

pytestmark = pytest.mark.xdist_group("browser")

REASON = "无法确认提交来自本站页面，操作未执行。"
BODY = "建议在通报中写明整改完成的时间节点，便于群众监督。"


@pytest.fixture
def other_site(live_server):
    """Pages on another origin (another port) whose forms post to this site: a look-up (``/``) and a
    comment (``/comment``)."""

    @Request.application
    def page(request: Request) -> Response:
        if request.path == "/comment":
            form = (f'<form method="post" action="{live_server}{FORM}" enctype="multipart/form-data">'
                    '<input type="hidden" name="item" value="5"><input type="hidden" name="kind" value="suggestion">'
                    '<input type="hidden" name="reply_by" value="online">'
                    '<input type="hidden" name="privacy_consent" value="y">'
                    '<label for="body">意见</label><textarea id="body" name="body"></textarea>'
                    '<button>提交</button></form>')
        else:
            form = (f'<form method="post" action="{live_server}/track">'
                    '<input name="reference" value="HP2025-000001"><input name="query_code" value="ABCD-EFGH-JKMN-PQRS">'
                    '<button>查询</button></form>')
        html = f'<!doctype html><html lang="zh-CN"><title>他站</title>{form}</html>'
        return Response(html, content_type="text/html; charset=utf-8")

    server = make_server("127.0.0.1", 0, page, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="other-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_sites_own_form_is_taken_and_another_sites_copy_refused(page: Page, live_server, other_site):
    page.goto(f"{live_server}/track")
    page.get_by_label("受理编号").fill("HP2025-000001")
    page.get_by_label("查询码").fill("ABCD-EFGH-JKMN-PQRS")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="查询").click()
    assert posted.value.request.header_value("origin") == live_server  # Chromium says where it posts from
    assert posted.value.status != 403
    expect(page.get_by_text(REASON)).to_have_count(0)

    page.goto(other_site)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="查询").click()
    assert posted.value.request.header_value("origin") == other_site.rstrip("/")
    assert posted.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text(REASON)  # this site's own form, saying why
    expect(page.get_by_label("受理编号")).to_have_value("HP2025-000001")  # with what was typed
    expect(page.get_by_label("查询码")).to_have_value("ABCD-EFGH-JKMN-PQRS")


def test_a_comment_from_another_sites_page_comes_back_as_typed(page: Page, live_server, other_site, app):
    page.goto(f"{other_site}comment")
    page.get_by_label("意见").fill(BODY)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="提交").click()
    assert posted.value.request.header_value("origin") == other_site.rstrip("/")
    assert posted.value.status == 403
    assert page.url.startswith(live_server)  # the site's own page
    expect(page.get_by_role("alert").first).to_contain_text(REASON)
    expect(page.get_by_role("textbox", name="意见内容")).to_have_value(BODY)
    with app.extensions["db_sessionmaker"]() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
