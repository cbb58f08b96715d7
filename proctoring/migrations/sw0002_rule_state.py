"""The event rules' running state on the session row, so an event batch is judged without
reading the session's history (issue 15, goal 11). NULL for existing sessions: rebuilt from
their events on first use.

Revision ID: sw0002_rule_state
Revises: p0002_identity_attempts
Create Date: 2026-11-26 18:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'sw0002_rule_state'
down_revision = 'p0002_identity_attempts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proctoring_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule_state', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('proctoring_sessions', schema=None) as batch_op:
        batch_op.drop_column('rule_state')
