"""exam authoring: forms or linear-on-the-fly delivery with its assembly target, the
availability window, and pretest (unscored) item scores

Revision ID: 0006_exam_authoring
Revises: 0004_policy_sections
Create Date: 2026-11-26 15:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_exam_authoring'
down_revision = '0004_policy_sections'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('exams', sa.Column('delivery_mode', sa.String(length=10),
                                     server_default='forms', nullable=False))
    op.add_column('exams', sa.Column('assembly', sa.JSON(), server_default='{}',
                                     nullable=False))
    op.add_column('exams', sa.Column('opens_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('exams', sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('item_scores', sa.Column('scored', sa.Boolean(), server_default=sa.true(),
                                           nullable=False))


def downgrade() -> None:
    op.execute("ALTER TABLE item_scores DROP COLUMN scored")
    for column in ('closes_at', 'opens_at', 'assembly', 'delivery_mode'):
        op.execute(f"ALTER TABLE exams DROP COLUMN {column}")
