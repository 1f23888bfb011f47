"""Incident pages: parse the form (app.incidents.forms), call one service, render or
redirect. A form that fails shows its page again, status 422 (409 for a conflict), with
the messages beside the fields and what was typed kept; nothing is changed.

Who sees what (the services check it): viewers read published retrospectives (the list at
/incidents and each one's read-only page); responders read incidents and write notes into
their timelines; leads and admins open, run, write up and export them.

The ticket page's similar-report panel is served from here (/tickets/<id>/similar, which
the ticket page loads with htmx): triage may not import this domain. Likewise /stats gets
its incident section through a hook (STATS_SECTIONS), as app.sla imports no incidents.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from app.auth.models import User
from app.auth.service import require
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed
from app.core.http import local_path
from app.incidents import draft, export, forms, pages, service, similar, stats
from app.incidents.markdown import render_markdown
from app.incidents.models import (
    SECTION_TITLES,
    SECTIONS,
    SEVERITY_MEANINGS,
    ActionItemStatus,
    IncidentStatus,
    Severity,
    TimelineKind,
)
from app.sla.stats_views import STATS_SECTIONS

incidents = Blueprint("incidents", __name__)

# Errors a person can fix by changing what they typed; anything else (403, 404 of the
# incident itself) stays an error page.
FIXABLE = (ValidationFailed, Conflict, NotFound)
EXPORTS = {"md": ("text/markdown; charset=utf-8", "md"), "pdf": ("application/pdf", "pdf"),
           "json": ("application/json; charset=utf-8", "json"),
           "csv": ("text/csv; charset=utf-8", "csv")}
STATUS_LABELS = {s: s.value.capitalize() for s in IncidentStatus}
ITEM_STATUS_LABELS = {ActionItemStatus.OPEN: "Open", ActionItemStatus.IN_PROGRESS: "In progress",
                      ActionItemStatus.DONE: "Done", ActionItemStatus.WONT_DO: "Won't do"}


@incidents.before_request
@login_required
def _signed_in() -> None:
    """Every page here is for signed-in people; the services check the role."""


def _actor() -> User:
    return current_user._get_current_object()


def _local(zone: Any) -> Callable[[datetime | None], str]:
    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if moment else "—"

    return local


def _duration(value: timedelta | float | None) -> str:
    """A timedelta (or seconds) as "3 h 20 min" ("—" when unknown), worded as the exports
    word it, so that the page and the file agree."""
    if value is None:
        return "—"
    return export.duration_words(
        round(value.total_seconds() if isinstance(value, timedelta) else value))


@incidents.context_processor
def _helpers() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {}
    zone = pages.viewer_zone(current_user)
    return {"local": _local(zone), "zone_name": str(zone), "markdown": render_markdown,
            "duration": _duration, "severities": list(Severity),
            "severity_meanings": SEVERITY_MEANINGS, "statuses": list(IncidentStatus),
            "status_labels": STATUS_LABELS, "section_titles": SECTION_TITLES,
            "sections": SECTIONS, "item_statuses": list(ActionItemStatus),
            "item_status_labels": ITEM_STATUS_LABELS, "kinds": list(TimelineKind),
            "may": lambda permission: pages.may(current_user, permission)}


def _status(error: AppError) -> int:
    return 409 if isinstance(error, Conflict) else 422


def _field_errors(error: AppError) -> dict[str, str]:
    return forms.field_messages(error.fields) if isinstance(error.fields, dict) else {}


def _to_incident(public_id: str, anchor: str = "") -> Response:
    return redirect(url_for("incidents.incident_page", public_id=public_id) + anchor, code=303)


# --- the list --------------------------------------------------------------------------------


def _list(status: int = 200, zip_error: AppError | None = None) -> tuple[str, int]:
    actor = _actor()
    if not pages.may(actor, "incidents:read"):
        return render_template("incidents/published.html",
                               published=pages.published_list(actor=actor)), status
    try:
        chosen = forms.list_filters(request.args)
        listing = pages.incident_list(actor=actor, statuses=chosen[0], severities=chosen[1],
                                      page=forms.page_number(request.args))
        filter_error = None
    except ValidationFailed as error:
        chosen, filter_error, status = ([], []), error.message, 422
        listing = pages.incident_list(actor=actor)
    return render_template(
        "incidents/list.html", listing=listing, chosen_statuses=chosen[0],
        chosen_severities=chosen[1], filter_error=filter_error,
        zip_error=zip_error.message if zip_error else None,
        zip_fields=_field_errors(zip_error) if zip_error else {},
        published=pages.published_list(actor=actor)), status


@incidents.get("/incidents")
def list_page() -> tuple[str, int]:
    return _list()


@incidents.get("/incidents/retrospectives.zip")
def export_zip() -> Response | tuple[str, int]:
    """Every retrospective published in a date range (UTC days, inclusive), as one zip."""
    actor = require(_actor(), export.PERMISSION)  # who may not export learns nothing more
    try:
        start, end = forms.date_range(request.args)
        body = export.published_zip(actor=actor, start=start, end=end)
    except ValidationFailed as error:
        return _list(422, zip_error=error)
    return _download(body, "application/zip",
                     f"flagdesk-retrospectives-{start.isoformat()}-to-{end.isoformat()}.zip")


# --- opening and editing -------------------------------------------------------------------


def _form_page(*, editing: Any = None, values: Any = None, status: int = 200,
               error: AppError | None = None) -> tuple[str, int]:
    actor = _actor()
    zone = pages.viewer_zone(actor)
    choices = pages.form_choices(actor=actor)
    # The reports offered: those the form was opened with (kept when it comes back).
    wanted = (values.getlist("offered") if error is not None
              else request.args.getlist("report")) if editing is None else []
    preselected, unknown = pages.preselected_reports(actor=actor, public_ids=wanted) \
        if editing is None else ([], [])
    if values is None:
        values = MultiDict(forms.incident_values(editing, zone)) if editing is not None else \
            MultiDict({"lead_id": str(actor.id) if pages.may(actor, "incidents:manage")
                       and any(u.id == actor.id for u in choices.leads) else "",
                       "status": "investigating"})
    return render_template(
        "incidents/form.html", incident=editing, values=values, choices=choices,
        preselected=preselected, unknown_reports=unknown,
        ticked=set(values.getlist("report_ids")) if error is not None
        else {p.report.public_id for p in preselected},
        error=error.message if error else None,
        field_errors=_field_errors(error) if error else {}), status


@incidents.get("/incidents/new")
def new_page() -> tuple[str, int]:
    """The new-incident form; ?report=<id> (repeated) preselects reports (the board's
    bulk action and the ticket page send them)."""
    return _form_page()


@incidents.post("/incidents")
def create() -> Response | tuple[str, int]:
    actor = _actor()
    try:
        data = forms.incident_form(request.form, pages.viewer_zone(actor), editing=False)
        incident = service.open_incident(actor=actor, **data)
    except FIXABLE as error:
        return _form_page(values=request.form, status=_status(error), error=error)
    flash(f"Incident {incident.public_id} opened.", "info")
    return _to_incident(incident.public_id)


@incidents.get("/incidents/<public_id>/edit")
def edit_page(public_id: str) -> tuple[str, int]:
    actor = _actor()
    pages.form_choices(actor=actor)  # leads only, before anything is read
    return _form_page(editing=service.get_incident(actor=actor, incident_id=public_id))


@incidents.post("/incidents/<public_id>/edit")
def update(public_id: str) -> Response | tuple[str, int]:
    actor = _actor()
    try:
        data = forms.incident_form(request.form, pages.viewer_zone(actor), editing=True)
        service.update_incident(actor=actor, incident_id=public_id, **data)
    except FIXABLE as error:
        pages.form_choices(actor=actor)
        return _form_page(editing=service.get_incident(actor=actor, incident_id=public_id),
                          values=request.form, status=_status(error), error=error)
    flash("Incident saved.", "info")
    return _to_incident(public_id)


# --- the incident page -----------------------------------------------------------------------


def _page(public_id: str, *, status: int = 200, failed: str | None = None,
          error: AppError | None = None) -> tuple[str, int]:
    """The incident page; `failed` names the form that failed (its messages and what was
    typed are shown again)."""
    actor = _actor()
    page = pages.incident_page(actor=actor, incident_id=public_id)
    return render_template(
        "incidents/incident.html", page=page, incident=page.incident,
        draft_enabled=draft.draft_enabled(), failed=failed,
        error=error.message if error else None,
        field_errors=_field_errors(error) if error else {},
        typed=request.form if failed else MultiDict()), status


@incidents.get("/incidents/<public_id>")
def incident_page(public_id: str) -> tuple[str, int]:
    return _page(public_id)


def _act(public_id: str, form_name: str, do: Callable[[], str], anchor: str = "",
         back: str | None = None) -> Response | tuple[str, int]:
    """Run one change (`do` returns what to tell the person); on a fixable failure show
    the page again with that form's error."""
    try:
        done = do()
    except FIXABLE as error:
        return _page(public_id, status=_status(error), failed=form_name, error=error)
    flash(done, "info")
    return redirect(back, code=303) if back else _to_incident(public_id, anchor)


@incidents.post("/incidents/<public_id>/status")
def set_status(public_id: str) -> Response | tuple[str, int]:
    actor = _actor()

    def do() -> str:
        data = forms.status_form(request.form, pages.viewer_zone(actor))
        service.set_status(actor=actor, incident_id=public_id, **data)
        return f"Status set to {data['status']}."

    return _act(public_id, "status", do)


@incidents.post("/incidents/<public_id>/reports")
def link(public_id: str) -> Response | tuple[str, int]:
    """Link reports; from the ticket page's suggestions, `back` brings the lead back there
    (a failure is then said there, as a message)."""
    actor = _actor()
    back = local_path(request.form.get("back"))
    try:
        data = forms.link_form(request.form)
        linked = service.link_reports(actor=actor, incident_id=public_id, **data)
    except FIXABLE as error:
        if back:
            flash(f"Nothing linked: {error.message}", "error")
            return redirect(back, code=303)
        return _page(public_id, status=_status(error), failed="link", error=error)
    ids = data["report_ids"]
    what = ids[0] if len(ids) == 1 else f"{linked} reports"
    flash(f"Linked {what} to {public_id}." if linked else "Those reports were linked already.",
          "info")
    return redirect(back, code=303) if back else _to_incident(public_id, "#reports")


@incidents.post("/incidents/<public_id>/reports/<report_id>/unlink")
def unlink(public_id: str, report_id: str) -> Response | tuple[str, int]:
    def do() -> str:
        service.unlink_report(actor=_actor(), incident_id=public_id, report_id=report_id)
        return f"{report_id} unlinked."

    return _act(public_id, "link", do, "#reports")


@incidents.get("/incidents/<public_id>/facts")
def facts_panel(public_id: str) -> tuple[str, int]:
    """The facts computed from the data; the incident page loads them after itself (htmx),
    since they aggregate every linked report. Without script, a page of their own."""
    actor = _actor()
    facts = service.incident_facts(actor=actor, incident_id=public_id)
    if request.headers.get("HX-Request"):
        return render_template("incidents/_facts.html", facts=facts), 200
    return render_template("incidents/facts.html", facts=facts, incident=service.get_incident(
        actor=actor, incident_id=public_id)), 200


@incidents.get("/incidents/<public_id>/reports")
def reports_page(public_id: str) -> tuple[str, int]:
    number = forms.page_number(request.args)
    incident, linked = pages.report_page(actor=_actor(), incident_id=public_id, page=number)
    return render_template("incidents/reports.html", incident=incident, linked=linked,
                           page=number, per_page=pages.REPORTS_PER_PAGE), 200


@incidents.get("/incidents/<public_id>/timeline")
def timeline_page(public_id: str) -> tuple[str, int]:
    after = request.args.get("after") or None
    incident, timeline = pages.timeline_page(actor=_actor(), incident_id=public_id,
                                             after=after)
    return render_template("incidents/timeline.html", incident=incident, timeline=timeline,
                           after=after), 200


@incidents.post("/incidents/<public_id>/timeline")
def add_entry(public_id: str) -> Response | tuple[str, int]:
    actor = _actor()

    def do() -> str:
        service.add_timeline_entry(actor=actor, incident_id=public_id, **forms.timeline_entry_form(
            request.form, pages.viewer_zone(actor)))
        return "Added to the timeline."

    return _act(public_id, "timeline", do, "#timeline")


@incidents.post("/incidents/<public_id>/timeline/visibility")
def set_visibility(public_id: str) -> Response | tuple[str, int]:
    def do() -> str:
        data = forms.visibility_form(request.form)
        service.set_timeline_item_hidden(actor=_actor(), incident_id=public_id, **data)
        return ("Hidden from the published timeline." if data["hidden"]
                else "Shown in the published timeline again.")

    return _act(public_id, "visibility", do, "#timeline",
                back=local_path(request.form.get("back")))


# --- the retrospective -----------------------------------------------------------------------


@incidents.get("/incidents/<public_id>/retrospective")
def retrospective_page(public_id: str) -> tuple[str, int]:
    """A published version, read-only (viewers too); ?version=N for an older one. Leads
    also preview the working draft here (?draft=1)."""
    actor = _actor()
    options = forms.export_options(MultiDict({"version": request.args.get("version", "")}))
    if request.args.get("draft") and pages.may(actor, "incidents:manage"):
        incident = service.get_incident(actor=actor, incident_id=public_id)
        doc = export.retrospective_document(actor=actor, incident_id=public_id,
                                            version=pages.draft_version(incident),
                                            whole_timeline=False)
        versions = service.published_versions(actor=actor, incident_id=public_id)
    else:
        published = service.published_version(actor=actor, incident_id=public_id,
                                               version=options["version"])
        incident = published.retrospective.incident
        doc = export.build_document(incident, version=published.version)
        versions = service.published_versions(actor=actor, incident_id=public_id)
    return render_template("incidents/retrospective.html", incident=incident, doc=doc,
                           article=export.render_html(doc, standalone=False),
                           versions=versions), 200


@incidents.post("/incidents/<public_id>/retrospective")
def save_retrospective(public_id: str) -> Response | tuple[str, int]:
    def do() -> str:
        service.save_sections(actor=_actor(), incident_id=public_id,
                              **forms.sections_form(request.form))
        return "Retrospective saved."

    return _act(public_id, "retrospective", do, "#retrospective")


def _step(public_id: str, call: Callable[..., Any], done: str) -> Response | tuple[str, int]:
    def do() -> str:
        call(actor=_actor(), incident_id=public_id)
        return done

    return _act(public_id, "retrospective", do, "#retrospective")


@incidents.post("/incidents/<public_id>/retrospective/submit")
def submit_review(public_id: str) -> Response | tuple[str, int]:
    return _step(public_id, service.submit_for_review, "Sent for review.")


@incidents.post("/incidents/<public_id>/retrospective/sign-off")
def sign_off(public_id: str) -> Response | tuple[str, int]:
    return _step(public_id, service.sign_off, "Signed off.")


@incidents.post("/incidents/<public_id>/retrospective/publish")
def publish(public_id: str) -> Response | tuple[str, int]:
    return _step(public_id, service.publish, "Published: this version is now read-only.")


@incidents.post("/incidents/<public_id>/retrospective/reopen")
def reopen(public_id: str) -> Response | tuple[str, int]:
    return _step(public_id, service.reopen, "Back to draft.")


@incidents.post("/incidents/<public_id>/retrospective/draft")
def request_draft(public_id: str) -> Response | tuple[str, int]:
    """A first draft of the summary and contributing factors from the model (only when the
    feature is configured); it stays marked machine-written until a person edits or
    approves it."""
    try:
        draft.request_draft(actor=_actor(), incident_id=public_id)
    except (*FIXABLE, draft.DraftFailed) as error:
        status = error.status if isinstance(error, draft.DraftFailed) else _status(error)
        return _page(public_id, status=status, failed="retrospective", error=error)
    flash("The model drafted the summary and contributing factors: read, edit or approve "
          "them before review.", "info")
    return _to_incident(public_id, "#retrospective")


# --- action items ----------------------------------------------------------------------------


@incidents.post("/incidents/<public_id>/actions")
def add_action_item(public_id: str) -> Response | tuple[str, int]:
    def do() -> str:
        service.add_action_item(actor=_actor(), incident_id=public_id,
                                **forms.action_item_form(request.form))
        return "Action item added."

    return _act(public_id, "action-new", do, "#actions")


@incidents.post("/incidents/<public_id>/actions/<int:item_id>")
def update_action_item(public_id: str, item_id: int) -> Response | tuple[str, int]:
    def do() -> str:
        service.update_action_item(actor=_actor(), incident_id=public_id, item_id=item_id,
                                   **forms.action_item_form(request.form))
        return "Action item saved."

    return _act(public_id, f"action-{item_id}", do, "#actions")


@incidents.post("/incidents/<public_id>/actions/<int:item_id>/delete")
def delete_action_item(public_id: str, item_id: int) -> Response | tuple[str, int]:
    def do() -> str:
        service.delete_action_item(actor=_actor(), incident_id=public_id, item_id=item_id)
        return "Action item removed."

    return _act(public_id, f"action-{item_id}", do, "#actions")


# --- exports ---------------------------------------------------------------------------------


def _download(body: str | bytes, mimetype: str, filename: str) -> Response:
    return Response(body, headers={
        "Content-Type": mimetype, "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{filename}"'})


@incidents.get("/incidents/<public_id>/export/<fmt>")
def export_file(public_id: str, fmt: str) -> Response:
    """One retrospective as Markdown, PDF or JSON, or its linked reports as CSV; reporter
    contacts and end-user hashes only when ticked (?contacts=1, ?hashes=1)."""
    if fmt not in EXPORTS:
        raise NotFound("Export as md, pdf, json or csv.")
    options = forms.export_options(request.args)
    mimetype, extension = EXPORTS[fmt]
    keywords = {"actor": _actor(), "incident_id": public_id,
                "include_reporter_contacts": options["contacts"],
                "include_end_user_hashes": options["hashes"]}
    if fmt == "csv":
        return _download(export.linked_reports_csv(**keywords).encode(), mimetype,
                         f"{public_id}-linked-reports.csv")
    render = {"md": export.retrospective_markdown, "pdf": export.retrospective_pdf,
              "json": export.retrospective_json}[fmt]
    version = options["version"]
    name = f"{public_id}-retrospective" + (f"-v{version}" if version else "")
    return _download(render(version=version, **keywords), mimetype, f"{name}.{extension}")


# --- the ticket page's suggestions -----------------------------------------------------------


@incidents.get("/tickets/<public_id>/similar")
def similar_panel(public_id: str) -> tuple[str, int]:
    """Open reports and open incidents like this ticket, each with its reasons; a lead
    links them one click each. The ticket page loads this into its panel (htmx); without
    script it is a page of its own."""
    actor = _actor()
    panel = pages.similar_panel(actor=actor, public_id=public_id)
    template = "incidents/_similar.html" if request.headers.get("HX-Request") \
        else "incidents/similar.html"
    return render_template(template, panel=panel, limit=similar.MAX_LIMIT), 200


# --- /stats ----------------------------------------------------------------------------------


def stats_section(*, actor: User, start: date, end: date, project_id: int | None) -> Markup:
    """The incident section of /stats (app.sla's page calls the sections registered under
    STATS_SECTIONS): incidents by severity and month, time to detect, mitigate and
    resolve, reports per incident."""
    found = stats.incident_stats(actor=actor, start=start, end=end, project_id=project_id)
    query = {"from": start.isoformat(), "to": end.isoformat()}
    if project_id is not None:
        query["project"] = str(project_id)
    return Markup(render_template(  # noqa: S704 - our template, autoescaped
        "incidents/_stats.html", stats=found, query=query, duration=_duration))


@incidents.record_once
def _register_stats_section(state: Any) -> None:
    state.app.extensions.setdefault(STATS_SECTIONS, []).append(stats_section)


@incidents.get("/stats/incidents.csv")
def stats_csv() -> Response:
    """One row per incident that began in the period (the same as /stats counts)."""
    filters = stats.parse_period(request.args)
    body = stats.incidents_csv(actor=_actor(), **filters)
    name = f"flagdesk-incidents-{filters['start'].isoformat()}-to-{filters['end'].isoformat()}"
    return _download(body.encode(), "text/csv; charset=utf-8", f"{name}.csv")
