"""sla: calendars, policies, targets, per-ticket clocks; the board's SLA columns

Reports get sla_due_at (the soonest due instant of a running clock) and sla_rank (0
breached, 1 at risk, 2 otherwise), kept by app.sla, so the board sorts and filters in
SQL: ix_reports_board_open now leads with sla_rank after status, and ix_reports_board_due
serves the "due soonest" order. The sweep finds due clocks through two partial indexes.

Revision ID: 0005_sla
Revises: 0004_notify
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005_sla'
down_revision = '0004_notify'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
UNMERGED = sa.text('merged_into_id IS NULL')
RUNNING = sa.text("state = 'running'")
LIVE = sa.text("state IN ('running', 'at_risk')")


def upgrade():
    op.create_table('sla_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('week', JSON, nullable=False),
    sa.Column('holiday_country', sa.String(length=8), nullable=True),
    sa.Column('holiday_subdivision', sa.String(length=16), nullable=True),
    sa.Column('extra_holidays', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_calendars_name'))
    )
    op.create_table('sla_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('at_risk_share', sa.Double(), nullable=False),
    sa.Column('p0_around_the_clock', sa.Boolean(), nullable=False),
    sa.Column('oncall_email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('at_risk_share > 0 AND at_risk_share < 1', name=op.f('ck_sla_policies_at_risk_share')),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_sla_policies_calendar_id_sla_calendars')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_sla_policies_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policies')),
    sa.UniqueConstraint('project_id', name=op.f('uq_sla_policies_project_id'))
    )
    op.create_index(op.f('ix_sla_policies_calendar_id'), 'sla_policies', ['calendar_id'], unique=False)

    op.create_table('sla_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.CheckConstraint('(priority IS NULL) <> (category IS NULL)', name=op.f('ck_sla_targets_priority_or_category')),
    sa.CheckConstraint('minutes > 0', name=op.f('ck_sla_targets_minutes_positive')),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_targets_policy_id_sla_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_targets'))
    )
    op.create_index('ux_sla_targets_category', 'sla_targets', ['policy_id', 'metric', 'category'], unique=True,
                    postgresql_where=sa.text('priority IS NULL'), sqlite_where=sa.text('priority IS NULL'))
    op.create_index('ux_sla_targets_priority', 'sla_targets', ['policy_id', 'metric', 'priority'], unique=True,
                    postgresql_where=sa.text('category IS NULL'), sqlite_where=sa.text('category IS NULL'))

    op.create_table('sla_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('target_minutes', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('always_on', sa.Boolean(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('at_risk_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pauses', JSON, nullable=False),
    sa.Column('paused_seconds', sa.Integer(), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('elapsed_seconds', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_sla_clocks_calendar_id_sla_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_clocks_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_sla_clocks_report_id_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_clocks')),
    sa.UniqueConstraint('report_id', 'metric', 'sequence', name=op.f('uq_sla_clocks_report_id_metric_sequence'))
    )
    op.create_index('ix_sla_clocks_at_risk_due', 'sla_clocks', ['at_risk_at'], unique=False,
                    postgresql_where=RUNNING, sqlite_where=RUNNING)
    op.create_index('ix_sla_clocks_breach_due', 'sla_clocks', ['due_at'], unique=False,
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index('ix_sla_clocks_outcome', 'sla_clocks', ['metric', 'outcome_at'], unique=False)

    op.add_column('reports', sa.Column('sla_due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('reports', sa.Column('sla_rank', sa.SmallInteger(), server_default='2', nullable=False))
    op.drop_index('ix_reports_board_open', table_name='reports')
    op.create_index('ix_reports_board_open', 'reports',
                    ['status', 'sla_rank', 'priority', 'received_at', 'id', 'assignee_id'],
                    postgresql_where=UNMERGED, sqlite_where=UNMERGED)
    op.create_index('ix_reports_board_due', 'reports', ['status', 'sla_due_at', 'id'],
                    postgresql_where=UNMERGED, sqlite_where=UNMERGED)


def downgrade():
    op.drop_index('ix_reports_board_due', table_name='reports')
    op.drop_index('ix_reports_board_open', table_name='reports')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_column('sla_rank')
        batch_op.drop_column('sla_due_at')
    op.create_index('ix_reports_board_open', 'reports',
                    ['status', 'priority', 'received_at', 'id', 'assignee_id'],
                    postgresql_where=UNMERGED, sqlite_where=UNMERGED)

    op.drop_table('sla_clocks')
    op.drop_table('sla_targets')
    op.drop_table('sla_policies')
    op.drop_table('sla_calendars')
