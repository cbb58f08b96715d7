"""A change counter on the session row for the console's delta poll (issue 15, goal 7): every
write that changes what the console shows of a session and is not already a column the poll
reads (a flag, a snapshot, an identity check, a transition) adds one, in the writer's own
transaction, on the row it already holds; an unchanged console is then found from the session
rows alone, without building the view.

Revision ID: cc0001_console_version
Revises: sw0002_rule_state
Create Date: 2026-11-26 21:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'cc0001_console_version'
down_revision = 'sw0002_rule_state'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('proctoring_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('console_version', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('proctoring_sessions', schema=None) as batch_op:
        batch_op.drop_column('console_version')
