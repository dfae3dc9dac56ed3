"""The texts of outgoing mail, from ``templates/email/`` (plain text: nothing is escaped)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from feedback_app.core.config import REPO_ROOT


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(REPO_ROOT / "templates" / "email"), autoescape=False,
                       undefined=StrictUndefined, keep_trailing_newline=True)


def render_mail(name: str, **context: Any) -> str:
    """The text of mail template ``name`` (e.g. ``reply.txt``) with ``context``."""
    return _environment().get_template(name).render(**context)
