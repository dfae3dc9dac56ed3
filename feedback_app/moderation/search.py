"""Chinese full-text search over comment texts and replies.

SQLite: ``submission_fts`` and ``reply_fts`` are FTS5 tables with the trigram tokenizer over
``submission.body`` and ``reply.body`` (external content: rowid = the row's id, the text is not stored
twice). Triggers created by migration 0004 keep them up to date on every insert, change of the text
and delete, so no write path of the application has to remember them. A trigram index answers queries
of three or more characters exactly; it cannot answer one or two characters (and on SQLite 3.40 a LIKE
of one or two non-ASCII characters against it wrongly finds nothing), so those are matched with LIKE
against the base tables.

PostgreSQL: GIN ``gin_trgm_ops`` indexes on ``submission.body`` and ``reply.body`` (pg_trgm) serve
``LIKE '%q%'`` for three or more characters; shorter queries are checked row by row.

Both backends match Latin letters regardless of case and treat every character of the query literally
(FTS5 operators, quotes, LIKE wildcards).
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import ColumnElement, any_, column, exists, func, literal_column, or_, select, table

from feedback_app.intake.models import Reply, Submission

MIN_INDEXED_CHARS = 3  # a trigram index finds nothing shorter

FTS_TABLES = ("submission_fts", "reply_fts")
TRGM_INDEXES = frozenset({"ix_submission_body_trgm", "ix_reply_body_trgm"})

_submission_fts = table("submission_fts", column("rowid"))
_reply_fts = table("reply_fts", column("rowid"))


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's filter: the search objects exist in the migration only, not in the models."""
    if type_ == "table" and name is not None:
        return not any(name == fts or name.startswith(fts + "_") for fts in FTS_TABLES)
    if type_ == "index":
        return name not in TRGM_INDEXES
    return True


def fts_phrase(q: str) -> str:
    """``q`` as one FTS5 string: its operators, quotes and parentheses lose their meaning."""
    return '"' + q.replace('"', '""') + '"'


def _like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(dialect: str, q: str) -> Callable[[ColumnElement[str]], ColumnElement[bool]]:
    """``col`` contains ``q``, Latin letters in either case.

    When ``q`` has no cased letters a plain substring test finds the same rows as a case-blind one, and
    is faster: SQLite's instr() than its LIKE (about a third), PostgreSQL's LIKE than its ILIKE (which
    lowercases every text it checks: several times).
    """
    caseless = q.lower() == q.upper()
    if dialect == "sqlite" and caseless:
        return lambda col: func.instr(col, q) > 0
    pattern = _like_pattern(q)
    if dialect == "postgresql" and not caseless:
        return lambda col: col.ilike(pattern, escape="\\")
    return lambda col: col.like(pattern, escape="\\")  # SQLite's LIKE ignores the case of ASCII letters


def search_clause(dialect: str, q: str) -> ColumnElement[bool]:
    """A WHERE clause matching submissions whose text or replies contain ``q``."""
    if dialect == "sqlite" and len(q) >= MIN_INDEXED_CHARS:
        phrase = fts_phrase(q)
        in_body = select(_submission_fts.c.rowid).where(literal_column("submission_fts").op("MATCH")(phrase))
        replies = select(_reply_fts.c.rowid).where(literal_column("reply_fts").op("MATCH")(phrase))
        in_reply = select(Reply.submission_id).where(Reply.id.in_(replies))
        return Submission.id.in_(in_body.union_all(in_reply))
    contains = _contains(dialect, q)
    if dialect == "postgresql" and len(q) >= MIN_INDEXED_CHARS:
        # The replies' matches become an array (an InitPlan, found through the reply index), so that the
        # planner may either OR two index scans (few matches) or walk the queue's order and filter (many).
        replied = select(Reply.submission_id).where(contains(Reply.body)).scalar_subquery()
        return or_(contains(Submission.body), Submission.id == any_(func.array(replied)))
    # Nothing indexes one or two characters: each submission's text is checked in turn.
    if dialect == "postgresql":
        # the replies' matches once, as a hashed set: an EXISTS per row would make PostgreSQL cost the
        # counts in the millions, and compile them with JIT for longer than they take to run
        in_reply = Submission.id.in_(select(Reply.submission_id).where(contains(Reply.body)))
    else:
        # SQLite looks up the replies of the rows whose text does not match, so a page that walks the
        # queue's order stops as soon as it is full
        in_reply = exists().where(Reply.submission_id == Submission.id, contains(Reply.body))
    return or_(contains(Submission.body), in_reply)
