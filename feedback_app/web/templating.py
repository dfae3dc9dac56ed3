"""What every template may use: filters for dates and phone links, the words for the domain's values,
the staff home and the CSRF token. Registered by ``init_templates``; a page's own data comes from its view."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from flask import Flask, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from feedback_app import current
from feedback_app.core.enums import Role, State
from feedback_app.core.text import BIDI, CONTROLS, UNDECODABLE, shown
from feedback_app.core.words import (
    CHANNEL_LABELS,
    DEADLINE_KIND_LABELS,
    KIND_LABELS,
    PUBLIC_WORDS,
    REJECT_REASONS,
    REPLY_BY_LABELS,
    ROLE_LABELS,
    STATE_WORDS,
)


def cn_date(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def local_dt(value: datetime) -> str:
    local = value.astimezone(current.settings().tz)
    return f"{cn_date(local)} {local:%H:%M}"


def cn_local_date(value: datetime) -> str:
    """The day of a moment in the office's time zone, in Chinese."""
    return cn_date(value.astimezone(current.settings().tz))


def tel_uri(value: str) -> str:
    return re.sub(r"[^0-9+]", "", value)


def action_words(action: str) -> str:
    return PUBLIC_WORDS.get(action, action)


LABELS = {
    "state": {s.value: STATE_WORDS[s] for s in State},
    "kind": {k.value: v for k, v in KIND_LABELS.items()},
    "channel": {c.value: v for c, v in CHANNEL_LABELS.items()},
    "reply_by": {r.value: v for r, v in REPLY_BY_LABELS.items()},
    "role": {r.value: v for r, v in ROLE_LABELS.items()},
    "deadline": DEADLINE_KIND_LABELS,
    "reject": REJECT_REASONS,
}


def labels() -> dict[str, dict[str, str]]:
    return LABELS


def role_label(role: str) -> str:
    try:
        return ROLE_LABELS[Role(role)]
    except ValueError:
        return role


def staff_home() -> str:
    """The staff home (the moderation queue)."""
    return url_for("staff.queue")


def finalize(value: Any) -> Any:
    """Every value a template prints: direction controls written out (``core.text.shown``), so that no
    text on a page can show itself in another order than it was stored. What a form shows again in its
    own fields goes through ``typed`` first."""
    if isinstance(value, Markup):
        return Markup(shown(str(value)))
    return shown(value) if isinstance(value, str) else value


def typed(value: Any, line: bool = False) -> Markup:
    """What was typed in a field, escaped, to show in that field again: a control character (refused,
    to be deleted) as U+FFFD, which a browser shows for a NUL anyway and the message names. A direction
    control in free text (kept) becomes a character reference, which the browser reads back as the
    character, so the text is sent again as typed; in a one-line field (``line``, where it is refused)
    it is written out, to be deleted."""
    text = CONTROLS.sub(UNDECODABLE, "" if value is None else str(value))
    if line:
        return Markup(escape(shown(text)))
    return Markup(BIDI.sub(lambda m: f"&#x{ord(m.group()):X};", str(escape(text))))


def init_templates(app: Flask) -> None:
    app.jinja_env.finalize = finalize  # templates compile lazily, at their first render: after this
    for fn in (cn_date, local_dt, cn_local_date, tel_uri, action_words, typed):
        app.add_template_filter(fn)
    helpers: dict[str, Any] = {"labels": labels, "csrf_token": generate_csrf, "role_label": role_label,
                               "staff_home": staff_home}
    for name, fn in helpers.items():
        app.add_template_global(fn, name)
