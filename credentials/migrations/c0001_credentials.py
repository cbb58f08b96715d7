"""credentials: issuers, keys, achievements, credentials, status lists

Revision ID: c0001_credentials
Revises: 
Create Date: 2026-11-25 20:12:15.417119
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'c0001_credentials'
down_revision = None
branch_labels = ('credentials',)
depends_on = '0001_foundation'

def upgrade() -> None:
    op.create_table('credential_issuers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_issuers')),
    sa.UniqueConstraint('slug', name=op.f('uq_credential_issuers_slug'))
    )

    op.create_table('credential_holder_choices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name_display', sa.String(length=10), nullable=False),
    sa.Column('did', sa.String(length=300), nullable=True),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credential_holder_choices_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_holder_choices'))
    )
    with op.batch_alter_table('credential_holder_choices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_holder_choices_user_id'), ['user_id'], unique=False)

    op.create_table('credential_issuer_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('key_ref', sa.String(length=40), nullable=False),
    sa.Column('public_key_multibase', sa.String(length=100), nullable=False),
    sa.Column('sealed_private_key', sa.Text(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['credential_issuers.id'], name=op.f('fk_credential_issuer_keys_issuer_id_credential_issuers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_issuer_keys')),
    sa.UniqueConstraint('issuer_id', 'key_ref', name=op.f('uq_credential_issuer_keys_issuer_id_key_ref')),
    sa.UniqueConstraint('public_key_multibase', name=op.f('uq_credential_issuer_keys_public_key_multibase'))
    )
    with op.batch_alter_table('credential_issuer_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_issuer_keys_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('credential_status_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('issuer_key_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issuer_id'], ['credential_issuers.id'], name=op.f('fk_credential_status_lists_issuer_id_credential_issuers')),
    sa.ForeignKeyConstraint(['issuer_key_id'], ['credential_issuer_keys.id'], name=op.f('fk_credential_status_lists_issuer_key_id_credential_issuer_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_status_lists'))
    )
    with op.batch_alter_table('credential_status_lists', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_status_lists_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('credential_achievements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('criteria', sa.Text(), nullable=False),
    sa.Column('achievement_type', sa.String(length=40), nullable=False),
    sa.Column('exam_id', sa.Integer(), nullable=True),
    sa.Column('recertification_exam_id', sa.Integer(), nullable=True),
    sa.Column('validity_days', sa.Integer(), nullable=True),
    sa.Column('extra_alignment', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('is_stack', sa.Boolean(), nullable=False),
    sa.Column('stack_components', sa.JSON(), nullable=False),
    sa.Column('stack_required', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name=op.f('fk_credential_achievements_exam_id_exams')),
    sa.ForeignKeyConstraint(['issuer_id'], ['credential_issuers.id'], name=op.f('fk_credential_achievements_issuer_id_credential_issuers')),
    sa.ForeignKeyConstraint(['recertification_exam_id'], ['exams.id'], name=op.f('fk_credential_achievements_recertification_exam_id_exams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_achievements')),
    sa.UniqueConstraint('code', name=op.f('uq_credential_achievements_code')),
    sa.UniqueConstraint('exam_id', name=op.f('uq_credential_achievements_exam_id')),
    sa.UniqueConstraint('recertification_exam_id', name=op.f('uq_credential_achievements_recertification_exam_id'))
    )
    op.create_table('credential_status_publications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status_list_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=12), nullable=False),
    sa.Column('through_event_id', sa.Integer(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['status_list_id'], ['credential_status_lists.id'], name=op.f('fk_credential_status_publications_status_list_id_credential_status_lists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_status_publications'))
    )
    with op.batch_alter_table('credential_status_publications', schema=None) as batch_op:
        batch_op.create_index('ix_credential_status_publications_list_purpose', ['status_list_id', 'purpose'], unique=False)

    op.create_table('credentials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=36), nullable=False),
    sa.Column('achievement_id', sa.Integer(), nullable=False),
    sa.Column('issuer_key_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('supersedes_id', sa.Integer(), nullable=True),
    sa.Column('status_list_id', sa.Integer(), nullable=False),
    sa.Column('status_index', sa.Integer(), nullable=False),
    sa.Column('valid_from', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('issued_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['achievement_id'], ['credential_achievements.id'], name=op.f('fk_credentials_achievement_id_credential_achievements')),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], name=op.f('fk_credentials_holder_id_users')),
    sa.ForeignKeyConstraint(['issuer_key_id'], ['credential_issuer_keys.id'], name=op.f('fk_credentials_issuer_key_id_credential_issuer_keys')),
    sa.ForeignKeyConstraint(['result_id'], ['results.id'], name=op.f('fk_credentials_result_id_results')),
    sa.ForeignKeyConstraint(['status_list_id'], ['credential_status_lists.id'], name=op.f('fk_credentials_status_list_id_credential_status_lists')),
    sa.ForeignKeyConstraint(['supersedes_id'], ['credentials.id'], name=op.f('fk_credentials_supersedes_id_credentials')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials')),
    sa.UniqueConstraint('public_id', name=op.f('uq_credentials_public_id')),
    sa.UniqueConstraint('result_id', 'achievement_id', name=op.f('uq_credentials_result_id_achievement_id')),
    sa.UniqueConstraint('status_list_id', 'status_index', name=op.f('uq_credentials_status_list_id_status_index'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index('ix_credentials_holder_achievement', ['holder_id', 'achievement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credentials_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credentials_valid_until'), ['valid_until'], unique=False)

    op.create_table('credential_status_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.Integer(), nullable=False),
    sa.Column('status_list_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by_user_id', sa.Integer(), nullable=True),
    sa.Column('at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_user_id'], ['users.id'], name=op.f('fk_credential_status_events_by_user_id_users')),
    sa.ForeignKeyConstraint(['credential_id'], ['credentials.id'], name=op.f('fk_credential_status_events_credential_id_credentials')),
    sa.ForeignKeyConstraint(['status_list_id'], ['credential_status_lists.id'], name=op.f('fk_credential_status_events_status_list_id_credential_status_lists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_status_events'))
    )
    with op.batch_alter_table('credential_status_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_status_events_credential_id'), ['credential_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credential_status_events_status_list_id'), ['status_list_id'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    for table in ("credential_status_events", "credential_status_publications", "credentials",
                  "credential_achievements", "credential_status_lists", "credential_issuer_keys",
                  "credential_holder_choices", "credential_issuers"):
        op.drop_table(table)
