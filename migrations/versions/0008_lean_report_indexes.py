"""reports.assignee_id and reports.merged_into_id indexed only where set

Every report arrives unassigned and unmerged, and most stay unmerged: the full indexes on
the two columns were mostly NULL entries, and every insert wrote one into each (about 60
of the 456 microseconds of the SQLite insert, in process; intake went from 867 to 915
requests/s in bench/intake.py). The queries that use them ask for a value (`= :id`,
`IN (…)`, a foreign key's ON DELETE), which implies IS NOT NULL, in a generic plan too;
"unassigned" is answered by the board indexes' assignee_id column.

Revision ID: 0008_lean_report_indexes
Revises: 0007_similar_reports
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_lean_report_indexes'
down_revision = '0007_similar_reports'
branch_labels = None
depends_on = None

COLUMNS = ("assignee_id", "merged_into_id")


def upgrade():
    for column in COLUMNS:
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(f"ix_reports_{column}", table_name="reports")
        op.create_index(f"ix_reports_{column}", "reports", [column],
                        postgresql_where=where, sqlite_where=where)


def downgrade():
    for column in COLUMNS:
        op.drop_index(f"ix_reports_{column}", table_name="reports")
        op.create_index(f"ix_reports_{column}", "reports", [column])
