"""The working-day calendar: public holidays, make-up working days (调休上班) and how a plain "日" counts.

The calendar is data, not code. A JSON file says, per year, which days are public holidays and which
weekend days are make-up working days, and how a plain "日" counts::

    {"plain_days": "calendar" | "working",
     "note": "...",
     "years": {"2026": {"holidays": ["2026-01-01", ...], "workdays": ["2026-01-04", ...],
                        "source": "...", "note": "...", "provisional": false}}}

``plain_days``:

- ``"calendar"`` (the default): natural days; when the last day is a rest day it moves to the next
  working day (the reading of 民法典第二百零三条 and procedural practice).
- ``"working"``: a plain "日" is a working day.

The day a period starts from is never counted (民法典第二百零一条). A date in a year the calendar does not
cover raises :class:`CalendarError`: the code never guesses whether an unknown day is a holiday.

The bundled ``calendars/cn-workdays.json`` is used unless an administrator replaced it: then the file at
``settings.calendar_path`` (or ``instance_path/calendar.json`` when that setting is empty) wins.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from feedback_app.core.config import Settings

BUNDLED_CALENDAR = Path(__file__).resolve().parent / "calendars" / "cn-workdays.json"
INSTANCE_CALENDAR_NAME = "calendar.json"
MAX_CALENDAR_BYTES = 256 * 1024

PLAIN_CALENDAR = "calendar"
PLAIN_WORKING = "working"
PLAIN_DAYS_RULES = {
    PLAIN_CALENDAR: "自然日，末日遇节假日顺延",
    PLAIN_WORKING: "按工作日计算",
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TOP_KEYS = frozenset({"plain_days", "years", "note"})
_YEAR_KEYS = frozenset({"holidays", "workdays", "note", "source", "provisional"})

log = logging.getLogger(__name__)


class CalendarError(ValueError):
    """The calendar is malformed, or does not cover a date that a computation needs."""


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days, and how a plain "日" counts."""

    plain_days: str = PLAIN_CALENDAR
    years: frozenset[int] = frozenset()
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    provisional_years: frozenset[int] = frozenset()
    note: str = ""
    sources: tuple[tuple[int, str], ...] = field(default=())

    # coverage ---------------------------------------------------------------------------------
    def covers(self, d: date) -> bool:
        return d.year in self.years

    def _require(self, d: date) -> None:
        if d.year not in self.years:
            raise CalendarError(f"工作日历未覆盖 {d.year} 年，请管理员更新日历")

    @property
    def first_year(self) -> int:
        return min(self.years)

    @property
    def last_year(self) -> int:
        return max(self.years)

    # arithmetic -------------------------------------------------------------------------------
    def is_working_day(self, d: date) -> bool:
        """A working day: a weekday that is no public holiday, or a listed make-up working day."""
        self._require(d)
        if d in self.holidays:
            return False
        if d in self.workdays:
            return True
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """``d`` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself is not counted)."""
        if n < 0:
            raise ValueError("n must not be negative")
        d, counted = start, 0
        while counted < n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                counted += 1
        return d

    def add_days(self, start: date, n: int) -> date:
        """The last day of a period of ``n`` plain days from ``start``, by this calendar's rule."""
        if self.plain_days == PLAIN_WORKING:
            return self.add_working_days(start, n)
        if n < 0:
            raise ValueError("n must not be negative")
        return self.next_working_day(start + timedelta(days=n))

    # description ------------------------------------------------------------------------------
    @property
    def plain_days_rule(self) -> str:
        """How a plain "日" counts, in the words a deadline's rule records."""
        return PLAIN_DAYS_RULES[self.plain_days]

    def provisional_between(self, first: date, last: date) -> list[int]:
        """The provisional years a period from ``first`` to ``last`` touches."""
        return [y for y in range(first.year, last.year + 1) if y in self.provisional_years]


# parsing and validation ------------------------------------------------------------------------
def _parse_date(raw: object, where: str, year: int) -> date:
    if not isinstance(raw, str):
        raise CalendarError(f"{where}中的日期必须写成 YYYY-MM-DD 形式的字符串：{raw!r}")
    try:
        if not _ISO_DATE.fullmatch(raw):
            raise ValueError(raw)
        d = date.fromisoformat(raw)
    except ValueError:
        raise CalendarError(f"{where}中的日期无效：{raw!r}（应为 YYYY-MM-DD）") from None
    if d.year != year:
        raise CalendarError(f"{where}中的日期 {raw} 不属于 {year} 年")
    return d


def _parse_dates(value: object, where: str, year: int) -> set[date]:
    if value is None:
        return set()
    if not isinstance(value, list):
        raise CalendarError(f"{where}必须是日期列表")
    return {_parse_date(raw, where, year) for raw in value}


def calendar_from_data(data: object) -> WorkCalendar:
    """A calendar from parsed JSON; :class:`CalendarError` (in Chinese) on anything malformed."""
    if not isinstance(data, dict):
        raise CalendarError("日历文件的最外层必须是一个 JSON 对象")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise CalendarError(f"日历文件含有无法识别的字段：{'、'.join(unknown)}")
    plain = data.get("plain_days", PLAIN_CALENDAR)
    if plain not in PLAIN_DAYS_RULES:
        raise CalendarError('plain_days 只能是 "calendar"（自然日，末日遇节假日顺延）或 "working"（按工作日计算）')
    note = data.get("note", "")
    if not isinstance(note, str):
        raise CalendarError("note 必须是文字")
    years_data = data.get("years")
    if not isinstance(years_data, dict) or not years_data:
        raise CalendarError("日历文件必须在 years 中至少列出一个年份")

    years: set[int] = set()
    holidays: set[date] = set()
    workdays: set[date] = set()
    provisional: set[int] = set()
    sources: list[tuple[int, str]] = []
    for key, entry in years_data.items():
        if not (isinstance(key, str) and len(key) == 4 and key.isascii() and key.isdigit()):
            raise CalendarError(f"年份必须写成四位数字：{key!r}")
        year = int(key)
        if not 2000 <= year <= 2100:
            raise CalendarError(f"年份超出范围：{key}")
        if not isinstance(entry, dict):
            raise CalendarError(f"{year} 年的内容必须是一个 JSON 对象")
        unknown = sorted(set(entry) - _YEAR_KEYS)
        if unknown:
            raise CalendarError(f"{year} 年含有无法识别的字段：{'、'.join(unknown)}")
        if "holidays" not in entry:
            raise CalendarError(f"{year} 年缺少 holidays（节假日）列表")
        year_holidays = _parse_dates(entry.get("holidays"), f"{year} 年的节假日（holidays）", year)
        year_workdays = _parse_dates(entry.get("workdays"), f"{year} 年的调休上班日（workdays）", year)
        both = sorted(year_holidays & year_workdays)
        if both:
            raise CalendarError(f"{both[0].isoformat()} 不能既是节假日又是调休上班日")
        weekday_workdays = sorted(d for d in year_workdays if d.weekday() < 5)
        if weekday_workdays:
            raise CalendarError(
                f"{weekday_workdays[0].isoformat()} 不是周六或周日，不能列为调休上班日"
            )
        flag = entry.get("provisional", False)
        if not isinstance(flag, bool):
            raise CalendarError(f"{year} 年的 provisional 只能是 true 或 false")
        for text_key in ("note", "source"):
            if not isinstance(entry.get(text_key, ""), str):
                raise CalendarError(f"{year} 年的 {text_key} 必须是文字")
        years.add(year)
        holidays |= year_holidays
        workdays |= year_workdays
        if flag:
            provisional.add(year)
        if entry.get("source"):
            sources.append((year, entry["source"]))
    return WorkCalendar(
        plain_days=plain,
        years=frozenset(years),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        provisional_years=frozenset(provisional),
        note=note,
        sources=tuple(sorted(sources)),
    )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise CalendarError(f"日历文件中的字段 {key} 重复出现")
        result[key] = value
    return result


def validate_calendar_text(text: str | bytes) -> WorkCalendar:
    """Check an uploaded calendar; the calendar it describes, or :class:`CalendarError` in Chinese."""
    if isinstance(text, bytes):
        if len(text) > MAX_CALENDAR_BYTES:
            raise CalendarError("日历文件过大")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CalendarError("日历文件必须是 UTF-8 编码的文本") from None
    elif len(text.encode("utf-8")) > MAX_CALENDAR_BYTES:
        raise CalendarError("日历文件过大")
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise CalendarError("日历文件是空的")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise CalendarError(f"日历文件不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列附近有误") from None
    return calendar_from_data(data)


# files -----------------------------------------------------------------------------------------
def calendar_file(settings: Settings) -> Path:
    """The file whose calendar is in force: the administrator's if there is one, else the bundled one."""
    if settings.calendar_path:
        path = Path(settings.calendar_path)
        if path.is_file():
            return path
        log.warning("calendar_path %s does not exist; using the bundled calendar", path)
        return BUNDLED_CALENDAR
    instance = Path(settings.instance_path) / INSTANCE_CALENDAR_NAME
    return instance if instance.is_file() else BUNDLED_CALENDAR


def admin_calendar_path(settings: Settings) -> Path:
    """Where an administrator's calendar is written."""
    if settings.calendar_path:
        return Path(settings.calendar_path)
    return Path(settings.instance_path) / INSTANCE_CALENDAR_NAME


_cache: dict[str, tuple[tuple[int, int, int], WorkCalendar]] = {}
_cache_lock = threading.Lock()


def load_calendar(settings: Settings) -> WorkCalendar:
    """The calendar in force, read again only when its file changed."""
    path = calendar_file(settings)
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    key = str(path)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        calendar = validate_calendar_text(path.read_bytes())
    except CalendarError as exc:
        raise CalendarError(f"工作日历文件 {path.name} 无效：{exc}") from None
    with _cache_lock:
        _cache[key] = (stamp, calendar)
    return calendar


def save_calendar(settings: Settings, text: str | bytes) -> Path:
    """Validate ``text`` and put it in force, replacing the file atomically; the path written."""
    validate_calendar_text(text)
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    path = admin_calendar_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".calendar-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path
