"""itembank: media stored once by content hash, stimuli shared by item sets

Revision ID: i0003_media
Revises: i0005_qti
Create Date: 2026-11-26 15:10:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'i0003_media'
down_revision = 'i0005_qti'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('media',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_media'))
    )
    op.create_table('stimuli',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stimuli')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_stimuli_code_version'))
    )
    # a plain ADD COLUMN with its REFERENCES clause (SQLite allows one on a nullable column),
    # not batch mode, which would copy item_versions, that responses and forms reference
    op.execute("ALTER TABLE item_versions ADD COLUMN stimulus_id INTEGER "
               "CONSTRAINT fk_item_versions_stimulus_id_stimuli REFERENCES stimuli (id)")
    op.create_index(op.f('ix_item_versions_stimulus_id'), 'item_versions', ['stimulus_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_item_versions_stimulus_id'), table_name='item_versions')
    # a plain DROP COLUMN (SQLite >= 3.35, PostgreSQL), which takes the column's foreign key
    # with it; batch mode would copy item_versions, that other tables reference
    op.execute("ALTER TABLE item_versions DROP COLUMN stimulus_id")
    op.drop_table('stimuli')
    op.drop_table('media')
