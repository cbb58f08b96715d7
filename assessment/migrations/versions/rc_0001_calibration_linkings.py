"""linking constants recorded with a calibration approval: method, A, B with standard errors,
the anchors used and excluded, and whether the estimates were placed on the bank's scale

Revision ID: rc_0001_calibration_linkings
Revises: ss_0001_studies
Create Date: 2026-11-26 18:00:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'rc_0001_calibration_linkings'
down_revision = 'ss_0001_studies'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calibration_linkings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('base', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('A', sa.Double(), nullable=False),
    sa.Column('B', sa.Double(), nullable=False),
    sa.Column('se_A', sa.Double(), nullable=True),
    sa.Column('se_B', sa.Double(), nullable=True),
    sa.Column('criterion', sa.Double(), nullable=True),
    sa.Column('anchors', sa.JSON(), nullable=False),
    sa.Column('excluded', sa.JSON(), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['calibration_decisions.id'], name=op.f('fk_calibration_linkings_decision_id_calibration_decisions')),
    sa.ForeignKeyConstraint(['run_id'], ['calibration_runs.id'], name=op.f('fk_calibration_linkings_run_id_calibration_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibration_linkings'))
    )
    with op.batch_alter_table('calibration_linkings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calibration_linkings_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calibration_linkings_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calibration_linkings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calibration_linkings_run_id'))
        batch_op.drop_index(batch_op.f('ix_calibration_linkings_decision_id'))
    op.drop_table('calibration_linkings')
