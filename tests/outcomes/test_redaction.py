"""Automatic masking of personal details in free text, and the check made before publishing."""
import re

import pytest

from feedback_app.outcomes.redaction import (
    Personal,
    address_fragments,
    find,
    mask_text,
    national_number,
    problems,
)

PHONE, EMAIL, ID_CARD, ADDRESS = "【电话已隐去】", "【邮箱已隐去】", "【身份证号已隐去】", "【地址已隐去】"


@pytest.mark.parametrize("text", [
    "13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+86-13800138000",
    "0086 13800138000", "(+86)13800138000", "８６１３８００１３８０００", "１３８００１３８０００",
    "１３８－００１３－８０００", "幺三八零零幺三八零零零", "一三八〇〇一三八〇〇〇",
])
def test_mobile_numbers_in_any_spelling(text):
    assert mask_text(f"我的手机是{text}，请回电。") == f"我的手机是{PHONE}，请回电。"


@pytest.mark.parametrize("text", [
    "020-82378781", "(020)82378781", "（０２０）８２３７８７８１", "020 8237 8781", "+86 20 8237 8781",
    "0755-12345678", "010-6512 3456",
])
def test_fixed_lines_with_area_code(text):
    assert mask_text(f"座机{text}。") == f"座机{PHONE}。"


@pytest.mark.parametrize("text", ["电话 8237 8781", "电话：82378781", "打8237-8781找我"])
def test_local_numbers_when_they_read_as_phone_numbers(text):
    assert PHONE in mask_text(text) and not re.search(r"\d{4}", mask_text(text))


@pytest.mark.parametrize("text", [
    "zhang.san@example.com", "zhang.san＠example.com", "ＡＢＣ＠ＱＱ．ＣＯＭ", "zhangsan(at)qq.com",
    "zhangsan#163.com", "zhang_san @ mail.example.cn", "用户@例子.中国",
])
def test_emails(text):
    masked = mask_text(f"邮箱：{text}。")
    assert masked == f"邮箱：{EMAIL}。", masked


@pytest.mark.parametrize("text", [
    "440106199001011234", "44010619900101123X", "44010619900101123x", "4401 0619 9001 0112 34", "440106900101123",
])
def test_id_card_numbers(text):
    assert mask_text(f"身份证号{text}。") == f"身份证号{ID_CARD}。"


@pytest.mark.parametrize("text, expected", [
    ("我家住在广州市黄埔区香雪三路1号，", f"我家住在{ADDRESS}，"),
    ("地址：黄埔区文冲街道石化路十号。", f"地址：{ADDRESS}。"),
    ("碧桂园花园3栋1203房门口", f"{ADDRESS}门口"),
    ("新丰村3组12号的村民", f"{ADDRESS}的村民"),
    ("某社区5栋2单元301室漏水", f"某{ADDRESS}漏水"),
    ("我住在翡翠绿洲小区。", f"我住在{ADDRESS}。"),
    ("开元大道88号之2旁边", f"{ADDRESS}旁边"),
])
def test_chinese_addresses(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("我叫张三，", "我叫张某，"),
    ("本人李四反映", "本人李某反映"),
    ("姓名：王小明。", "姓名：王某某。"),
    ("联系人：欧阳娜娜", "联系人：欧阳某某"),
    ("王国强局长说", "王某某局长说"),
    ("张伟先生来过", "张某先生来过"),
])
def test_names_introduced_as_names_or_before_a_title(text, expected):
    assert mask_text(text) == expected


@pytest.mark.parametrize("text", [
    "2025年3月28日", "2025-03-28 14:30", "2025.03.28", "项目投资1200万元", "投资123456789元", "共有10000000户",
    "第5项整改落实情况", "黄埔区委巡察整改", "拨打12345热线", "12388举报电话", "我是黄埔区居民", "400-800-1234 客服",
    "推行一户一档管理", "习近平总书记", "建议加强涉企会议管理，提前三天通知企业。",
])
def test_ordinary_text_is_left_alone(text):
    assert mask_text(text) == text


def test_the_bulletin_itself_only_loses_its_contacts_and_keeps_them_when_allowed():
    from tests.conftest import SEED

    text = SEED.read_text(encoding="utf-8")
    kinds = sorted(f.kind for f in find(text))
    assert kinds == ["address", "email", "phone"]
    assert find(text, allowed=("020-82378781", "yshjggj@gdd.gov.cn", "黄埔区香雪三路1号区纪委监委")) == []


HOLDER = Personal(name="陈志强", phone="+8613912345678", email="zq.chen2024@example.com",
                  address="广州市黄埔区大沙街道丰乐北路38号3栋502房")


@pytest.mark.parametrize("text", [
    "陈志强", "陈 志 强", "139 1234 5678", "+86 139-1234-5678", "１３９１２３４５６７８", "139，1234，5678",
    "一三九一二三四五六七八", "zq.chen2024@example.com", "ZQ.CHEN2024@EXAMPLE.COM", "zq.chen2024＠example．com",
    "zq.chen2024", "广州市黄埔区大沙街道丰乐北路38号3栋502房", "丰乐北路38号3栋502房", "丰乐北路 38号",
])
def test_the_submissions_own_details_are_found_in_any_spelling(text):
    masked = mask_text(f"说明：{text}，谢谢。", HOLDER)
    assert problems(masked, HOLDER) == []
    assert [p.own for p in problems(f"说明：{text}，谢谢。", HOLDER)] != []
    for leak in ("陈志强", "志强", "13912345678", "zq.chen2024", "丰乐北路38号"):
        assert leak not in re.sub(r"\s|，", "", masked)


def test_own_name_keeps_the_surname():
    assert mask_text("我是陈志强。", HOLDER) == "我是陈某某。"


def test_problems_name_what_is_left():
    found = problems("请打13800138000，或写信 a.b@example.org，身份证440106199001011234。陈志强", HOLDER)
    assert {p.kind for p in found} == {"phone", "email", "id_card", "name"}
    assert any(p.own and p.kind == "name" for p in found)
    assert all("仍含" in p.message for p in found)


def test_a_phone_number_split_far_apart_is_still_refused():
    text = "前三位139，后面是：1234，最后5678。"
    assert [p.kind for p in problems(text, HOLDER)] == ["phone"]


def test_pseudonyms_are_not_personal_details():
    assert problems("陈某反映的问题", Personal(name="陈某")) == []
    assert mask_text("陈某反映的问题", Personal(name="陈某")) == "陈某反映的问题"


def test_helpers():
    assert national_number("+8613800138000") == "13800138000"
    assert national_number("020-82378781") == "2082378781"
    assert national_number("+862082378781") == "2082378781"
    assert address_fragments("广州市黄埔区香雪三路1号") == ["广州市黄埔区香雪三路1号", "黄埔区香雪三路1号", "香雪三路1号"]
    assert address_fragments(HOLDER.address)[-1] == "丰乐北路38号"
    assert address_fragments("翡翠绿洲小区5栋1201房")[-1] == "翡翠绿洲小区5栋"
    assert address_fragments("广州市黄埔区") == []


@pytest.mark.parametrize("text", ["路" * 5000, "香雪三路" * 1250, "广州市黄埔区" * 800, "1号" * 2500, "王" * 5000,
                                  "a@" * 2500, "1 " * 2500, "我叫" * 2500])
@pytest.mark.timeout(60)  # catastrophic backtracking would hang here
def test_no_catastrophic_backtracking(text):
    assert isinstance(mask_text(text, HOLDER), str)
