"""itembank's own branch: an item version's status is the one record of its life (drop the
is_published flag that doubled it). The item bank's tables were created by the foundation's
0001; the bank's later tables start here.

Revision ID: i0001_item_status
Revises: (branch "itembank", depends on 0001_foundation)
Create Date: 2026-11-26 13:25:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'i0001_item_status'
down_revision = None
branch_labels = ('itembank',)
depends_on = '0001_foundation'


def upgrade() -> None:
    # The flag's word is kept in status before the flag goes (the two never disagreed in code,
    # but a row written by hand might have).
    op.execute("UPDATE item_versions SET status = 'published' "
               "WHERE is_published AND status <> 'published'")
    # A plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): batch mode would copy the table and drop
    # the original, which responses and form items reference.
    op.execute("ALTER TABLE item_versions DROP COLUMN is_published")


def downgrade() -> None:
    # (plain ADD COLUMN, not batch mode, for the same reason)
    op.add_column('item_versions', sa.Column('is_published', sa.Boolean(),
                                             server_default=sa.false(), nullable=False))
    op.execute("UPDATE item_versions SET is_published = (status = 'published')")
