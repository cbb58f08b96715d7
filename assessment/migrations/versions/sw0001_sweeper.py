"""The sweeper at scale: an index to find attempts that may have run out, and the attempts it
could not finalize (failures, backoff).

Revision ID: sw0001_sweeper
Revises: ct0001_cut_adoptions
Create Date: 2026-11-26 18:05:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'sw0001_sweeper'
down_revision = 'ct0001_cut_adoptions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.create_index('ix_attempts_status_started', ['status', 'started_at'], unique=False)
    op.create_table(
        'attempt_sweep_failures',
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('failed_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('retry_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'],
                                name=op.f('fk_attempt_sweep_failures_attempt_id_attempts')),
        sa.PrimaryKeyConstraint('attempt_id', name=op.f('pk_attempt_sweep_failures')),
    )


def downgrade() -> None:
    op.drop_table('attempt_sweep_failures')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_status_started')
