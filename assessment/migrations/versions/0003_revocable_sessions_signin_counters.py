"""revocable sessions (users.session_epoch) and atomic sign-in counters

Revision ID: 0003_sessions_counters
Revises: 0002_calibration_runs
Create Date: 2026-11-26 12:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003_sessions_counters'
down_revision = '0002_calibration_runs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cookies carry "<id>" without a generation: they stop working, once.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0',
                                      nullable=False))
    op.create_table('signin_counters',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('wait_s', sa.Float(), nullable=False),
    sa.Column('blocked_until', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_signin_counters'))
    )
    with op.batch_alter_table('signin_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_counters_expires_at'), ['expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signin_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_counters_expires_at'))
    op.drop_table('signin_counters')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
