"""In Chromium: a form of this site posts with its Origin and is taken; the same form on another site's page
is refused before anything runs."""
from __future__ import annotations

import threading

import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

pytestmark = pytest.mark.xdist_group("browser")

REFUSED = "无法确认提交来自本站页面，操作未执行。请返回本站页面重新提交。"


@pytest.fixture
def other_site(live_server):
    """A page on another origin (another port) with a look-up form that posts to this site."""

    @Request.application
    def page(_request: Request) -> Response:
        html = (f'<!doctype html><html lang="zh-CN"><title>他站</title><form method="post" action="{live_server}/track">'
                '<input name="reference" value="HP2025-000001"><input name="query_code" value="ABCD-EFGH-JKMN-PQRS">'
                '<button>查询</button></form></html>')
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
    expect(page.get_by_text(REFUSED)).to_have_count(0)

    page.goto(other_site)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="查询").click()
    assert posted.value.request.header_value("origin") == other_site.rstrip("/")
    assert posted.value.status == 403
    expect(page.get_by_text(REFUSED)).to_be_visible()
