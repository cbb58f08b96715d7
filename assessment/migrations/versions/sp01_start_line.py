"""The start spike: one attempt in progress per candidate and exam (a partial unique index, so
racing starts make one), and the waiting room (its line's clock and the candidates' tickets).

Revision ID: sp01_start_line
Revises: sg0001_panelist_removals
Create Date: 2026-11-26 21:15:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'sp01_start_line'
down_revision = 'sg0001_panelist_removals'
branch_labels = None
depends_on = None

IN_PROGRESS = sa.text("status = 'in_progress'")
OPEN = sa.text("attempt_id IS NULL")


def upgrade() -> None:
    op.create_index('uq_attempts_one_in_progress', 'attempts', ['candidate_id', 'exam_id'],
                    unique=True, sqlite_where=IN_PROGRESS, postgresql_where=IN_PROGRESS)
    op.create_table(
        'start_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('next_slot', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_start_lines')),
    )
    op.create_table(
        'start_tickets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('candidate_id', sa.Integer(), nullable=False),
        sa.Column('exam_id', sa.Integer(), nullable=False),
        sa.Column('joined_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('admit_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['candidate_id'], ['users.id'],
                                name=op.f('fk_start_tickets_candidate_id_users')),
        sa.ForeignKeyConstraint(['exam_id'], ['exams.id'],
                                name=op.f('fk_start_tickets_exam_id_exams')),
        sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'],
                                name=op.f('fk_start_tickets_attempt_id_attempts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_start_tickets')),
    )
    op.create_index('uq_start_tickets_open', 'start_tickets', ['candidate_id', 'exam_id'],
                    unique=True, sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_start_tickets_admit_at', 'start_tickets', ['admit_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_start_tickets_admit_at', table_name='start_tickets')
    op.drop_index('uq_start_tickets_open', table_name='start_tickets')
    op.drop_table('start_tickets')
    op.drop_table('start_lines')
    op.drop_index('uq_attempts_one_in_progress', table_name='attempts')
