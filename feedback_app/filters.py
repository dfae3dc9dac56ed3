"""Template filters: dates in Chinese and in the office's time zone."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask import Flask, current_app


def cn_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def local_dt(value: datetime) -> str:
    local = value.astimezone(current_app.extensions["settings"].tz)
    return f"{cn_date(local)} {local:%H:%M}"


def tel_uri(value: str) -> str:
    return re.sub(r"[^0-9+]", "", value)


def action_words(action: str) -> str:
    from feedback_app.moderation.states import PUBLIC_WORDS

    return PUBLIC_WORDS.get(action, action)


def register_filters(app: Flask) -> None:
    for fn in (cn_date, local_dt, tel_uri, action_words):
        app.add_template_filter(fn)
