"""The working-day calendar: the bundled data, the arithmetic, and admin-replaced files."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest

from feedback_app.core.calendar import (
    BUNDLED_CALENDAR,
    CalendarError,
    WorkCalendar,
    calendar_file,
    load_calendar,
    save_calendar,
    validate_calendar_text,
)
from feedback_app.core.config import Settings

CJK = re.compile(r"[\u4e00-\u9fff]")

# 国务院办公厅关于2026年部分节假日安排的通知（2025年11月4日）
OFFICIAL_2026_REST = {
    "元旦": ("2026-01-01", "2026-01-03"),
    "春节": ("2026-02-15", "2026-02-23"),
    "清明节": ("2026-04-04", "2026-04-06"),
    "劳动节": ("2026-05-01", "2026-05-05"),
    "端午节": ("2026-06-19", "2026-06-21"),
    "中秋节": ("2026-09-25", "2026-09-27"),
    "国庆节": ("2026-10-01", "2026-10-07"),
}
OFFICIAL_2026_WORK = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(first: str, last: str) -> set[date]:
    start, end = d(first), d(last)
    return {start + timedelta(n) for n in range((end - start).days + 1)}


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return validate_calendar_text(BUNDLED_CALENDAR.read_text(encoding="utf-8"))


def minimal(**overrides) -> dict:
    data = {"plain_days": "calendar",
            "years": {"2026": {"holidays": ["2026-01-01"], "workdays": ["2026-01-04"]}}}
    data.update(overrides)
    return data


def file_settings(tmp_path, **overrides) -> Settings:
    return Settings.from_env({}, env="test", instance_path=tmp_path / "instance", secret_key="k",
                             database_url="sqlite://", **overrides)


# the bundled data ------------------------------------------------------------------------------
def test_bundled_2026_is_the_state_council_arrangement(cal):
    rest = set().union(*(days(a, b) for a, b in OFFICIAL_2026_REST.values()))
    assert {x for x in cal.holidays if x.year == 2026} == rest
    assert sorted(x.isoformat() for x in cal.workdays if x.year == 2026) == OFFICIAL_2026_WORK
    assert cal.plain_days == "calendar"
    assert 2026 not in cal.provisional_years


def test_bundled_2027_is_provisional_with_statutory_days_only(cal):
    assert cal.covers(d("2027-06-30")) and 2027 in cal.provisional_years
    data = json.loads(BUNDLED_CALENDAR.read_text(encoding="utf-8"))
    assert "2027" in data["note"] and "暂定" in data["note"]
    assert data["years"]["2027"]["workdays"] == []
    for day in ("2027-01-01", "2027-02-05", "2027-02-08", "2027-04-05", "2027-05-01", "2027-06-09",
                "2027-09-15", "2027-10-01", "2027-10-03"):
        assert not cal.is_working_day(d(day)), day
    assert cal.is_working_day(d("2027-02-11"))


def test_weekends_rest_and_make_up_saturdays_work(cal):
    assert cal.is_working_day(d("2026-03-06"))  # a Friday
    assert not cal.is_working_day(d("2026-03-07"))  # a Saturday
    assert cal.is_working_day(d("2026-02-14"))  # 调休上班 Saturday
    assert cal.is_working_day(d("2026-09-20"))  # 调休上班 Sunday
    assert not cal.is_working_day(d("2026-02-17"))  # 春节 on a Tuesday


# arithmetic ------------------------------------------------------------------------------------
def test_plain_days_ending_in_the_spring_festival_roll_forward(cal):
    assert cal.add_days(d("2026-01-31"), 15) == d("2026-02-24")  # would end 02-15, holiday to 02-23


def test_plain_days_ending_in_national_day_roll_forward(cal):
    assert cal.add_days(d("2026-09-16"), 15) == d("2026-10-08")  # would end 10-01


def test_plain_days_ending_on_a_make_up_saturday_stay(cal):
    assert cal.add_days(d("2026-02-13"), 15) == d("2026-02-28")


def test_plain_days_ending_on_a_weekend_roll_to_monday(cal):
    assert cal.add_days(d("2026-02-14"), 15) == d("2026-03-02")  # 03-01 is a Sunday


def test_working_days_across_the_spring_festival_count_the_make_up_saturdays(cal):
    # 02-10..13 (4), 02-14 Sat (5), 02-24..27 (9), 02-28 Sat (10), 03-02..06 (15)
    assert cal.add_working_days(d("2026-02-09"), 15) == d("2026-03-06")


def test_working_days_across_national_day(cal):
    # 09-20 Sun (1), 09-21..24 (5), 09-28..30 (8), 10-08, 10-09 (10), 10-10 Sat (11), 10-12..15 (15)
    assert cal.add_working_days(d("2026-09-18"), 15) == d("2026-10-15")


def test_the_start_day_is_not_counted(cal):
    assert cal.add_working_days(d("2026-03-06"), 1) == d("2026-03-09")
    assert cal.add_working_days(d("2026-03-06"), 0) == d("2026-03-06")
    assert cal.add_days(d("2026-03-02"), 1) == d("2026-03-03")


def test_working_rule_makes_plain_days_working_days():
    cal = validate_calendar_text(BUNDLED_CALENDAR.read_text(encoding="utf-8").replace(
        '"plain_days": "calendar"', '"plain_days": "working"'))
    assert cal.plain_days == "working" and cal.plain_days_rule == "按工作日计算"
    assert cal.add_days(d("2026-02-09"), 15) == d("2026-03-06")


def test_a_date_outside_the_calendar_raises(cal):
    with pytest.raises(CalendarError, match="工作日历未覆盖 2028 年，请管理员更新日历"):
        cal.is_working_day(d("2028-01-03"))
    with pytest.raises(CalendarError, match="2028"):
        cal.add_working_days(d("2027-12-20"), 15)
    with pytest.raises(CalendarError, match="2028"):
        cal.add_days(d("2027-12-25"), 10)
    with pytest.raises(CalendarError, match="2024"):
        cal.is_working_day(d("2024-12-31"))


# validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "空"),
        ("{not json", "不是有效的 JSON"),
        ("[]", "JSON 对象"),
        (json.dumps(minimal(plain_days="natural")), "plain_days"),
        (json.dumps(minimal(years={})), "至少列出一个年份"),
        (json.dumps(minimal(years={"26": {"holidays": []}})), "四位数字"),
        (json.dumps(minimal(years={"2026": {"holidays": ["2026-13-01"]}})), "日期无效"),
        (json.dumps(minimal(years={"2026": {"holidays": ["2026/01/01"]}})), "日期无效"),
        (json.dumps(minimal(years={"2026": {"holidays": ["2027-01-01"]}})), "不属于 2026 年"),
        (json.dumps(minimal(years={"2026": {"holidays": [], "workdays": ["2026-01-05"]}})), "不是周六或周日"),
        (json.dumps(minimal(years={"2026": {"holidays": ["2026-01-04"], "workdays": ["2026-01-04"]}})),
         "既是节假日又是调休上班日"),
        (json.dumps(minimal(years={"2026": {"holiday": []}})), "无法识别的字段"),
        (json.dumps(minimal(years={"2026": {"workdays": []}})), "缺少 holidays"),
        ('{"years": {"2026": {"holidays": []}, "2026": {"holidays": []}}}', "重复"),
    ],
)
def test_invalid_calendar_text_gives_a_chinese_error(text, fragment):
    with pytest.raises(CalendarError) as info:
        validate_calendar_text(text)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value) and CJK.search(str(info.value))


def test_valid_text_and_bytes_are_accepted():
    text = json.dumps(minimal(note="测试"), ensure_ascii=False)
    assert validate_calendar_text(text).covers(d("2026-05-01"))
    cal = validate_calendar_text(("\ufeff" + text).encode("utf-8"))
    assert cal.note == "测试" and not cal.is_working_day(d("2026-01-01"))
    with pytest.raises(CalendarError, match="UTF-8"):
        validate_calendar_text(text.encode("utf-16"))


# files -----------------------------------------------------------------------------------------
def test_the_bundled_calendar_is_used_by_default(tmp_path):
    settings = file_settings(tmp_path)
    assert calendar_file(settings) == BUNDLED_CALENDAR
    assert load_calendar(settings) is load_calendar(settings)


def test_save_calendar_writes_the_instance_file_and_load_picks_it_up(tmp_path):
    settings = file_settings(tmp_path)
    path = save_calendar(settings, json.dumps(minimal()))
    assert path == tmp_path / "instance" / "calendar.json"
    cal = load_calendar(settings)
    assert cal.years == {2026}
    save_calendar(settings, json.dumps(minimal(plain_days="working")))
    assert load_calendar(settings).plain_days == "working"
    assert [p.name for p in path.parent.iterdir()] == ["calendar.json"]


def test_save_calendar_refuses_an_invalid_text_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "cal" / "work.json"
    settings = file_settings(tmp_path, calendar_path=target)
    save_calendar(settings, json.dumps(minimal()))
    before = target.read_bytes()
    with pytest.raises(CalendarError):
        save_calendar(settings, '{"years": {}}')
    assert target.read_bytes() == before
    assert calendar_file(settings) == target and load_calendar(settings).years == {2026}


def test_a_broken_admin_file_is_reported_not_ignored(tmp_path):
    target = tmp_path / "work.json"
    target.write_text("{broken", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"work\.json 无效"):
        load_calendar(file_settings(tmp_path, calendar_path=target))
