"""incidents: incidents and their linked reports, timelines, retrospectives, action items

A report belongs to at most one incident (incident_reports.report_id is unique);
ix_incident_reports_incident serves "the reports of this incident" as an index-only
range, which is what the timeline and the facts join the audit events through.

Revision ID: 0006_incidents
Revises: 0005_sla
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_incidents'
down_revision = '0005_sla'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
UTC = sa.DateTime(timezone=True)


def upgrade():
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('affected_models', JSON, nullable=False),
    sa.Column('started_at', UTC, nullable=True),
    sa.Column('detected_at', UTC, nullable=True),
    sa.Column('mitigated_at', UTC, nullable=True),
    sa.Column('resolved_at', UTC, nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_incidents_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['users.id'], name=op.f('fk_incidents_lead_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('public_id', name=op.f('uq_incidents_public_id'))
    )
    op.create_index(op.f('ix_incidents_lead_id'), 'incidents', ['lead_id'], unique=False)
    op.create_index('ix_incidents_status_created', 'incidents', ['status', 'created_at', 'id'], unique=False)

    op.create_table('incident_participants',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_participants_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_incident_participants_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', 'user_id', name=op.f('pk_incident_participants'))
    )
    op.create_index(op.f('ix_incident_participants_user_id'), 'incident_participants', ['user_id'], unique=False)

    op.create_table('incident_projects',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_projects_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_incident_projects_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', 'project_id', name=op.f('pk_incident_projects'))
    )
    op.create_index(op.f('ix_incident_projects_project_id'), 'incident_projects', ['project_id'], unique=False)

    op.create_table('incident_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('linked_at', UTC, nullable=False),
    sa.Column('linked_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_reports_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['linked_by_id'], ['users.id'], name=op.f('fk_incident_reports_linked_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_incident_reports_report_id_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_reports')),
    sa.UniqueConstraint('report_id', name=op.f('uq_incident_reports_report_id'))
    )
    op.create_index('ix_incident_reports_incident', 'incident_reports', ['incident_id', 'report_id'], unique=False)

    op.create_table('timeline_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', UTC, nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_timeline_entries_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_timeline_entries_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline_entries'))
    )
    op.create_index('ix_timeline_entries_incident', 'timeline_entries', ['incident_id', 'at', 'id'], unique=False)

    op.create_table('timeline_hidden',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_timeline_hidden_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline_hidden')),
    sa.UniqueConstraint('incident_id', 'source', 'source_id', name=op.f('uq_timeline_hidden_incident_id_source_source_id'))
    )

    op.create_table('retrospectives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('sections', JSON, nullable=False),
    sa.Column('machine_written', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('published_at', UTC, nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_retrospectives_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_retrospectives_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retrospectives')),
    sa.UniqueConstraint('incident_id', name=op.f('uq_retrospectives_incident_id'))
    )

    op.create_table('retrospective_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('retrospective_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sections', JSON, nullable=False),
    sa.Column('facts', JSON, nullable=False),
    sa.Column('timeline', JSON, nullable=False),
    sa.Column('published_at', UTC, nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_retrospective_versions_published_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['retrospective_id'], ['retrospectives.id'], name=op.f('fk_retrospective_versions_retrospective_id_retrospectives'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retrospective_versions')),
    sa.UniqueConstraint('retrospective_id', 'version', name=op.f('uq_retrospective_versions_retrospective_id_version'))
    )
    op.create_index('ix_retrospective_versions_published', 'retrospective_versions', ['published_at'], unique=False)

    op.create_table('retrospective_signoffs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('retrospective_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['retrospective_id'], ['retrospectives.id'], name=op.f('fk_retrospective_signoffs_retrospective_id_retrospectives'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_retrospective_signoffs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retrospective_signoffs')),
    sa.UniqueConstraint('retrospective_id', 'version', 'user_id', name=op.f('uq_retrospective_signoffs_retrospective_id_version_user_id'))
    )

    op.create_table('action_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('link', sa.String(length=2000), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_action_items_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_action_items_owner_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_items'))
    )
    op.create_index('ix_action_items_incident', 'action_items', ['incident_id', 'id'], unique=False)
    op.create_index(op.f('ix_action_items_owner_id'), 'action_items', ['owner_id'], unique=False)


def downgrade():
    op.drop_table('action_items')
    op.drop_table('retrospective_signoffs')
    op.drop_table('retrospective_versions')
    op.drop_table('retrospectives')
    op.drop_table('timeline_hidden')
    op.drop_table('timeline_entries')
    op.drop_table('incident_reports')
    op.drop_table('incident_projects')
    op.drop_table('incident_participants')
    op.drop_table('incidents')
