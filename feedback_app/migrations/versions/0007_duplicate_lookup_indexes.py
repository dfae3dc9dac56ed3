"""indexes for the duplicate proposal: the same phone, the same email, the same text

``moderation.duplicates`` looks for earlier submissions with the same E.164 phone, the same email
(case-insensitively) or the same ``body_hash`` over the whole table; without these indexes each look-up
read every row. Most submissions carry no phone or email, so those two indexes are partial
(``WHERE ... IS NOT NULL``); the email index is on ``lower(email)``, the expression the look-up compares.

An expression index is dropped silently when SQLite rebuilds the table (see 0004): a later batch
operation that recreates ``submission`` must create ``ix_submission_email_lower`` again.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _where(condition: str) -> dict:
    # the same partial condition on both backends (the models declare it the same way)
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index('ix_submission_phone', ['phone'], unique=False, **_where('phone IS NOT NULL'))
        batch_op.create_index('ix_submission_email_lower', [sa.text('lower(email)')], unique=False,
                              **_where('email IS NOT NULL'))
        batch_op.create_index('ix_submission_body_hash', ['body_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index('ix_submission_body_hash')
        batch_op.drop_index('ix_submission_email_lower')
        batch_op.drop_index('ix_submission_phone')
