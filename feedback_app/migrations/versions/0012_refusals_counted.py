"""refused requests (403, 409, 429) are counted per minute, actor, status and route

One row per (minute, actor, status, route), with how many refusals it counts and the first and last of
them: ``audit.refusals`` adds one to the row's count (an insert that, on conflict with the primary key,
updates), so a flood of refusals by one client changes one row a minute instead of adding a row each.
The primary key starts with the minute, which also serves "the newest minutes first".

A downgrade drops the counts.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

import feedback_app.core.database

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refusal_count',
    sa.Column('minute', feedback_app.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('status', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', feedback_app.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('minute', 'actor', 'status', 'route', name=op.f('pk_refusal_count'))
    )


def downgrade() -> None:
    op.drop_table('refusal_count')
