"""queue indexes and full-text search

Both backends: composite indexes for the staff queue (they are in the models too).

SQLite: two FTS5 tables with the trigram tokenizer over the texts themselves (external content, so the
text is not stored twice): ``submission_fts`` over submission.body and ``reply_fts`` over reply.body,
kept up to date by triggers on every insert, update of the text, and delete.
PostgreSQL: pg_trgm and GIN trigram indexes on submission.body and reply.body.
These search objects are not in the models; ``feedback_app.search.match.include_name`` keeps them
out of the schema comparison.

A later migration that makes SQLite rebuild ``submission`` or ``reply`` (an alembic batch operation
other than adding a column) drops that table's triggers and expression indexes with it, silently: it
must create them again (``SQLITE_TRIGGERS`` and ``QUEUE_INDEXES`` below; for ``submission``, the triggers
of 0009 instead). Should rows have been
written without the triggers, ``INSERT INTO submission_fts(submission_fts) VALUES('rebuild')`` (or
``reply_fts``) indexes the table again. tests/moderation/test_search.py and test_queue.py check both.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

DUE_ORDER = "coalesce(next_due_on, '9999-12-31')"  # as written by moderation.queue.DUE_ORDER

QUEUE_INDEXES = {
    "ix_submission_state_received_at": ["state", "received_at", "id"],
    "ix_submission_unit_id_received_at": ["unit_id", "received_at", "id"],
    "ix_submission_unit_id_state_received_at": ["unit_id", "state", "received_at", "id"],
    "ix_submission_due_order": [sa.text(DUE_ORDER), "id"],
    "ix_submission_state_due_order": ["state", sa.text(DUE_ORDER), "id"],
    "ix_submission_unit_id_due_order": ["unit_id", sa.text(DUE_ORDER), "id"],
    "ix_submission_state_filters": ["state", "kind", "channel", "item_number", "unit_id", "next_due_on",
                                    "received_at", "id"],
}

FTS_TABLES = ("submission", "reply")  # each indexed as <table>_fts over <table>.body, rowid = <table>.id


def _triggers(table: str) -> dict[str, str]:
    fts = f"{table}_fts"
    delete_old = f"INSERT INTO {fts}({fts}, rowid, body) VALUES ('delete', old.id, old.body);"
    insert_new = f"INSERT INTO {fts}(rowid, body) VALUES (new.id, new.body);"
    return {
        f"{fts}_insert": f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {insert_new} END",
        f"{fts}_update": (f"CREATE TRIGGER {fts}_update AFTER UPDATE OF id, body ON {table} "
                          f"BEGIN {delete_old} {insert_new} END"),
        f"{fts}_delete": f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {delete_old} END",
    }


SQLITE_TRIGGERS = {name: ddl for table in FTS_TABLES for name, ddl in _triggers(table).items()}

PG_TRGM_INDEXES = {
    "ix_submission_body_trgm": ("submission", "body"),
    "ix_reply_body_trgm": ("reply", "body"),
}


def upgrade() -> None:
    for name, columns in QUEUE_INDEXES.items():
        op.create_index(name, "submission", columns)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in FTS_TABLES:
            op.execute(f"CREATE VIRTUAL TABLE {table}_fts USING fts5(body, content='{table}', "
                       "content_rowid='id', tokenize='trigram')")
            op.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")
        for ddl in SQLITE_TRIGGERS.values():
            op.execute(ddl)
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, (table, col) in PG_TRGM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {table} USING gin ({col} gin_trgm_ops)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in FTS_TABLES:
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    elif dialect == "postgresql":
        for name in PG_TRGM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for name in QUEUE_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")  # a rebuilt table may have lost the expression ones
