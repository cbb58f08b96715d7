"""exam policies hold only registered sections: drop the demo's unread ``achievement_code``

An exam's policy is now checked section by section on every write (``microcred.policy``); the
demo used to store an ``achievement_code`` nobody read (the badge follows its achievement's
``exam_id``), which would make any later edit of that exam's policy refused.

Revision ID: 0004_policy_sections
Revises: 0003_sessions_counters
Create Date: 2026-11-26 13:40:00
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0004_policy_sections'
down_revision = '0003_sessions_counters'
branch_labels = None
depends_on = None

exams = sa.table('exams', sa.column('id', sa.Integer), sa.column('policy', sa.JSON))


def upgrade() -> None:
    conn = op.get_bind()
    for exam_id, policy in conn.execute(sa.select(exams.c.id, exams.c.policy)).all():
        if isinstance(policy, str):  # a driver that hands JSON back as text
            policy = json.loads(policy)
        if isinstance(policy, dict) and "achievement_code" in policy:
            kept = {k: v for k, v in policy.items() if k != "achievement_code"}
            conn.execute(sa.update(exams).where(exams.c.id == exam_id).values(policy=kept))


def downgrade() -> None:
    pass  # the key was never read: nothing to restore
