"""The plugins' notification outbox (issue 15, goal 9): a row per hook owed (session started,
paused, resumed, submitted, reviewed, any state change), written in the transaction of the change
and delivered by a job after it commits, so no outside plugin runs inside a write transaction.

Revision ID: fo01_hook_calls
Revises: cc0001_console_version
Create Date: 2026-11-27 00:10:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'fo01_hook_calls'
down_revision = 'cc0001_console_version'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proctoring_hook_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('hook', sa.String(length=64), nullable=False),
    sa.Column('arguments', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('done_at', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['session_id'], ['proctoring_sessions.id'],
                            name=op.f('fk_proctoring_hook_calls_session_id_proctoring_sessions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proctoring_hook_calls'))
    )
    with op.batch_alter_table('proctoring_hook_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proctoring_hook_calls_session_id'), ['session_id'],
                              unique=False)
        batch_op.create_index('ix_proctoring_hook_calls_state_queued', ['state', 'queued_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('proctoring_hook_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_proctoring_hook_calls_state_queued')
        batch_op.drop_index(batch_op.f('ix_proctoring_hook_calls_session_id'))
    op.drop_table('proctoring_hook_calls')
