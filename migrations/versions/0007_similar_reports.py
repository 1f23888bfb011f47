"""similar-report suggestions: trigram and model indexes over open reports (PostgreSQL)

app/incidents/similar.py compares the first 100 characters of open reports' descriptions
with pg_trgm (the received day in front, through btree_gin, so a 30-day window skips the
rest), and matches open flagged reports by model. Among 1,000,000 reports a suggestion
takes p95 107 ms with these (bench/similar.py, bench/results/similar-plans.txt). SQLite
has no trigram index: similar.py falls back to word overlap over recent reports there.

The statuses, the 100 and 'UTC' are literals on purpose: a query's generic plan can only
use a partial or expression index whose predicate it repeats as constants. Both indexes
live only here (reports.models.MIGRATION_ONLY_INDEXES), not in the models: autogenerate
cannot compare expression indexes.

Revision ID: 0007_similar_reports
Revises: 0006_incidents
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_similar_reports'
down_revision = '0006_incidents'
branch_labels = None
depends_on = None

OPEN = ("merged_into_id IS NULL AND status IN "
        "('new', 'triaged', 'in_progress', 'waiting_on_reporter')")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # Both are "trusted" extensions since PostgreSQL 13: a database owner may create them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.create_index("ix_reports_open_wording", "reports",
                    [sa.text("((timezone('UTC', received_at))::date)"),
                     sa.text("left(description, 100) gin_trgm_ops")],
                    postgresql_using="gin", postgresql_where=sa.text(OPEN))
    op.create_index("ix_reports_open_flagged_model", "reports",
                    ["model_name", "received_at", "id"],
                    postgresql_where=sa.text(OPEN + " AND flagged_categories <> '[]'::jsonb"))


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_reports_open_flagged_model", table_name="reports")
    op.drop_index("ix_reports_open_wording", table_name="reports")
