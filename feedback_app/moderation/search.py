"""Chinese full-text search over comment texts and replies."""
from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select

from feedback_app.intake.models import Reply, Submission


def _like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_clause(dialect: str, q: str) -> ColumnElement[bool]:
    """A WHERE clause matching submissions whose text or replies contain ``q``."""
    pattern = _like_pattern(q)
    in_reply = exists(
        select(Reply.id).where(Reply.submission_id == Submission.id, Reply.body.like(pattern, escape="\\"))
    )
    return or_(Submission.body.like(pattern, escape="\\"), in_reply)
