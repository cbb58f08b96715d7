"""results: a rescoring adds a result that supersedes the attempt's last (results are never
edited in place), so an attempt may have several results and the newest stands: the unique
constraint on attempt_id becomes an index; results gain supersedes_id and rekey_id (the re-key,
in the item bank's branch, whose rescoring wrote the row).

Revision ID: 0005_rescore
Revises: 0006_exam_authoring
Create Date: 2026-11-26 15:25:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_rescore'
down_revision = '0006_exam_authoring'
branch_labels = None
depends_on = 'i0002_workflow'


def upgrade() -> None:
    # SQLite keeps a table's UNIQUE inside its CREATE TABLE: dropping it copies the table
    # (batch mode; env.py runs SQLite migrations with foreign keys off and checks them after)
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_constraint('uq_results_attempt_id', type_='unique')
        batch_op.create_index('ix_results_attempt_id', ['attempt_id'], unique=False)
        batch_op.add_column(sa.Column('supersedes_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rekey_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_results_supersedes_id_results', 'results',
                                    ['supersedes_id'], ['id'])
        batch_op.create_foreign_key('fk_results_rekey_id_item_rekeys', 'item_rekeys',
                                    ['rekey_id'], ['id'])


def downgrade() -> None:
    # only the first result of each attempt can stay under the unique constraint
    op.execute("DELETE FROM result_releases WHERE result_id IN "
               "(SELECT id FROM results WHERE supersedes_id IS NOT NULL)")
    op.execute("DELETE FROM item_scores WHERE result_id IN "
               "(SELECT id FROM results WHERE supersedes_id IS NOT NULL)")
    op.execute("DELETE FROM results WHERE supersedes_id IS NOT NULL")
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_constraint('fk_results_rekey_id_item_rekeys', type_='foreignkey')
        batch_op.drop_constraint('fk_results_supersedes_id_results', type_='foreignkey')
        batch_op.drop_column('rekey_id')
        batch_op.drop_column('supersedes_id')
        batch_op.drop_index('ix_results_attempt_id')
        batch_op.create_unique_constraint('uq_results_attempt_id', ['attempt_id'])
