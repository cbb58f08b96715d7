"""attempts keep their clock (deadline, open pause, extensions) so the hot path reads no clock
events; an index on (status, deadline) for the sweeper

Revision ID: hp01_attempt_clock
Revises: ct0002_cut_rescorings
Create Date: 2026-11-26 18:00:00
"""
import sqlalchemy as sa
from alembic import op

import microcred.db

revision = 'hp01_attempt_clock'
down_revision = 'ct0002_cut_rescorings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_at', microcred.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('paused_since', microcred.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('extension_seconds', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_index('ix_attempts_status_deadline', ['status', 'deadline_at'],
                              unique=False)
    _backfill()


def _backfill() -> None:
    """Every attempt's stored clock from its clock events, by the one formula (timing.py)."""
    from types import SimpleNamespace

    from assessment.delivery.timing import stored_clock

    conn = op.get_bind()
    utc = microcred.db.UTCDateTime()
    attempts = sa.table('attempts', sa.column('id'), sa.column('started_at', utc),
                        sa.column('time_limit_seconds'), sa.column('time_multiplier'),
                        sa.column('deadline_at', utc), sa.column('paused_since', utc),
                        sa.column('extension_seconds'))
    events = sa.table('attempt_clock_events', sa.column('id'), sa.column('attempt_id'),
                      sa.column('kind'), sa.column('seconds'), sa.column('at', utc))
    by_attempt: dict[int, list] = {}
    for ev in conn.execute(sa.select(events)):
        by_attempt.setdefault(ev.attempt_id, []).append(ev)
    rows = list(conn.execute(sa.select(attempts.c.id, attempts.c.started_at,
                                       attempts.c.time_limit_seconds,
                                       attempts.c.time_multiplier)))
    for a in rows:
        s = stored_clock(SimpleNamespace(started_at=a.started_at,
                                         time_limit_seconds=a.time_limit_seconds,
                                         time_multiplier=a.time_multiplier),
                         by_attempt.get(a.id, []))
        conn.execute(attempts.update().where(attempts.c.id == a.id).values(
            deadline_at=s.deadline_at, paused_since=s.paused_since,
            extension_seconds=s.extension_seconds))


def downgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_status_deadline')
        batch_op.drop_column('extension_seconds')
        batch_op.drop_column('paused_since')
        batch_op.drop_column('deadline_at')
