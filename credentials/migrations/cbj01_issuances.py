"""credentials: issuances, the badge a released pass is owed while a job issues it

Revision ID: cbj01_issuances
Revises: c0001_credentials
Create Date: 2026-11-26 16:40:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'cbj01_issuances'
down_revision = 'c0001_credentials'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credential_issuances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['result_id'], ['results.id'], name=op.f('fk_credential_issuances_result_id_results')),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], name=op.f('fk_credential_issuances_holder_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_issuances')),
    sa.UniqueConstraint('result_id', name=op.f('uq_credential_issuances_result_id'))
    )
    op.create_index(op.f('ix_credential_issuances_state'), 'credential_issuances', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_credential_issuances_state'), table_name='credential_issuances')
    op.drop_table('credential_issuances')
