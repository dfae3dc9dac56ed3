"""What the comment form needs of its bulletin, and its blank page, kept in memory.

Citizens open the form far more often than bulletins change. A blank form differs between two
visitors only in its two tokens (the CSRF token and the one-time form token), so it is rendered once
per bulletin and preselected item with a marker in place of each token, and every GET fills them in.
The facts a POST needs (the bulletin's id and item numbers) are kept beside it, so that a valid
comment reads nothing before it writes.

Like the bulletin page, both are looked at again after ``page_cache_seconds``; a bulletin whose text
changed (re-imported under the same slug) is rendered anew. Per process, at most one entry per
bulletin and item.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from feedback_app import current
from feedback_app.bulletin.service import get_bulletin
from feedback_app.core.models import Bulletin
from feedback_app.web.transaction import get_session

WHOLE = (0, "整改工作整体")

# Markers that no bulletin text or label can contain: new ones each time the process starts.
CSRF_MARK = f"csrf{secrets.token_hex(12)}"
TOKEN_MARK = f"token{secrets.token_hex(12)}"


@dataclass(frozen=True)
class FormFacts:
    slug: str
    bulletin_id: int
    version: str  # the bulletin text's SHA-256: its pages are rendered again when it changes
    item_choices: tuple[tuple[int, str], ...]
    checked_at: float

    @property
    def item_numbers(self) -> frozenset[int]:
        return frozenset(value for value, _label in self.item_choices)


def _cache() -> dict:
    return current_app.extensions.setdefault("feedback_form_cache", {"facts": {}, "pages": {}})


def _facts_of(bulletin: Bulletin) -> FormFacts:
    choices = (WHOLE, *((i.number, f"第{i.number}项：{i.title}") for i in bulletin.items))
    return FormFacts(bulletin.slug, bulletin.id, bulletin.source_sha256, choices, time.monotonic())


def form_facts(slug: str) -> FormFacts | None:
    """The bulletin's facts for its form; None when there is no such bulletin."""
    facts_by_slug = _cache()["facts"]
    facts = facts_by_slug.get(slug)
    ttl = current.settings().page_cache_seconds
    if facts is None or time.monotonic() - facts.checked_at >= ttl:
        bulletin = get_bulletin(get_session(), slug)
        if bulletin is None:
            facts_by_slug.pop(slug, None)
            return None
        facts = _facts_of(bulletin)
        facts_by_slug[slug] = facts
        if bulletin.contact_phone:  # the number the page for a database that cannot save gives
            current_app.extensions["office_phone"] = bulletin.contact_phone
    return facts


def blank_page(facts: FormFacts, item: int | None,
               render: Callable[[Bulletin, int | None], str]) -> str | None:
    """The blank form preselecting ``item`` (a number of the bulletin or None), tokens still marked.

    ``render(bulletin, item)`` draws it with ``CSRF_MARK`` and ``TOKEN_MARK`` as the tokens' values.
    None when the bulletin is gone.
    """
    pages = _cache()["pages"]
    key = (facts.slug, item)
    cached = pages.get(key)
    if cached is None or cached[0] != facts.version:
        bulletin = get_bulletin(get_session(), facts.slug)
        if bulletin is None:
            return None
        cached = (bulletin.source_sha256, render(bulletin, item))
        if bulletin.source_sha256 == facts.version:  # else the facts are older: keep nothing yet
            pages[key] = cached
    return cached[1]


def fill(page: str, csrf_token: str | None, form_token: str) -> str:
    return page.replace(CSRF_MARK, csrf_token or "").replace(TOKEN_MARK, form_token)
