"""QTI import: packages uploaded in the browser, waiting (owned, expiring) for their commit.

Revision ID: i0005_qti
Revises: i0004_assembly
Create Date: 2026-11-26 15:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'i0005_qti'
down_revision = 'i0004_assembly'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pending_imports',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'],
                                name=op.f('fk_pending_imports_owner_id_users')),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_pending_imports')),
    )
    op.create_index(op.f('ix_pending_imports_owner_id'), 'pending_imports', ['owner_id'])
    op.create_index(op.f('ix_pending_imports_expires_at'), 'pending_imports', ['expires_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_pending_imports_expires_at'), table_name='pending_imports')
    op.drop_index(op.f('ix_pending_imports_owner_id'), table_name='pending_imports')
    op.drop_table('pending_imports')
