"""board indexes: one partial index per column kind, matching the board's order

The board lists unmerged tickets per status ordered by priority then age (open columns)
or by priority then most recently closed (closed columns). At 1M reports PostgreSQL chose
a sort over ix_reports_board (p95 296 ms); these indexes give it an ordered index scan
that stops after the first page (p95 about 100 ms). bench/results/board-plans-*.txt.

Revision ID: 0003_board_indexes
Revises: 0002_triage
"""
from alembic import op
import sqlalchemy as sa

revision = '0003_board_indexes'
down_revision = '0002_triage'
branch_labels = None
depends_on = None

UNMERGED = sa.text('merged_into_id IS NULL')


def upgrade():
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_board')
    op.create_index('ix_reports_board_open', 'reports',
                    ['status', 'priority', 'received_at', 'id', 'assignee_id'],
                    postgresql_where=UNMERGED, sqlite_where=UNMERGED)
    op.create_index('ix_reports_board_closed', 'reports',
                    ['status', 'priority', sa.text('updated_at DESC'), sa.text('id DESC'),
                     'assignee_id'],
                    postgresql_where=UNMERGED, sqlite_where=UNMERGED)


def downgrade():
    op.drop_index('ix_reports_board_closed', table_name='reports')
    op.drop_index('ix_reports_board_open', table_name='reports')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index('ix_reports_board', ['status', 'priority', 'received_at'],
                              unique=False)
