"""calibration runs run as background jobs: job state, progress, error, start and end

Revision ID: jobs_0001_run_progress
Revises: 0005_rescore
Create Date: 2026-11-26 16:05:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'jobs_0001_run_progress'
down_revision = '0005_rescore'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Runs stored before this calibrated inside the request: they are finished.
    with op.batch_alter_table('calibration_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_state', sa.String(length=20),
                                      server_default='finished', nullable=False))
        batch_op.add_column(sa.Column('progress', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('error', sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column('started_at', microcred.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('finished_at', microcred.db.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('calibration_runs', schema=None) as batch_op:
        batch_op.drop_column('finished_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('error')
        batch_op.drop_column('progress')
        batch_op.drop_column('job_state')
