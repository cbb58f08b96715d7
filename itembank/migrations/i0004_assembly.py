"""form assembly: subdomains and pretest slots on blueprints, draft forms and scored/unscored
form items, linear-on-the-fly forms (unique item sets per exam), enemy items, the bank's own
record of form deliveries (exposure) and the pool of pre-assembled forms.

Revision ID: i0004_assembly
Revises: i0001_item_status
Create Date: 2026-11-26 15:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'i0004_assembly'
down_revision = 'i0001_item_status'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy: other tables reference these)
    op.add_column('blueprint_domains', sa.Column('parent_code', sa.String(length=40),
                                                 nullable=True))
    op.add_column('blueprint_domains', sa.Column('pretest_items', sa.Integer(),
                                                 server_default='0', nullable=False))
    op.add_column('forms', sa.Column('name', sa.String(length=200), server_default='',
                                     nullable=False))
    op.add_column('forms', sa.Column('kind', sa.String(length=10), server_default='fixed',
                                     nullable=False))
    op.add_column('forms', sa.Column('loft_key', sa.String(length=64), nullable=True))
    op.add_column('forms', sa.Column('item_set_digest', sa.String(length=64), nullable=True))
    op.create_index('ix_forms_loft_key_item_set_digest', 'forms',
                    ['loft_key', 'item_set_digest'], unique=True)
    op.add_column('form_items', sa.Column('scored', sa.Boolean(), server_default=sa.true(),
                                          nullable=False))
    op.create_table(
        'item_enemies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('enemy_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('item_id < enemy_id', name=op.f('ck_item_enemies_ordered_pair')),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'],
                                name=op.f('fk_item_enemies_item_id_items')),
        sa.ForeignKeyConstraint(['enemy_id'], ['items.id'],
                                name=op.f('fk_item_enemies_enemy_id_items')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_item_enemies')),
        sa.UniqueConstraint('item_id', 'enemy_id', name=op.f('uq_item_enemies_item_id_enemy_id')),
    )
    op.create_index(op.f('ix_item_enemies_item_id'), 'item_enemies', ['item_id'])
    op.create_index(op.f('ix_item_enemies_enemy_id'), 'item_enemies', ['enemy_id'])
    op.create_table(
        'form_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('form_id', sa.Integer(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['form_id'], ['forms.id'],
                                name=op.f('fk_form_deliveries_form_id_forms')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_form_deliveries')),
    )
    op.create_index(op.f('ix_form_deliveries_form_id'), 'form_deliveries', ['form_id'])
    op.create_table(
        'pooled_forms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pool', sa.String(length=64), nullable=False),
        sa.Column('form_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['form_id'], ['forms.id'],
                                name=op.f('fk_pooled_forms_form_id_forms')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pooled_forms')),
        sa.UniqueConstraint('form_id', name=op.f('uq_pooled_forms_form_id')),
    )
    op.create_index('ix_pooled_forms_pool_claimed_at', 'pooled_forms', ['pool', 'claimed_at'])


def downgrade() -> None:
    op.drop_index('ix_pooled_forms_pool_claimed_at', table_name='pooled_forms')
    op.drop_table('pooled_forms')
    op.drop_index(op.f('ix_form_deliveries_form_id'), table_name='form_deliveries')
    op.drop_table('form_deliveries')
    op.drop_index(op.f('ix_item_enemies_enemy_id'), table_name='item_enemies')
    op.drop_index(op.f('ix_item_enemies_item_id'), table_name='item_enemies')
    op.drop_table('item_enemies')
    op.execute("ALTER TABLE form_items DROP COLUMN scored")
    op.drop_index('ix_forms_loft_key_item_set_digest', table_name='forms')
    for column in ('item_set_digest', 'loft_key', 'kind', 'name'):
        op.execute(f"ALTER TABLE forms DROP COLUMN {column}")
    for column in ('pretest_items', 'parent_code'):
        op.execute(f"ALTER TABLE blueprint_domains DROP COLUMN {column}")
