"""SQLite: new comment texts reach the full-text indexes in batches (migration 0009).

Indexing one text per transaction writes a new segment to each of the two FTS5 indexes: about a third
of the pages a comment writes, under the write lock that every other comment waits for. So an insert
only records the row's id in ``submission_search_pending``, and every ``BATCH``-th submission leaves
a job (``core.database.after_commit``) that indexes whatever is pending, in one transaction of its own, once the
citizen's response has gone out. Searches read the pending texts themselves
(``search.pending_matches``): a comment is found the moment it is stored, indexed or not.

The pairs index is fed the tokens computed here, in Python; its triggers (0008, 0009) compute the same
tokens in SQL to take a text out again. ``bigram_tokens`` must give exactly what ``sqlite_bigrams``
gives, token for token, or a changed text would leave its old pairs behind
(tests/moderation/test_search_backlog.py compares the two).
"""
from __future__ import annotations

import logging

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PENDING = "submission_search_pending"
BATCH = 128  # a batch is due when a new submission's id is a multiple of this
CHUNK = 1000  # texts indexed per statement at most
JOB_MOST = 8 * CHUNK  # texts indexed per job at most
ALARM_BATCHES = 4  # /healthz raises an alarm when this many batches' worth of texts wait

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # SQLite's lower()

_PENDING_TEXTS = text(f"SELECT s.id, s.body FROM {PENDING} AS p JOIN submission AS s ON s.id = p.id "
                      "ORDER BY p.id LIMIT :n")
_INDEX_TRIGRAMS = text("INSERT INTO submission_fts(rowid, body) VALUES (:id, :body)")
_INDEX_PAIRS = text("INSERT INTO submission_bigram(rowid, grams) VALUES (:id, :grams)")
_DONE = text(f"DELETE FROM {PENDING} WHERE id <= :last")
_COUNT = text(f"SELECT count(*) FROM {PENDING}")


def bigram_tokens(body: str | None) -> str | None:
    """The pairs index's tokens of ``body``, as migration 0008's SQL writes them: for each character,
    the hex of it and its successor, then of it alone (ASCII letters lowercased), space-separated."""
    if body is None:
        return None
    body = body.split("\0", 1)[0].translate(_ASCII_LOWER)  # SQLite's length() ends at a NUL
    if not body:
        return None
    chars = [c.encode().hex().upper() for c in body]  # a pair's hex is its two characters' hex
    return " ".join(f"{a}{b} {a}" for a, b in zip(chars, [*chars[1:], ""], strict=False))


def due(submission_id: int) -> bool:
    return submission_id % BATCH == 0


def is_kept(connection: Connection) -> bool:
    """Whether this database keeps a backlog (SQLite, from migration 0009 on)."""
    return connection.dialect.name == "sqlite"


def index_pending(connection: Connection, limit: int = CHUNK) -> int:
    """Index up to ``limit`` pending texts, oldest first, in the caller's transaction; how many."""
    rows = connection.execute(_PENDING_TEXTS, {"n": limit}).all()
    if not rows:
        return 0
    connection.execute(_INDEX_TRIGRAMS, [{"id": id_, "body": body} for id_, body in rows])
    connection.execute(_INDEX_PAIRS, [{"id": id_, "grams": bigram_tokens(body)} for id_, body in rows])
    connection.execute(_DONE, {"last": rows[-1][0]})
    return len(rows)


def index_backlog(session: Session, most: int = JOB_MOST) -> int:
    """Index the pending texts, oldest first and at most ``most`` of them, in the session's transaction
    (a job for ``core.database.after_commit``): after an outage a backlog is worked off a job at a time, never in
    one long hold of the write lock."""
    total = 0
    while total < most and (done := index_pending(session.connection(), min(CHUNK, most - total))):
        total += done
    if total:
        log.debug("search index: %d new texts indexed", total)
    return total


def pending_count(connection: Connection) -> int:
    return connection.scalar(_COUNT) if is_kept(connection) else 0


def alarm(connection: Connection) -> str | None:
    """An alarm for ``/healthz`` when the batches no longer keep up (a job that fails every time):
    searches still find every text, but read more of them one by one."""
    waiting = pending_count(connection)
    if waiting > ALARM_BATCHES * BATCH:
        return f"全文检索有 {waiting} 条新意见尚未编入索引，请查看日志中的批量索引错误"
    return None
