"""itembank: the review workflow. An item version's status gains in_review, approved, pretest
and retired (stored "published" becomes "approved", the operational status); versions gain
blueprint metadata, an author and a review round; new tables: the item history (item_events),
review stages, reviewer assignments, review notes (comments and stage sign-offs) and re-keys.

Revision ID: i0002_workflow
Revises: i0003_media
Create Date: 2026-11-26 15:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'i0002_workflow'
down_revision = 'i0003_media'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE item_versions SET status = 'approved' WHERE status = 'published'")
    # plain ADD COLUMN (no batch copy of a table that responses and form items reference)
    op.add_column('item_versions', sa.Column('subdomain_code', sa.String(length=40),
                                             server_default='', nullable=False))
    op.add_column('item_versions', sa.Column('cognitive_level', sa.String(length=40),
                                             server_default='', nullable=False))
    op.add_column('item_versions', sa.Column('reference', sa.Text(), server_default='',
                                             nullable=False))
    op.add_column('item_versions', sa.Column('keywords', sa.JSON(), server_default='[]',
                                             nullable=False))
    if op.get_bind().dialect.name == "sqlite":  # (SQLite adds a reference only inline)
        op.execute("ALTER TABLE item_versions ADD COLUMN author_id INTEGER "
                   "CONSTRAINT fk_item_versions_author_id_users REFERENCES users (id)")
    else:
        op.add_column('item_versions', sa.Column('author_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_item_versions_author_id_users', 'item_versions', 'users',
                              ['author_id'], ['id'])
    op.add_column('item_versions', sa.Column('review_round', sa.Integer(), server_default='0',
                                             nullable=False))
    op.create_index('ix_item_versions_status', 'item_versions', ['status'])
    op.create_index('ix_item_versions_item_type', 'item_versions', ['item_type'])
    op.create_index('ix_item_versions_domain_code', 'item_versions', ['domain_code'])
    op.create_table(
        'item_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('item_version_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'],
                                name=op.f('fk_item_events_actor_id_users')),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'],
                                name=op.f('fk_item_events_item_id_items')),
        sa.ForeignKeyConstraint(['item_version_id'], ['item_versions.id'],
                                name=op.f('fk_item_events_item_version_id_item_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_item_events')),
    )
    op.create_index('ix_item_events_item_id_id', 'item_events', ['item_id', 'id'])
    op.create_table(
        'review_stages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_stages')),
        sa.UniqueConstraint('code', name=op.f('uq_review_stages_code')),
    )
    op.create_table(
        'review_assignments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_version_id', sa.Integer(), nullable=False),
        sa.Column('reviewer_id', sa.Integer(), nullable=False),
        sa.Column('stage_code', sa.String(length=40), nullable=False),
        sa.Column('assigned_by_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['assigned_by_id'], ['users.id'],
                                name=op.f('fk_review_assignments_assigned_by_id_users')),
        sa.ForeignKeyConstraint(['item_version_id'], ['item_versions.id'],
                                name=op.f('fk_review_assignments_item_version_id_item_versions')),
        sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'],
                                name=op.f('fk_review_assignments_reviewer_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_assignments')),
    )
    op.create_index('ix_review_assignments_item_version_id', 'review_assignments',
                    ['item_version_id'])
    op.create_index('ix_review_assignments_reviewer_id', 'review_assignments', ['reviewer_id'])
    op.create_table(
        'review_notes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_version_id', sa.Integer(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('stage_code', sa.String(length=40), nullable=False),
        sa.Column('verdict', sa.String(length=20), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'],
                                name=op.f('fk_review_notes_author_id_users')),
        sa.ForeignKeyConstraint(['item_version_id'], ['item_versions.id'],
                                name=op.f('fk_review_notes_item_version_id_item_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_notes')),
    )
    op.create_index('ix_review_notes_item_version_id', 'review_notes', ['item_version_id'])
    op.create_table(
        'item_rekeys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_version_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.JSON(), nullable=False),
        sa.Column('scoring', sa.JSON(), nullable=False),
        sa.Column('max_score', sa.Double(), nullable=False),
        sa.Column('dropped', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_item_rekeys_by_id_users')),
        sa.ForeignKeyConstraint(['item_version_id'], ['item_versions.id'],
                                name=op.f('fk_item_rekeys_item_version_id_item_versions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_item_rekeys')),
    )
    op.create_index('ix_item_rekeys_item_version_id', 'item_rekeys', ['item_version_id'])


def downgrade() -> None:
    op.drop_table('item_rekeys')
    op.drop_table('review_notes')
    op.drop_table('review_assignments')
    op.drop_table('review_stages')
    op.drop_table('item_events')
    op.drop_index('ix_item_versions_domain_code', 'item_versions')
    op.drop_index('ix_item_versions_item_type', 'item_versions')
    op.drop_index('ix_item_versions_status', 'item_versions')
    for column in ('review_round', 'author_id', 'keywords', 'reference', 'cognitive_level',
                   'subdomain_code'):
        op.execute(f"ALTER TABLE item_versions DROP COLUMN {column}")
    op.execute("UPDATE item_versions SET status = 'published' "
               "WHERE status IN ('approved', 'pretest', 'retired')")
    op.execute("UPDATE item_versions SET status = 'draft' WHERE status = 'in_review'")
