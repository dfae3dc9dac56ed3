"""SQLite: a new comment text reaches the full-text indexes in batches

Until now an insert into ``submission`` also inserted its text into ``submission_fts`` (0004) and
``submission_bigram`` (0008), by triggers, inside the citizen's transaction: about a third of the pages
a comment writes, under the write lock every other comment waits for. Now the insert only records the
row's id in ``submission_search_pending``; ``search.backlog`` indexes the pending texts in
batches, each in one transaction, and a search reads the few pending texts directly, so a comment is
found the moment it is stored, as before.

A change of a text takes the old one out of both indexes (if it was in them) and marks the row pending
again; a delete takes it out of the indexes or of the pending list. One trigger per event, so that the
order of the statements is fixed. Replies keep their triggers: they are few.

Should the indexes be rebuilt (``INSERT INTO submission_fts(submission_fts) VALUES('rebuild')``), the
pending list must be emptied in the same transaction: rebuild reads every text, pending or not.
A later migration that makes SQLite rebuild ``submission`` must create ``SQLITE_TRIGGERS`` below again
(not the submission triggers of 0004 and 0008, which would index every text twice).

PostgreSQL: nothing changes (its GIN indexes take new rows without the cost of a whole segment).

Revision ID: 0009
Revises: 0008
"""
import importlib

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PENDING = "submission_search_pending"
INDEXED = f"NOT EXISTS (SELECT 1 FROM {PENDING} WHERE id = old.id)"


def _earlier(name: str):
    return importlib.import_module(f"feedback_app.migrations.versions.{name}")


def _bigrams(text: str) -> str:
    return _earlier("0008_short_query_search").sqlite_bigrams(text)


def _unindex_old() -> str:
    """Statements taking ``old``'s text out of both indexes, if it is in them."""
    return (f"INSERT INTO submission_fts(submission_fts, rowid, body) SELECT 'delete', old.id, old.body "
            f"WHERE {INDEXED}; "
            f"INSERT INTO submission_bigram(submission_bigram, rowid, grams) "
            f"SELECT 'delete', old.id, {_bigrams('old.body')} WHERE {INDEXED};")


def _triggers() -> dict[str, str]:
    return {
        "submission_search_insert": (
            f"CREATE TRIGGER submission_search_insert AFTER INSERT ON submission "
            f"BEGIN INSERT INTO {PENDING}(id) VALUES (new.id); END"),
        "submission_search_update": (
            f"CREATE TRIGGER submission_search_update AFTER UPDATE OF id, body ON submission "
            f"BEGIN {_unindex_old()} DELETE FROM {PENDING} WHERE id = old.id; "
            f"INSERT INTO {PENDING}(id) VALUES (new.id); END"),
        "submission_search_delete": (
            f"CREATE TRIGGER submission_search_delete AFTER DELETE ON submission "
            f"BEGIN {_unindex_old()} DELETE FROM {PENDING} WHERE id = old.id; END"),
    }


SQLITE_TRIGGERS = _triggers()


def _replaced() -> dict[str, str]:
    """The submission triggers of 0004 and 0008 that these replace: name -> DDL."""
    triggers = {**_earlier("0004_queue_indexes_and_search").SQLITE_TRIGGERS,
                **_earlier("0008_short_query_search").SQLITE_TRIGGERS}
    return {name: ddl for name, ddl in triggers.items() if name.startswith("submission_")}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE {PENDING} (id INTEGER NOT NULL PRIMARY KEY)")
    for name in _replaced():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for ddl in SQLITE_TRIGGERS.values():
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    pending = f"FROM submission AS s JOIN {PENDING} AS p ON p.id = s.id"
    op.execute(f"INSERT INTO submission_fts(rowid, body) SELECT s.id, s.body {pending}")
    op.execute(f"INSERT INTO submission_bigram(rowid, grams) SELECT s.id, {_bigrams('s.body')} {pending}")
    for name in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(f"DROP TABLE {PENDING}")
    for ddl in _replaced().values():
        op.execute(ddl)
