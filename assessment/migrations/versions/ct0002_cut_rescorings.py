"""cut rescorings: a recorded rescoring of an exam's standing results under its current cut;
results name the rescoring that wrote them

Revision ID: ct0002_cut_rescorings
Revises: rc_0002_report_pdfs
Create Date: 2026-11-26 18:05:00
"""
import sqlalchemy as sa
from alembic import op

from microcred.db import UTCDateTime

revision = 'ct0002_cut_rescorings'
down_revision = 'rc_0002_report_pdfs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cut_rescorings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('exam_id', sa.Integer(), nullable=False),
        sa.Column('cut_adoption_id', sa.Integer(), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=1000), nullable=False),
        sa.Column('rescored', sa.Integer(), nullable=False),
        sa.Column('flips', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['by_id'], ['users.id'], name='fk_cut_rescorings_by_id_users'),
        sa.ForeignKeyConstraint(['cut_adoption_id'], ['cut_adoptions.id'],
                                name='fk_cut_rescorings_cut_adoption_id_cut_adoptions'),
        sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name='fk_cut_rescorings_exam_id_exams'),
        sa.PrimaryKeyConstraint('id', name='pk_cut_rescorings'),
    )
    op.create_index('ix_cut_rescorings_exam_id', 'cut_rescorings', ['exam_id'], unique=False)
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cut_rescoring_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_results_cut_rescoring_id_cut_rescorings',
                                    'cut_rescorings', ['cut_rescoring_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_constraint('fk_results_cut_rescoring_id_cut_rescorings', type_='foreignkey')
        batch_op.drop_column('cut_rescoring_id')
    op.drop_index('ix_cut_rescorings_exam_id', table_name='cut_rescorings')
    op.drop_table('cut_rescorings')
