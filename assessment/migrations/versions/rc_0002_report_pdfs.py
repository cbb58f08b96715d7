"""item-analysis report PDFs rendered by a background job and kept in the database (who asked,
when, the scope, the job's state and progress, the data range, the PDF's bytes)

Revision ID: rc_0002_report_pdfs
Revises: pr_0001_candidate_attributes
Create Date: 2026-11-26 18:30:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'rc_0002_report_pdfs'
down_revision = 'pr_0001_candidate_attributes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('report_pdfs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('scope_key', sa.String(length=64), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('started_at', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('data_range', sa.String(length=100), nullable=True),
    sa.Column('n_candidates', sa.Integer(), nullable=True),
    sa.Column('n_items', sa.Integer(), nullable=True),
    sa.Column('n_pages', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('render_seconds', sa.Double(), nullable=True),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name=op.f('fk_report_pdfs_exam_id_exams')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_report_pdfs_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_pdfs'))
    )
    with op.batch_alter_table('report_pdfs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_pdfs_exam_id'), ['exam_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_pdfs_scope_key'), ['scope_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('report_pdfs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_pdfs_scope_key'))
        batch_op.drop_index(batch_op.f('ix_report_pdfs_exam_id'))
    op.drop_table('report_pdfs')
