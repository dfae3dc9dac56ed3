"""a message over the size limit is kept whole, in the attachment store

Until now only the header block of such a message was kept (in ``raw``), and staff were sent to the
mailbox for the rest. Now the whole message is written to the attachment store; its row keeps the
header block in ``raw`` as before, and names the file (``original_name``) and its size
(``original_size``, which may exceed what ``size`` can hold). ``sha256`` is that of the whole message,
so the same message read again is recognised as it is for any other.

Both columns are nullable, added and dropped in place (SQLite 3.35 and later drop a column without
rebuilding the table, which holds every raw message). The index answers "which row does this file
belong to" when a run tidies after a crash. A downgrade forgets which file holds which message; the
files stay in the store.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('original_name', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('original_size', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_inbound_message_original_name'), ['original_name'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_message_original_name', table_name='inbound_message')
    op.drop_column('inbound_message', 'original_size')
    op.drop_column('inbound_message', 'original_name')
