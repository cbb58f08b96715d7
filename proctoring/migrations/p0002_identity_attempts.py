"""Identity submission attempts, counted for the per-session rate limit (issue 9, finding 1).

Revision ID: p0002_identity_attempts
Revises: p0001_proctoring
Create Date: 2026-11-26 12:30:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'p0002_identity_attempts'
down_revision = 'p0001_proctoring'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'proctoring_identity_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('at', microcred.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['proctoring_sessions.id'],
                                name=op.f('fk_proctoring_identity_attempts_session_id_proctoring_sessions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_proctoring_identity_attempts')),
    )
    with op.batch_alter_table('proctoring_identity_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_proctoring_identity_attempts_session_at',
                              ['session_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('proctoring_identity_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_proctoring_identity_attempts_session_at')
    op.drop_table('proctoring_identity_attempts')
