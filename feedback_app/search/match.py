"""Chinese full-text search over comment texts and replies.

Three or more characters: an index of trigrams. SQLite: ``submission_fts`` and ``reply_fts`` are FTS5
tables with the trigram tokenizer over ``submission.body`` and ``reply.body`` (external content:
rowid = the row's id, the text is not stored twice), kept up to date by triggers (migration 0004); a
new comment's text waits in a short list until a batch indexes it (``search_backlog``, migration 0009),
and is read directly until then (``pending_matches``).
PostgreSQL: GIN ``gin_trgm_ops`` indexes on both texts (pg_trgm) serve ``LIKE '%q%'``.

One or two characters: a trigram index cannot answer them (and on SQLite 3.40 a LIKE of one or two
non-ASCII characters against it wrongly finds nothing), so each text is also indexed as its
characters and its overlapping character pairs (migration 0008), lowercased, each as the hex of its
UTF-8 bytes: a query of one or two characters is one such token. SQLite: contentless FTS5 tables
``submission_bigram`` and ``reply_bigram`` kept by triggers; PostgreSQL: GIN indexes on
``feedback_bigrams(body)``, a tsvector of those tokens. The query's token is computed by the
database with the same lower() as the index, so both sides fold case alike.

Both backends match Latin letters regardless of case (SQLite: ASCII only, as its LIKE; PostgreSQL:
as ILIKE) and treat every character of the query literally (FTS5 operators, quotes, LIKE wildcards).
"""
from __future__ import annotations

from collections.abc import Callable
from math import isqrt
from typing import TYPE_CHECKING, Literal, overload

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    SQLColumnExpression,
    String,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from feedback_app.core.models import Reply, Submission
from feedback_app.search.backlog import PENDING

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

MIN_INDEXED_CHARS = 3  # a trigram index finds nothing shorter; shorter queries use the pairs

FTS_TABLES = ("submission_fts", "reply_fts", "submission_bigram", "reply_bigram")
SQLITE_TABLES = frozenset({PENDING})
TRGM_INDEXES = frozenset({"ix_submission_body_trgm", "ix_reply_body_trgm",
                          "ix_submission_body_bigram", "ix_reply_body_bigram"})


def include_name(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """Alembic's filter: the search objects exist in the migration only, not in the models."""
    if type_ == "table" and name is not None:
        return name not in SQLITE_TABLES and not any(name == fts or name.startswith(fts + "_") for fts in FTS_TABLES)
    if type_ == "index":
        return name not in TRGM_INDEXES
    return True


def fts_phrase(q: str) -> str:
    """``q`` as one FTS5 string: its operators, quotes and parentheses lose their meaning."""
    return '"' + q.replace('"', '""') + '"'


def _like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


TextTest = Callable[[SQLColumnExpression[str]], ColumnElement[bool]]  # a test of a text column


def _contains(dialect: str, q: str) -> TextTest:
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


@overload
def _bigram_match(dialect: Literal["sqlite"], q: str) -> Callable[[str], ColumnElement[bool]]: ...
@overload
def _bigram_match(dialect: Literal["postgresql"], q: str) -> TextTest: ...
def _bigram_match(dialect: str, q: str) -> Callable[[str], ColumnElement[bool]] | TextTest:
    """A test of a text's characters and pairs against ``q`` (one or two characters): one token.

    The token is computed by the database, with the lower() of the index. SQLite: the FTS5 query
    ``"<HEX>"`` (hex is plain ASCII: nothing to escape), given a table name. PostgreSQL: the tsquery
    ``'<hex>'`` (``feedback_bigram_query``), given a text column.
    """
    if dialect == "sqlite":
        token = func.hex(func.lower(literal(q, String)))
        query = literal('"', String).concat(token).concat(literal('"', String))
        return lambda fts: literal_column(fts).op("MATCH")(query)
    query = func.feedback_bigram_query(literal(q, String))
    return lambda col: func.feedback_bigrams(col).op("@@")(query)


_pending = table(PENDING, column("id"))


def pending_matches(q: str) -> Select[int]:
    """SQLite: the ids of the texts not yet in the indexes (``search_backlog``) that hold ``q``, each
    text read and tested: at most a batch of them.

    Tested as LIKE tests them, Latin letters in either case for ASCII only; the trigram index also
    folds other letters (É and é, Ａ and ａ). Until its batch has run, such a text is found by the
    query's own spelling of those letters only."""
    pending_text = Submission.__table__.alias("pending_text")
    # ``id IN (pending)``, not a join: SQLite walks the list and fetches each text by id (a join, it
    # would read every text of the table and look each up in the list).
    return select(pending_text.c.id).where(pending_text.c.id.in_(select(_pending.c.id)),
                                           _contains("sqlite", q)(pending_text.c.body))


def _indexed_matches(q: str) -> Select[int]:
    """SQLite: the ids of the indexed submission texts that hold ``q``."""
    if len(q) >= MIN_INDEXED_CHARS:
        match = literal_column("submission_fts").op("MATCH")(fts_phrase(q))
        return select(table("submission_fts", column("rowid")).c.rowid).where(match)
    return select(table("submission_bigram", column("rowid")).c.rowid).where(
        _bigram_match("sqlite", q)("submission_bigram"))


def body_matches(q: str) -> CompoundSelect[int]:
    """SQLite: the ids of all submission texts that hold ``q``, indexed or pending."""
    return union_all(_indexed_matches(q), pending_matches(q))


# How the set of matches meets the rest of the queue's query: the same rows, at very different costs
# depending on how many match. SQLite knows nothing of how many rows a full-text query matches, so
# ``sqlite_plan`` counts them (up to a bound); PostgreSQL's planner estimates them (``pg_plan``).
WALK = "walk"  # walk the queue's order (or the counts' covering index), test each id against the matches
LOOKUP = "lookup"  # fetch each match by id: cost in proportion to the matches, whatever the table's size
PROBE = "probe"  # walk the queue's order and test each row itself: for a page of a query that most rows
# match, where collecting all matches first costs more than the page itself
# SQLite, measured at a million submissions: looking a match up by id costs ~4 µs (a page) or ~2.5 µs
# (the counts); walking ~0.3 µs per row walked plus the set of matches; probing ~0.2 ms per row.
LOOKUP_PAGE_SQUARE = 2  # a page looks its matches up while matches² < 2 × rows (1,400 at a million)
LOOKUP_COUNTS_SHARE = 25  # the counts look them up while fewer than one text in 25 matches
PROBE_SHARE = 6  # a page probes when more than one text in 6 matches


def sqlite_plan(session: Session, q: str, *, counting: bool, may_probe: bool) -> str:
    """WALK, LOOKUP or PROBE for ``q`` on SQLite, from how many texts match (counted up to a bound).

    ``may_probe`` only when the page's filters let SQLite walk an index in the page's order (state,
    unit, cursor): a probe per row of a filter that SQLite reads in another order would be ruinous.
    The count stops at what the choice needs to know: for a page at ``max(id) / PROBE_SHARE`` matches,
    for the counts at ``max(id) / LOOKUP_COUNTS_SHARE``; a few milliseconds, 15 for a phrase in one
    text of eight.
    """
    rows = session.scalar(select(func.max(Submission.id))) or 0
    lookup_max = rows // LOOKUP_COUNTS_SHARE if counting else isqrt(LOOKUP_PAGE_SQUARE * rows)
    bound = (lookup_max if counting else max(rows // PROBE_SHARE, lookup_max)) + 1
    matches = session.scalar(select(func.count()).select_from(body_matches(q).limit(bound).subquery()))
    assert matches is not None  # a count is one row
    if matches <= lookup_max:
        return LOOKUP
    if not counting and may_probe and matches * PROBE_SHARE > rows:
        return PROBE
    return WALK


def pg_match(q: str) -> TextTest:
    """PostgreSQL: ``col`` contains ``q``, as a test its index answers (trigrams, or characters and pairs)."""
    return _contains("postgresql", q) if len(q) >= MIN_INDEXED_CHARS else _bigram_match("postgresql", q)


# A page probes when the estimate² > 16 × rows (4,000 at a million): walking costs ~7 µs per row walked,
# 26 × rows / matches of them; looking the matches up ~8 µs each (measured at a million submissions).
PG_LOOKUP_SQUARE = 16


def pg_plan(session: Session, q: str, *, may_probe: bool) -> str:
    """PROBE or LOOKUP for a page of ``q`` on PostgreSQL, from the planner's estimate of the matches.

    For a phrase in most texts, the set of all matches costs seconds to collect where walking the
    page's order and testing each row with LIKE stops after a few dozen rows; the planner cannot make
    that choice itself, as the two are different queries. ``may_probe`` as for ``sqlite_plan``.
    """
    if not may_probe:
        return LOOKUP
    bind = session.get_bind()
    compiled = select(Submission.id).where(pg_match(q)(Submission.body)).compile(dialect=bind.dialect)
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
    explained = plan.scalar()
    assert explained is not None  # EXPLAIN answers one row
    estimate = explained[0]["Plan"]["Plan Rows"]
    rows = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'submission'::regclass")) or 0
    return PROBE if estimate * estimate > PG_LOOKUP_SQUARE * rows else LOOKUP


def pg_prepare(session: Session) -> None:
    """PostgreSQL, before a search in this transaction: room for exact bitmaps, no JIT compilation.

    With the default 4 MB of work_mem, the bitmap of a phrase in most of a million texts turns lossy
    and every row of a lossy page is checked again, which for the pairs index means computing
    feedback_bigrams() per row: tens of seconds. JIT: the cost of that function (COST 1000) makes
    such plans look expensive enough to compile, which alone takes longer than running them.
    """
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL jit = off"))


def search_clause(dialect: str, q: str, plan: str = WALK) -> ColumnElement[bool]:
    """A WHERE clause matching submissions whose text or replies contain ``q``.

    ``plan`` (see ``sqlite_plan`` and ``pg_plan``) changes how, never what.
    """
    if dialect == "sqlite":
        match: Callable[[str], ColumnElement[bool]]  # a test of an FTS5 table, given its name
        if len(q) >= MIN_INDEXED_CHARS:
            body_fts, reply_fts = "submission_fts", "reply_fts"
            phrase = fts_phrase(q)

            def match(name: str) -> ColumnElement[bool]:
                return literal_column(name).op("MATCH")(phrase)
        else:
            body_fts, reply_fts = "submission_bigram", "reply_bigram"
            match = _bigram_match("sqlite", q)
        body, reply = table(body_fts, column("rowid")), table(reply_fts, column("rowid"))
        if plan == PROBE:
            body_has = exists().where(match(body_fts), body.c.rowid == Submission.id)
            reply_has = exists().where(Reply.submission_id == Submission.id,
                                       exists().where(match(reply_fts), reply.c.rowid == Reply.id))
            return or_(body_has, Submission.id.in_(pending_matches(q)), reply_has)
        in_reply = select(Reply.submission_id).where(Reply.id.in_(select(reply.c.rowid).where(match(reply_fts))))
        matches = union_all(_indexed_matches(q), pending_matches(q), in_reply)
        if plan == LOOKUP:
            return Submission.id.in_(matches)
        # ``id + 0``, not ``id``: otherwise SQLite would fetch every match by id before sorting (half a
        # second for a phrase in one text of eight, at a million submissions). Now it walks the queue's
        # order, or the counts' covering index, and tests each id against the set of matches.
        return (Submission.id + literal_column("0")).in_(matches)
    if dialect == "postgresql":
        if plan == PROBE:
            # A page walking its order tests each row: LIKE on the text, then its replies by id. A
            # scalar subquery, not EXISTS: PostgreSQL would turn an EXISTS into a hashed set of every
            # matching reply (a scan of all replies, ~90 ms) rather than look up the row's few replies.
            contains = _contains(dialect, q)
            replied = (select(func.count()).where(Reply.submission_id == Submission.id, contains(Reply.body))
                       .scalar_subquery())
            return or_(contains(Submission.body), replied > 0)
        test = pg_match(q)
        # One set of ids, each side found through its index. (An OR of the body test with the
        # replies' ids as an array would let a page walk the queue's order for a frequent phrase, but
        # PostgreSQL then tests each row against that array element by element: seconds for the counts.)
        in_body = select(Submission.id).where(test(Submission.body))
        in_reply = select(Reply.submission_id).where(test(Reply.body))
        return Submission.id.in_(in_body.union_all(in_reply))
    # any other database: each text checked in turn
    contains = _contains(dialect, q)
    return or_(contains(Submission.body),
               Submission.id.in_(select(Reply.submission_id).where(contains(Reply.body))))
