"""Tests for the bulletin parser, on the seed bulletin and variants made from it."""
from __future__ import annotations

import datetime
import random
import re
from pathlib import Path

import pytest

from feedback_app.bulletin.parser import BulletinParseError, ParsedBulletin, parse_bulletin

SEED_PATH = Path(__file__).resolve().parents[2] / "feedback_app" / "bulletin" / "seed" / "huangpu-2025-03-28.txt"
SEED = SEED_PATH.read_text(encoding="utf-8")

FULL_WIDTH = str.maketrans({"(": "（", ")": "）", ",": "，", ":": "：", ";": "；"})

ITEM_TITLES = [
    "惠企措施缺乏统筹的整改",
    "部分职能部门履行主责存在不足的整改",
    "解决中小微企业难题乏力的整改",
    "部门之间相互协同存在不足的整改",
    "企业获得感下降的整改",
    "执法不规范的整改",
    "对新产业扶持力度不够的整改",
    "用地供需矛盾突出的整改",
    "产业载体租金贵的整改",
    "融资难融资贵融资慢的整改",
    "各类人才储备量不足的整改",
    "制造业集聚区公交配套不足的整改",
    "城中村改造对企业人员住房造成影响的整改",
    "优质医疗资源分布不均的整改",
]
MEASURE_COUNTS = [4, 4, 2, 3, 3, 3, 3, 3, 0, 3, 4, 4, 2, 0]
PART_TITLES = ["区委履行巡察整改主体责任情况", "巡察整改任务落实情况", "下一步工作打算"]
PART_THREE_SECTIONS = [
    "突出政治体检,切实增强巡察整改的政治性",
    "突出环境优化,持续提升机关干部工作作风",
    "突出长效长治,着力完善问题整改工作机制",
]


def full_width(text: str) -> str:
    """The seed as other bulletins of the genre are written: full-width punctuation, U+3000, CRLF."""
    return text.translate(FULL_WIDTH).replace("\xa0", "\u3000").replace("\n", "\r\n")


VARIANTS = {"seed": (SEED, lambda s: s), "full-width-crlf": (full_width(SEED), lambda s: s.translate(FULL_WIDTH))}


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def last_line(text: str) -> int:
    return max(len(text.splitlines()), 1)


def raises_at(text: str, line: int) -> BulletinParseError:
    with pytest.raises(BulletinParseError) as info:
        parse_bulletin(text)
    err = info.value
    assert err.line == line, err.message
    assert str(err) == err.message and err.message.startswith(f"第{line}行：")
    return err


@pytest.mark.parametrize("variant", VARIANTS)
def test_structure_of_seed(variant):
    text, fw = VARIANTS[variant]
    b = parse_bulletin(text)
    assert b.title == "中共广州开发区工委 中共广州市黄埔区委关于巡察整改进展情况的通报"
    assert b.issuers == ("中共广州开发区工委", "中共广州市黄埔区委")
    assert b.published_on == datetime.date(2025, 3, 28)
    assert b.source == "广州开发区、黄埔区"
    assert len(b.intro) == 1 and b.intro[0].startswith(fw("根据市委统一部署,2023年8月16日"))

    assert [p.number for p in b.parts] == [1, 2, 3]
    assert [p.marker for p in b.parts] == ["一、", "二、", "三、"]
    assert [p.title for p in b.parts] == PART_TITLES
    assert [len(p.sections) for p in b.parts] == [4, 4, 3]
    assert [s.number for s in b.parts[1].sections] == [1, 2, 3, 4]
    assert b.parts[1].sections[0].marker == fw("(一)")
    assert b.parts[1].sections[3].title == "关于基础公共服务配套惠企“最后一公里”方面"
    assert [len(s.items) for s in b.parts[1].sections] == [3, 4, 4, 3]
    assert b.parts[0].sections[0].title == "加强组织领导" and len(b.parts[0].sections[0].paragraphs) == 1

    three = b.parts[2]
    assert len(three.paragraphs) == 1 and three.paragraphs[0].startswith("经过近六个月的集中整改")
    assert [s.title for s in three.sections] == [fw(t) for t in PART_THREE_SECTIONS]
    assert three.sections[0].paragraphs[0].startswith("全面贯彻落实习近平总书记")
    assert all(len(s.paragraphs) == 1 and not s.items for s in three.sections)

    items = b.items
    assert [i.number for i in items] == list(range(1, 15))
    assert [i.title for i in items] == ITEM_TITLES
    assert [len(i.measures) for i in items] == MEASURE_COUNTS
    for item in items:
        assert [m.number for m in item.measures] == list(range(1, len(item.measures) + 1))
        assert [m.ordinal for m in item.measures] == [f"{c}是" for c in "一二三四"[: len(item.measures)]]
        assert all(m.text.endswith("。") for m in item.measures)
        assert bool(item.paragraphs) == (not item.measures)
    assert items[4].measures[0].text.startswith("加强涉企会议和政务窗口管理")
    assert items[8].paragraphs[0].startswith("降低区属国企产业载体租金")
    assert items[13].paragraphs[0].startswith("强化优质医疗资源配置")

    assert b.closing.startswith("欢迎广大干部群众") and b.closing.endswith(fw("邮编:510000。"))
    c = b.contacts
    assert c.phone == "020-82378781"
    assert c.email == "yshjggj@gdd.gov.cn"
    assert c.address == "黄埔区香雪三路1号区纪委监委"
    assert c.envelope_note == "对黄埔区委巡察整改情况的意见建议"
    assert c.postcode == "510000"


def kept_text(b: ParsedBulletin) -> str:
    kept = [*b.intro, b.closing]
    for p in b.parts:
        kept += [p.marker + p.title, *p.paragraphs]
        for s in p.sections:
            kept += [s.marker + s.title, *s.paragraphs]
            for i in s.items:
                kept += [f"{i.number}.{i.title}", *i.paragraphs, *(m.ordinal + m.text for m in i.measures)]
    return "\n".join(kept)


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_text_lost(variant):
    text, _ = VARIANTS[variant]
    blob = kept_text(parse_bulletin(text))
    lines = text.splitlines()
    body = lines[line_of(text, "发布时间"): line_of(text, "欢迎广大干部群众")]
    sentences = [s for line in body for s in line.strip().split("。") if s]
    assert len(sentences) > 100
    missing = [s for s in sentences if s not in blob]
    assert missing == []


def test_layout_variations_parse_the_same():
    expected = parse_bulletin(SEED)
    lines = [re.sub(r"^\xa0+", "    ", line) for line in SEED.split("\n") if line.strip()]
    assert parse_bulletin("\ufeff" + "\r\n".join(lines) + "\r\n") == expected
    assert parse_bulletin(SEED.replace("\xa0\xa0", "\u3000\u3000").replace("\n\n", "\n")) == expected
    assert parse_bulletin(SEED.replace("\n", "\r")) == expected


def test_date_in_chinese_and_result_is_hashable():
    b = parse_bulletin(SEED.replace("发布时间:2025-03-28", "发布时间：2025年3月28日"))
    assert b.published_on == datetime.date(2025, 3, 28) and b.source == "广州开发区、黄埔区"
    assert hash(b) == hash(parse_bulletin(SEED))


def test_title_without_guanyu_has_no_issuers():
    b = parse_bulletin(SEED.replace("中共广州市黄埔区委关于巡察", "中共广州市黄埔区委巡察"))
    assert b.issuers == ()


def test_section_title_alone_and_with_body():
    text = SEED.replace("(一)加强组织领导", "(一)加强组织领导。统一部署")
    section = parse_bulletin(text).parts[0].sections[0]
    assert section.title == "加强组织领导"
    assert section.paragraphs[0] == "统一部署" and len(section.paragraphs) == 2


def test_error_empty_text():
    raises_at("", 1)


def test_error_no_date_line():
    text = SEED.replace("发布时间:2025-03-28 来源:广州开发区、黄埔区", "来源:广州开发区")
    raises_at(text, last_line(text))


def test_error_no_title():
    text = SEED[SEED.index("发布时间"):]
    raises_at(text, 1)


def test_error_invalid_date():
    text = SEED.replace("2025-03-28", "2025-02-30")
    raises_at(text, line_of(text, "发布时间"))


def test_error_item_number_skips():
    text = SEED.replace("5.企业获得感", "7.企业获得感")
    err = raises_at(text, line_of(text, "7.企业获得感"))
    assert "应为 5，实际为 7" in err.message


def test_error_missing_closing_paragraph():
    text = "\n".join(line for line in SEED.split("\n") if "欢迎广大干部群众" not in line)
    raises_at(text, last_line(text))


def test_error_no_parts():
    lines = SEED.split("\n")
    header = lines[: line_of(SEED, "根据市委统一部署")]
    text = "\n".join(header + [line for line in lines if "欢迎广大干部群众" in line])
    assert "未找到任何部分" in raises_at(text, line_of(text, "欢迎广大干部群众")).message


def test_error_section_or_item_too_early():
    head, tail = SEED.split("\xa0\xa0一、区委履行", 1)
    text = head + "\xa0\xa0(一)过早的方面\n\n\xa0\xa0一、区委履行" + tail
    raises_at(text, line_of(text, "(一)过早的方面"))
    text = SEED.replace("(一)加强组织领导", "1.过早的事项")
    raises_at(text, line_of(text, "1.过早的事项"))


def test_error_measures_outside_item():
    text = SEED.replace("\xa0\xa0根据市委巡察组反馈意见", "\xa0\xa0一是根据市委巡察组反馈意见")
    raises_at(text, line_of(text, "一是根据市委巡察组反馈意见"))


def test_number_inside_body_text_is_not_an_item():
    assert "10.47万个招聘岗位" in SEED
    assert "10.47万个招聘岗位" in parse_bulletin(SEED).items[10].measures[1].text


TOKENS = ["一、", "(一)", "（十一）", "十十、", "5.", "99.", "１．", "一是", "二是", "。", "关于", "欢迎监督",
          "发布时间:", "发布时间:2025-02-30", "来源:", "\n", "\r", "\r\n", "\ufeff", "\xa0", "\u3000", "(", "）"]


def mutate(rng: random.Random, text: str) -> str:
    op = rng.randrange(5)
    if op == 0:
        a = rng.randrange(len(text) + 1)
        return text[a: rng.randrange(a, len(text) + 1)]
    lines = text.split("\n")
    if op == 1:
        return "\n".join(line for line in lines if rng.random() > 0.2)
    if op == 2:
        rng.shuffle(lines)
        return "\n".join(lines)
    if op == 3:
        k = rng.randrange(len(lines))
        return "\n".join(lines[:k] + lines[k - 3: k] + lines[k:])
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(TOKENS) + text[i + rng.randrange(3):]
    return text


def test_fuzz_returns_or_raises_parse_error():
    rng = random.Random(20250328)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(200):
        text = rng.choice([SEED, full_width(SEED)])
        for _ in range(rng.randint(1, 3)):
            text = mutate(rng, text) or text
        try:
            result = parse_bulletin(text)
        except BulletinParseError as err:
            assert 1 <= err.line <= max(last_line(text), 1)
            assert str(err).startswith(f"第{err.line}行：")
            outcomes["error"] += 1
        else:
            assert isinstance(result, ParsedBulletin)
            hash(result)
            outcomes["ok"] += 1
    assert outcomes["ok"] and outcomes["error"]
