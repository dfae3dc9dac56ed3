"""channel facts, the inbound mailbox, mailbox health, publication

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import feedback_app.core.database

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_facts', sa.Text(), nullable=True))

    op.create_table('inbound_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('message_id', sa.String(length=998), nullable=True),
    sa.Column('sender', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=500), nullable=True),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('received_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('flagged_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('stored', 'ingested', 'quarantined', 'released')", name=op.f('ck_inbound_message_status')),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_inbound_message_submission_id_submission'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_message')),
    sa.UniqueConstraint('mailbox', 'uidvalidity', 'uid', 'sha256', name=op.f('uq_inbound_message_mailbox'))
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_message_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_message_submission_id'), ['submission_id'], unique=False)

    op.create_table('mailbox_state',
    sa.Column('mailbox', sa.String(length=200), nullable=False),
    sa.Column('last_attempt_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failing_since', feedback_app.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('mailbox', name=op.f('pk_mailbox_state'))
    )

    op.create_table('publication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('reply_text', sa.Text(), nullable=True),
    sa.Column('published_by_id', sa.Integer(), nullable=False),
    sa.Column('published_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['published_by_id'], ['staff_user.id'], name=op.f('fk_publication_published_by_id_staff_user')),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_publication_submission_id_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publication')),
    sa.UniqueConstraint('submission_id', name=op.f('uq_publication_submission_id'))
    )


def downgrade() -> None:
    op.drop_table('publication')
    op.drop_table('mailbox_state')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_message_submission_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_status'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_sha256'))
    op.drop_table('inbound_message')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_column('channel_facts')
