"""Which incident a report belongs to: the badge on board cards and ticket pages.

Read-only and small on purpose: it is the one part of incidents that triage may import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.incidents.models import Incident, IncidentReport, IncidentStatus, Severity


@dataclass(frozen=True)
class IncidentBadge:
    public_id: str
    title: str
    severity: Severity
    status: IncidentStatus

    @property
    def open(self) -> bool:
        return self.status not in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


def incident_for_reports(report_ids: Iterable[int]) -> dict[int, IncidentBadge]:
    """{report id (internal): badge} for those of these reports linked to an incident;
    one query whatever the number of reports. Checks no permission: call it only for
    reports the reader may already see."""
    ids = set(report_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(IncidentReport.report_id, Incident.public_id, Incident.title, Incident.severity,
               Incident.status)
        .join(Incident, Incident.id == IncidentReport.incident_id)
        .where(IncidentReport.report_id.in_(ids)))
    return {report_id: IncidentBadge(public_id, title, severity, status)
            for report_id, public_id, title, severity, status in rows}
