"""calibration estimates keep the run's classical p and corrected item-total r, so an item's
statistics history shows them per calibration

Revision ID: 0007_run_ctt
Revises: jobs_0001_run_progress
Create Date: 2026-11-26 16:35:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_run_ctt'
down_revision = 'jobs_0001_run_progress'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs stored before this have no classical statistics: they stay empty (None), not guessed.
    with op.batch_alter_table('calibration_estimates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('p', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('corrected_r', sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calibration_estimates', schema=None) as batch_op:
        batch_op.drop_column('corrected_r')
        batch_op.drop_column('p')
