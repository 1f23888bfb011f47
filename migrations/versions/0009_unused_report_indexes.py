"""Drop two reports indexes that no query uses

* ix_reports_project_id repeats the leading column of the unique (project_id,
  idempotency_key) index, which answers every lookup by project (and the foreign key's
  checks) on its own;
* ix_reports_end_user_hash was made for a lookup no page, API or export makes: the hash
  is shown and exported with its report, never searched.

Each report insert wrote an entry into both: a page more per index in SQLite's
write-ahead log on every intake commit. A query that needs one later brings its index
back with it.

Revision ID: 0009_unused_report_indexes
Revises: 0008_lean_report_indexes
"""
from alembic import op

revision = '0009_unused_report_indexes'
down_revision = '0008_lean_report_indexes'
branch_labels = None
depends_on = None

COLUMNS = ("project_id", "end_user_hash")


def upgrade():
    for column in COLUMNS:
        op.drop_index(f"ix_reports_{column}", table_name="reports")


def downgrade():
    for column in COLUMNS:
        op.create_index(f"ix_reports_{column}", "reports", [column])
