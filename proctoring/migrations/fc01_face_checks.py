"""The face checker's queue (issue 15, goal 2): a row per camera frame whose faces are still to
be counted, so that a snapshot upload stores the frame and answers, and the Haar search (about
50 ms of CPU) runs in the face checker's own process.

Revision ID: fc01_face_checks
Revises: fo01_hook_calls
Create Date: 2026-11-27 03:40:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'fc01_face_checks'
down_revision = 'fo01_hook_calls'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proctoring_face_checks',
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('server_at', microcred.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', microcred.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['snapshot_id'], ['proctoring_snapshots.id'],
                            name=op.f('fk_proctoring_face_checks_snapshot_id_proctoring_snapshots')),
    sa.ForeignKeyConstraint(['session_id'], ['proctoring_sessions.id'],
                            name=op.f('fk_proctoring_face_checks_session_id_proctoring_sessions')),
    sa.PrimaryKeyConstraint('snapshot_id', name=op.f('pk_proctoring_face_checks'))
    )
    with op.batch_alter_table('proctoring_face_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proctoring_face_checks_session_id'), ['session_id'],
                              unique=False)
        batch_op.create_index('ix_proctoring_face_checks_next', ['state', 'urgent', 'server_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('proctoring_face_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_proctoring_face_checks_next')
        batch_op.drop_index(batch_op.f('ix_proctoring_face_checks_session_id'))
    op.drop_table('proctoring_face_checks')
