"""standard-setting panels: a facilitator removes a seated panelist, recorded with who, when and
why (assessment.psych.studies.PanelistRemoval); the seat and ratings rows stay

Revision ID: sg0001_panelist_removals
Revises: hp01_attempt_clock
Create Date: 2026-11-26 21:30:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'sg0001_panelist_removals'
down_revision = 'hp01_attempt_clock'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ss_panelist_removals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('removed_by_id', sa.Integer(), nullable=False),
    sa.Column('removed_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'], name=op.f('fk_ss_panelist_removals_removed_by_id_users')),
    sa.ForeignKeyConstraint(['study_id'], ['ss_studies.id'], name=op.f('fk_ss_panelist_removals_study_id_ss_studies')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ss_panelist_removals_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ss_panelist_removals')),
    sa.UniqueConstraint('study_id', 'user_id', name=op.f('uq_ss_panelist_removals_study_id_user_id'))
    )
    with op.batch_alter_table('ss_panelist_removals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ss_panelist_removals_study_id'), ['study_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ss_panelist_removals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ss_panelist_removals_study_id'))
    op.drop_table('ss_panelist_removals')
