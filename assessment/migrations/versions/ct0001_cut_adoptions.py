"""cut adoptions: an exam's theta cut, scale transform and per-form raw cuts, adopted as an
append-only record (the newest is current); results record the scoring rule, the cut, the
parameters and the raw cut they were scored with, and their scale score

Revision ID: ct0001_cut_adoptions
Revises: 0007_run_ctt
Create Date: 2026-11-26 18:10:00
"""
import sqlalchemy as sa
from alembic import op

from microcred.db import UTCDateTime

revision = 'ct0001_cut_adoptions'
down_revision = '0007_run_ctt'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cut_adoptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('exam_id', sa.Integer(), nullable=False),
        sa.Column('theta_cut', sa.Double(), nullable=False),
        sa.Column('scoring', sa.String(length=20), nullable=False),
        sa.Column('rounding', sa.String(length=10), nullable=False),
        sa.Column('scale_cut', sa.Double(), nullable=False),
        sa.Column('scale_slope', sa.Double(), nullable=False),
        sa.Column('scale_lower', sa.Double(), nullable=False),
        sa.Column('scale_upper', sa.Double(), nullable=False),
        sa.Column('scale_decimals', sa.Integer(), nullable=False),
        sa.Column('calibration_run_id', sa.Integer(), nullable=True),
        sa.Column('parameter_ids', sa.JSON(), nullable=False),
        sa.Column('study_id', sa.Integer(), nullable=True),
        sa.Column('form_cuts', sa.JSON(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('reason', sa.String(length=1000), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['by_id'], ['users.id'], name='fk_cut_adoptions_by_id_users'),
        sa.ForeignKeyConstraint(['calibration_run_id'], ['calibration_runs.id'],
                                name='fk_cut_adoptions_calibration_run_id_calibration_runs'),
        sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name='fk_cut_adoptions_exam_id_exams'),
        sa.PrimaryKeyConstraint('id', name='pk_cut_adoptions'),
    )
    op.create_index('ix_cut_adoptions_exam_id', 'cut_adoptions', ['exam_id'], unique=False)
    # results scored before this were judged against the exam's pass percent: say so
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scoring_rule', sa.String(length=20), nullable=False,
                                      server_default='percent'))
        batch_op.add_column(sa.Column('cut_adoption_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('calibration_run_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('parameter_ids', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('raw_cut', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('scale_score', sa.Double(), nullable=True))
        batch_op.create_foreign_key('fk_results_cut_adoption_id_cut_adoptions', 'cut_adoptions',
                                    ['cut_adoption_id'], ['id'])
        batch_op.create_foreign_key('fk_results_calibration_run_id_calibration_runs',
                                    'calibration_runs', ['calibration_run_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_constraint('fk_results_calibration_run_id_calibration_runs',
                                 type_='foreignkey')
        batch_op.drop_constraint('fk_results_cut_adoption_id_cut_adoptions', type_='foreignkey')
        for name in ('scale_score', 'raw_cut', 'parameter_ids', 'calibration_run_id',
                     'cut_adoption_id', 'scoring_rule'):
            batch_op.drop_column(name)
    op.drop_index('ix_cut_adoptions_exam_id', table_name='cut_adoptions')
    op.drop_table('cut_adoptions')
