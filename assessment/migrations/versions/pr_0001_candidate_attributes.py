"""candidate attributes: name/value per candidate for group reports and DIF, append-only (a
changed or withdrawn value is a new row)

Revision ID: pr_0001_candidate_attributes
Revises: rc_0001_calibration_linkings
Create Date: 2026-11-26 18:00:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'pr_0001_candidate_attributes'
down_revision = 'rc_0001_calibration_linkings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('candidate_attributes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['users.id'], name=op.f('fk_candidate_attributes_candidate_id_users')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_candidate_attributes_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_candidate_attributes'))
    )
    with op.batch_alter_table('candidate_attributes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_attributes_candidate_id'), ['candidate_id'], unique=False)
        batch_op.create_index('ix_candidate_attributes_name_candidate', ['name', 'candidate_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('candidate_attributes', schema=None) as batch_op:
        batch_op.drop_index('ix_candidate_attributes_name_candidate')
        batch_op.drop_index(batch_op.f('ix_candidate_attributes_candidate_id'))
    op.drop_table('candidate_attributes')
