"""/stats: SLA attainment and MTTA/MTTR for leads and admins, with a chart and a CSV.

Thin: parse the filters (app.sla.schemas), call one service (app.sla.reporting, which
checks "stats:read"), render. Bad filters show the page again, status 422, with the
message next to the filter and what was typed kept; the CSV answers 422 with the same
messages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user, login_required
from markupsafe import Markup

from app.auth.models import User
from app.core.clock import now
from app.core.errors import ValidationFailed
from app.sla import chart, present, reporting, schemas, stats
from app.sla.models import Metric

stats_pages = Blueprint("stats", __name__)

SERIES = [(str(m), present.metric_label(m)) for m in schemas.METRICS]
DEFAULT_WEEKS = 12
STATS_SECTIONS = "flagdesk.stats_sections"  # see _sections


@stats_pages.before_request
@login_required
def _signed_in() -> None:
    """For signed-in staff; the service lets leads and admins in ("stats:read")."""


def _actor() -> User:
    return current_user._get_current_object()


def _filters() -> tuple[schemas.StatsFilters | None, dict[str, str]]:
    start, end = stats.weeks(now(), DEFAULT_WEEKS)
    return schemas.parse_stats(request.args, default_start=start.date(),
                               default_end=(end - timedelta(days=1)).date())


def _sections(filters: schemas.StatsFilters) -> list[Markup]:
    """What other domains add to the page (incidents), each a callable registered under
    app.extensions[STATS_SECTIONS] (app.sla imports none of them): it takes the reader and
    the period and returns its rendered section."""
    return [section(actor=_actor(), start=filters.start, end=filters.end,
                    project_id=filters.project_id)
            for section in current_app.extensions.get(STATS_SECTIONS, ())]


def _chart(report: reporting.SlaReport) -> chart.Chart:
    values = {(row.week or "", str(row.metric)): (row.achieved, row.breached)
              for row in report.weekly}
    return chart.attainment_chart(report.weeks, SERIES, values)


@stats_pages.get("/stats")
def stats_page() -> tuple[str, int]:
    filters, errors = _filters()
    actor = _actor()
    context: dict[str, Any] = {"form": {k: request.args.get(k, "") for k in
                                        ("from", "to", "project")},
                               "errors": errors, "series": SERIES,
                               "metrics": list(Metric), "duration": present.duration,
                               "metric_label": present.metric_label}
    if filters is None:
        html = render_template("sla/stats.html", report=None,
                               projects=reporting.projects(actor=actor), **context)
        return html, 422
    report = reporting.sla_report(actor=actor, filters=filters)
    context["form"] = {k: context["form"][k] or v for k, v in
                       {"project": "", **filters.query()}.items()}
    html = render_template("sla/stats.html", report=report, projects=report.projects,
                           chart=_chart(report), query=filters.query(),
                           sections=_sections(filters), **context)
    return html, 200


@stats_pages.get("/stats/sla.csv")
def stats_csv() -> Response:
    filters, errors = _filters()
    if filters is None:
        reporting.allowed(actor=_actor())  # who may not see it learns nothing more
        problems = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise ValidationFailed(f"Some filters are invalid ({problems})",
                               fields={k: [v] for k, v in errors.items()})
    body = reporting.csv_text(actor=_actor(), filters=filters)
    name = f"flagdesk-sla-{filters.start.isoformat()}-to-{filters.end.isoformat()}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
