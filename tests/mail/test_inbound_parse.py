"""The parser on the corpus: charsets, headers, file names, HTML to text, item detection, limits."""
from __future__ import annotations

import pytest

from feedback_app.mailbox.classify import chinese_number, detect_item, items_named
from feedback_app.mailbox.decode import decode_bytes, decode_header, html_to_text
from feedback_app.mailbox.parse import Limits, parse_message
from tests.mail.corpus import CORPUS, OVERSIZE_LIMIT
from tests.mail.corpus.samples import deep_nesting, many_parts

LIMITS = Limits(OVERSIZE_LIMIT, 200, 10)
ITEMS = set(range(1, 15))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_sample_reads_as_expected(name):
    sample = CORPUS[name]
    parsed = parse_message(sample.raw, LIMITS)
    facts = sample.facts
    reasons = " ".join(filter(None, (parsed.problem, parsed.bounce, parsed.auto_reply)))
    if sample.expect == "quarantined":
        assert facts["reason"] in reasons
    else:
        assert reasons == ""
    for key in ("subject", "sender", "sender_name", "text", "html_only"):
        if key in facts:
            assert getattr(parsed, key) == facts[key], key
    for words in facts.get("contains", ()):
        assert words in parsed.text
    if "files" in facts:
        assert [p.filename for p in parsed.parts] == facts["files"]
    if "item" in facts:
        found = detect_item(parsed.subject, parsed.text, ITEMS)
        assert ((found or {}).get("number") or 0) == facts["item"]
    assert "\ufffd" not in parsed.text + parsed.subject + (parsed.sender_name or "")


@pytest.mark.timeout(60)  # a guard against a hang, not a speed measurement (that is make bench)
def test_a_message_with_2000_parts_is_refused():
    raw = many_parts(2000)[0]
    parsed = parse_message(raw, LIMITS)
    assert parsed.problem == "MIME 部分过多（超过 200 个）"
    assert parsed.subject == "many"  # the headers are still read for the quarantine list


def test_deep_nesting_and_size_limits():
    assert "嵌套过深" in parse_message(deep_nesting(40)[0], LIMITS).problem
    assert parse_message(deep_nesting(5)[0], LIMITS).problem is None
    big = CORPUS["oversized"].raw
    assert "邮件过大" in parse_message(big, LIMITS).problem
    assert parse_message(big, Limits(len(big), 200, 10)).problem is None


def test_lenient_reading_for_release_ignores_limits_and_reads_broken_structure():
    assert parse_message(many_parts(300)[0], LIMITS, lenient=True).problem is None
    broken = parse_message(CORPUS["malformed_boundary"].raw, LIMITS, lenient=True)
    assert broken.problem is None and "body" in broken.text
    garbage = parse_message(CORPUS["malformed_garbage"].raw, LIMITS, lenient=True)
    assert garbage.problem is None and garbage.text


@pytest.mark.parametrize("data, charset, text", [
    ("朱镕基".encode("gbk"), "gb2312", "朱镕基"),  # GB2312 label, GBK character: read as GB18030
    ("堃".encode("gbk"), "GBK", "堃"),
    ("𠀀".encode("gb18030"), "gb18030", "𠀀"),
    ("臺灣".encode("big5"), "big5", "臺灣"),
    ("中文".encode(), "utf-8", "中文"),
    ("中文".encode("gbk"), "utf-8", "中文"),  # mislabelled: UTF-8 fails, GB18030 fits
    ("中文".encode("gbk"), None, "中文"),
    (b"abc", "x-no-such-charset", "abc"),
])
def test_charsets(data, charset, text):
    assert decode_bytes(data, charset) == text


def test_undecodable_bytes_are_replaced_not_fatal():
    assert "\ufffd" in decode_bytes(b"\xff\xfe\xfd", "big5")
    assert "\ufffd" in decode_bytes(b"ok \x80\x80\x80\xff", "gbk")


@pytest.mark.parametrize("raw, text", [
    ("=?UTF-8?B?5Lit5paH?=", "中文"),
    ("=?gb2312?B?1tDOxA==?= =?gb2312?B?1tDOxA==?=", "中文中文"),  # space between encoded words dropped
    ("=?GBK?Q?=D6=D0=CE=C4_abc?=", "中文 abc"),
    ("Re: =?utf-8?q?=E6=84=8F=E8=A7=81?= x", "Re: 意见 x"),
    ("=?gb2312*zh?B?1tDOxA==?=", "中文"),  # RFC 2231 language tag in an encoded word
    ("=?UTF-8?B?5Lit?=\r\n =?UTF-8?B?5paH?=", "中文"),
    ("plain  text\r\n\tfolded", "plain text folded"),
    ("=?UTF-8?B?bad base64!?=", None),
])
def test_rfc2047_headers(raw, text):
    result = decode_header(raw)
    if text is not None:
        assert result == text
    else:
        assert isinstance(result, str)


def test_html_to_text():
    html = ("<html><head><title>t</title><style>.x{color:red}</style><script>var a='<p>';</script></head><body>"
            "<div>第一行</div><div>第二行&nbsp;&amp;&lt;&gt;&quot;&#20013;&#x6587;</div><br>"
            "<p>段落</p><ul><li>甲</li><li>乙</li></ul><table><tr><td>单元</td><td>格</td></tr></table>"
            "<noscript>no</noscript><!-- 注释 --><p>end</body></html>")
    assert html_to_text(html) == "第一行\n第二行 &<>\"中文\n\n段落\n\n甲\n乙\n\n单元 格\n\nend"


@pytest.mark.parametrize("text, numbers", [
    ("关于第5项", [5]), ("第 5 项", [5]), ("第五项", [5]), ("事项5", [5]), ("事项 12", [12]),
    ("第十四项", [14]), ("第５项", [5]), ("第三項", [3]), ("第5项整改事项", [5]), ("第3项和第7项", [3, 7]),
    ("第19条", []), ("五项措施", []),
])
def test_items_named(text, numbers):
    assert [n for n, _ in items_named(text)] == numbers


def test_detect_item_prefers_the_subject_and_refuses_ambiguity():
    assert detect_item("第3项", "第5项", ITEMS)["number"] == 3
    assert detect_item("意见", "第5项", ITEMS) == {"number": 5, "words": "第5项", "in": "body"}
    assert detect_item("第3项和第5项", "", ITEMS) == {"number": None, "candidates": [3, 5], "in": "subject"}
    assert detect_item("第30项", "第九项", ITEMS)["number"] == 9
    assert detect_item("没有", "提到", ITEMS) is None
    assert chinese_number("二十三") == 23 and chinese_number("一百零五") == 105 and chinese_number("十") == 10
