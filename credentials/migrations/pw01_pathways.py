"""credentials: pathway rules (stacks, clusters, exam prerequisites), trainings and their
completions, LMS tokens; every existing N-of-M stack becomes its rule

Revision ID: pw01_pathways
Revises: rn01_renewals
Create Date: 2026-11-26 18:00:00
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'pw01_pathways'
down_revision = 'rn01_renewals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credential_pathway_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('achievement_id', sa.Integer(), nullable=True),
    sa.Column('exam_id', sa.Integer(), nullable=True),
    sa.Column('required', sa.JSON(), nullable=False),
    sa.Column('electives', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['achievement_id'], ['credential_achievements.id'], name=op.f('fk_credential_pathway_rules_achievement_id_credential_achievements')),
    sa.ForeignKeyConstraint(['exam_id'], ['exams.id'], name=op.f('fk_credential_pathway_rules_exam_id_exams')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_credential_pathway_rules_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_pathway_rules'))
    )
    op.create_index(op.f('ix_credential_pathway_rules_achievement_id'), 'credential_pathway_rules', ['achievement_id'], unique=False)
    op.create_index(op.f('ix_credential_pathway_rules_exam_id'), 'credential_pathway_rules', ['exam_id'], unique=False)

    op.create_table('credential_trainings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=True),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_trainings')),
    sa.UniqueConstraint('code', name=op.f('uq_credential_trainings_code'))
    )

    op.create_table('credential_training_completions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('training_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('completed_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['training_id'], ['credential_trainings.id'], name=op.f('fk_credential_training_completions_training_id_credential_trainings')),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], name=op.f('fk_credential_training_completions_holder_id_users')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_credential_training_completions_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_training_completions')),
    sa.UniqueConstraint('training_id', 'holder_id', 'completed_at', name='uq_credential_training_completions_once')
    )
    op.create_index(op.f('ix_credential_training_completions_holder_id'), 'credential_training_completions', ['holder_id'], unique=False)

    op.create_table('credential_lms_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_credential_lms_tokens_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credential_lms_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_credential_lms_tokens_token_hash'))
    )
    _stacks_become_rules()


def _stacks_become_rules() -> None:
    """Each N-of-M stack keeps meaning what it meant: all of M is a required list, N < M one
    elective group of N of its M components."""
    conn = op.get_bind()
    achievements = sa.table('credential_achievements', sa.column('id', sa.Integer),
                            sa.column('is_stack', sa.Boolean),
                            sa.column('stack_components', sa.JSON),
                            sa.column('stack_required', sa.Integer))
    rules = sa.table('credential_pathway_rules', sa.column('achievement_id', sa.Integer),
                     sa.column('required', sa.JSON), sa.column('electives', sa.JSON),
                     sa.column('created_at', microcred.db.UTCDateTime(timezone=True)))
    now = dt.datetime.now(dt.UTC)
    rows = []
    for a in conn.execute(sa.select(achievements).where(achievements.c.is_stack.is_(True))):
        components = list(a.stack_components or [])
        if not components:
            continue
        n = a.stack_required or len(components)
        if n >= len(components):
            rows.append({"achievement_id": a.id, "required": components, "electives": [],
                         "created_at": now})
        else:
            rows.append({"achievement_id": a.id, "required": [],
                         "electives": [{"choose": n, "from": components}], "created_at": now})
    if rows:
        op.bulk_insert(rules, rows)


def downgrade() -> None:
    op.drop_table('credential_lms_tokens')
    op.drop_index(op.f('ix_credential_training_completions_holder_id'), table_name='credential_training_completions')
    op.drop_table('credential_training_completions')
    op.drop_table('credential_trainings')
    op.drop_index(op.f('ix_credential_pathway_rules_exam_id'), table_name='credential_pathway_rules')
    op.drop_index(op.f('ix_credential_pathway_rules_achievement_id'), table_name='credential_pathway_rules')
    op.drop_table('credential_pathway_rules')
