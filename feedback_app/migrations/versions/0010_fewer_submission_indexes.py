"""three submission indexes fewer: each one was the first columns of another

Every comment writes an entry into every index of ``submission``, under the write lock. Three of them
answered nothing that a wider one does not answer as well, from its first columns:

- ``ix_submission_state``: ``ix_submission_state_received_at``, ``_state_due_order``, ``_state_filters``;
- ``ix_submission_unit_id``: ``ix_submission_unit_id_received_at`` and the other two by unit (also what
  the foreign key's checks use);
- ``ix_submission_body_hash``: the repeat check's index, now (body_hash, client_hash) instead of
  (client_hash, body_hash), serves the duplicate proposal's look-up by text as well.

Plain DROP/CREATE INDEX, no batch operation: SQLite would rebuild the table and lose its triggers.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_submission_state", table_name="submission")
    op.drop_index("ix_submission_unit_id", table_name="submission")
    op.drop_index("ix_submission_body_hash", table_name="submission")
    op.drop_index("ix_submission_repeat", table_name="submission")
    op.create_index("ix_submission_repeat", "submission", ["body_hash", "client_hash"])


def downgrade() -> None:
    op.drop_index("ix_submission_repeat", table_name="submission")
    op.create_index("ix_submission_repeat", "submission", ["client_hash", "body_hash"])
    op.create_index("ix_submission_body_hash", "submission", ["body_hash"])
    op.create_index("ix_submission_unit_id", "submission", ["unit_id"])
    op.create_index("ix_submission_state", "submission", ["state"])
