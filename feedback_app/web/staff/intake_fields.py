"""How a clerk may type the day, the time and a count: any of the ways people write them down."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, time, timedelta

OLDEST_DAYS = 366  # a call, letter or visit logged more than a year late is a typing error
YES, NO = "yes", "no"

_DAY_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)
_CLOCK = re.compile(r"^(\d{1,2})[:点时](\d{1,2})分?$")


def parse_day(text: str | None) -> date | None:
    """2025-04-03, 2025/4/3, 2025.4.3 or 2025年4月3日 (full-width digits too); None otherwise."""
    value = "".join(unicodedata.normalize("NFKC", text or "").split())
    for pattern in _DAY_PATTERNS:
        match = pattern.match(value)
        if match:
            try:
                return date(*(int(g) for g in match.groups()))
            except ValueError:
                return None
    return None


def parse_clock(text: str | None) -> time | None:
    """09:15, 9:15, 9点15分 (full-width too); None otherwise."""
    value = "".join(unicodedata.normalize("NFKC", text or "").split())
    match = _CLOCK.match(value)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def parse_count(text: str | None) -> int | None:
    value = unicodedata.normalize("NFKC", text or "").strip()
    return int(value) if value.isdigit() else None


def dates_since(today: date) -> date:
    return today - timedelta(days=OLDEST_DAYS)
