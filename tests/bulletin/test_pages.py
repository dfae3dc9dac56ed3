"""The public bulletin pages."""
import re
from html import unescape

import pytest

from feedback_app.bulletin.parser import parse_bulletin
from tests.conftest import SEED, SEED_SLUG

PAGE = f"/bulletins/{SEED_SLUG}"


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style|head)\b.*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", html))


def source_sentences(text: str) -> list[str]:
    """Each sentence of the bulletin body, from the title to the closing paragraph."""
    body = text[text.index("中共广州开发区工委"): text.index("上一篇")]
    sentences = []
    for line in body.splitlines():
        line = line.strip("\u00a0\u3000 \r")
        if line.startswith("发布时间"):
            continue
        sentences += [s.strip() for s in re.split(r"[。；;]", line) if s.strip()]
    return sentences


def test_index_lists_latest_bulletin_first(client, bulletin):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert bulletin.title in html
    assert f'href="{PAGE}"' in html


def test_index_without_bulletins(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "暂无已发布的通报" in response.get_data(as_text=True)


def full_width_crlf(text: str) -> str:
    table = str.maketrans({"(": "（", ")": "）", ",": "，", ":": "：", ";": "；", "\u00a0": "\u3000"})
    return text.translate(table).replace("\n", "\r\n")


@pytest.mark.parametrize("variant", [lambda t: t, full_width_crlf], ids=["seed", "full-width-crlf"])
def test_every_sentence_of_the_source_is_on_the_page(client, session, variant):
    from feedback_app.bulletin.service import import_bulletin

    source = variant(SEED.read_text(encoding="utf-8"))
    import_bulletin(session, source, "variant")
    session.commit()
    page = client.get("/bulletins/variant")
    assert page.status_code == 200
    flat = re.sub(r"\s+", "", visible_text(page.get_data(as_text=True)))
    missing = [s for s in source_sentences(source) if re.sub(r"\s+", "", s) not in flat]
    assert missing == []
    assert len(source_sentences(source)) > 150


def test_items_and_measures_have_stable_ids_and_comment_links(client, bulletin):
    html = client.get(PAGE).get_data(as_text=True)
    parsed = parse_bulletin(SEED.read_text(encoding="utf-8"))
    for item in parsed.items:
        assert f'id="item-{item.number}"' in html
        assert f'href="{PAGE}/feedback?item={item.number}"' in html
        for m in item.measures:
            assert f'id="item-{item.number}-{m.number}"' in html
    assert 'id="item-9-1"' not in html and 'id="item-5-4"' not in html
    assert 'id="item-5-3"' in html


def test_table_of_contents_links_every_item(client, bulletin):
    html = client.get(PAGE).get_data(as_text=True)
    toc = html[html.index('class="toc"'): html.index("</nav>", html.index('class="toc"'))]
    assert all(f'href="#item-{n}"' in toc for n in range(1, 15))


def test_contact_block(client, bulletin):
    html = client.get(PAGE).get_data(as_text=True)
    assert 'href="tel:02082378781"' in html
    assert 'href="mailto:yshjggj@gdd.gov.cn"' in html
    block = html[html.index('class="contacts"'):]
    for value in ("黄埔区香雪三路1号区纪委监委", "对黄埔区委巡察整改情况的意见建议", "510000"):
        assert value in block


def test_feedback_route_exists_for_each_item(client, bulletin):
    assert client.get(f"{PAGE}/feedback?item=5").status_code == 200


def test_unknown_bulletin_is_404_in_chinese(client, bulletin):
    response = client.get("/bulletins/no-such")
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)
    assert client.get("/bulletins/no-such/feedback").status_code == 404


def test_bulletin_page_is_cacheable_and_conditional(client, bulletin):
    first = client.get(PAGE)
    assert first.headers["ETag"]
    again = client.get(PAGE, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/", PAGE, "/healthz", "/no-such-page"])
def test_security_headers_on_every_response(client, bulletin, path):
    h = client.get(path).headers
    csp = h["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"]


def test_pages_use_only_local_assets(client, bulletin):
    html = client.get(PAGE).get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:css|js|woff2?|ttf))"', html)
    assert assets and all(a.startswith("/static/") for a in assets)
    assert "<script>" not in html and " style=" not in html
    for a in assets:
        assert client.get(a).status_code == 200
