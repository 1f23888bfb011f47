"""HTML forms to the incident schemas (helper I6d's): what a browser sends (datetime-local
values in the reader's timezone, blank fields, checkboxes that are absent when none is
ticked, ids in a text box) made into what app.incidents.schemas loads, and back again to
fill a form. Every failure is a ValidationFailed with field messages, so that a page can
show the form again with the messages beside the fields and what was typed kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from app.core.errors import ValidationFailed
from app.incidents.models import SECTIONS, IncidentStatus, Severity
from app.incidents.schemas import (
    WINDOW,
    ActionItemSchema,
    IncidentSchema,
    IncidentUpdateSchema,
    LinkReportsSchema,
    RetrospectiveFormSchema,
    StatusChangeSchema,
    TimelineEntrySchema,
    TimelineVisibilitySchema,
)

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> shows
_IDS = re.compile(r"[\s,;]+")
_MODELS = re.compile(r"[,\n]+")


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in _flat(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flat(value)]
    return [str(messages)]


def field_messages(errors: Mapping[str, Any]) -> dict[str, str]:
    """{field: one line of text} from marshmallow's (or a service's) nested messages."""
    return {str(name): " ".join(dict.fromkeys(_flat(messages)))
            for name, messages in errors.items()}


def _load(schema: Schema, data: Mapping[str, Any], extra: Mapping[str, list[str]] | None = None
          ) -> dict[str, Any]:
    errors: dict[str, Any] = dict(extra or {})
    try:
        loaded = schema.load(data)
    except ValidationError as error:
        errors.update(error.normalized_messages())
        loaded = {}
    if errors:
        raise ValidationFailed("Some fields are missing or invalid.", fields=errors)
    return loaded


def local_input(value: datetime | None, zone: tzinfo) -> str:
    """An instant as a datetime-local value in the reader's zone ("" when unknown)."""
    return value.astimezone(zone).strftime(LOCAL_FORMAT) if value else ""


def parse_local(text: str | None, zone: tzinfo) -> datetime | None:
    """A datetime-local value read in the reader's zone, as UTC; None when blank.
    ValueError when it is not a date and time."""
    text = (text or "").strip()
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _instants(form: MultiDict, names: tuple[str, ...], zone: tzinfo
              ) -> tuple[dict[str, str | None], dict[str, list[str]]]:
    values: dict[str, str | None] = {}
    errors: dict[str, list[str]] = {}
    for name in names:
        try:
            instant = parse_local(form.get(name), zone)
        except ValueError:
            errors[name] = ["Give a date and a time."]
            continue
        values[name] = instant.isoformat() if instant else None
    return values, errors


def _ints(form: MultiDict, name: str) -> list[str]:
    return [v for v in form.getlist(name) if v.strip()]


def _models(text: str | None) -> list[str]:
    return [m.strip() for m in _MODELS.split(text or "") if m.strip()]


def report_ids(text: str | None) -> list[str]:
    """Report ids typed into a box, separated by blanks, commas or new lines."""
    return [i for i in _IDS.split(text or "") if i]


_STATUS = fields.Enum(IncidentStatus, by_value=True)


def incident_form(form: MultiDict, zone: tzinfo, *, editing: bool) -> dict[str, Any]:
    """The new-incident form (or, `editing`, the edit form) as service keywords."""
    instants, errors = _instants(form, WINDOW, zone)
    lead = (form.get("lead_id") or "").strip()
    projects, models = _ints(form, "project_ids"), _models(form.get("affected_models"))
    data: dict[str, Any] = {
        "title": form.get("title", ""), "severity": form.get("severity") or None,
        "lead_id": lead or None, "participant_ids": _ints(form, "participant_ids"),
        # A new incident takes the linked reports' projects and models when none is given.
        "project_ids": projects if projects or editing else None,
        "affected_models": models if models or editing else None,
        **instants}
    if not editing:
        data["report_ids"] = [i for i in form.getlist("report_ids") if i.strip()]
        data["report_ids"] += report_ids(form.get("more_report_ids"))
    if data["severity"] is None:
        data.pop("severity")
        errors.setdefault("severity", []).append("Pick a severity.")
    status = None
    if not editing:
        try:
            status = _STATUS.deserialize(form.get("status") or "investigating")
        except ValidationError as error:
            errors["status"] = _flat(error.messages)
    loaded = _load(IncidentUpdateSchema() if editing else IncidentSchema(), data, errors)
    if status is not None:
        loaded["status"] = status
    return loaded


def incident_values(incident: Any, zone: tzinfo) -> dict[str, Any]:
    """An incident as its edit form shows it."""
    return {
        "title": incident.title, "severity": str(incident.severity),
        "lead_id": str(incident.lead_id or ""),
        "participant_ids": [str(u.id) for u in incident.participants],
        "project_ids": [str(p.id) for p in incident.projects],
        "affected_models": ", ".join(incident.affected_models or []),
        **{name: local_input(getattr(incident, name), zone) for name in WINDOW}}


def status_form(form: MultiDict, zone: tzinfo) -> dict[str, Any]:
    instants, errors = _instants(form, ("at",), zone)
    return _load(StatusChangeSchema(), {"status": form.get("status", ""), **instants}, errors)


def timeline_entry_form(form: MultiDict, zone: tzinfo) -> dict[str, Any]:
    instants, errors = _instants(form, ("at",), zone)
    return _load(TimelineEntrySchema(), {"body": form.get("body", ""),
                                         "kind": form.get("kind") or "note", **instants},
                 errors)


def visibility_form(form: MultiDict) -> dict[str, Any]:
    return _load(TimelineVisibilitySchema(), {
        "source": form.get("source", ""), "source_id": form.get("source_id", ""),
        "hidden": form.get("hidden", "")})


def link_form(form: MultiDict) -> dict[str, Any]:
    ids = [i for i in form.getlist("report_ids") if i.strip()]
    ids += report_ids(form.get("more_report_ids"))
    return _load(LinkReportsSchema(), {"report_ids": ids})


def sections_form(form: MultiDict) -> dict[str, Any]:
    data: dict[str, Any] = {key: form[key] for key in SECTIONS if key in form}
    data["approve"] = form.getlist("approve")
    return _load(RetrospectiveFormSchema(), data)


def action_item_form(form: MultiDict) -> dict[str, Any]:
    return _load(ActionItemSchema(), {
        "title": form.get("title", ""), "owner_id": form.get("owner_id") or None,
        "due_date": form.get("due_date") or None, "status": form.get("status") or "open",
        "link": form.get("link") or None})


class _ExportOptions(Schema):
    contacts = fields.Boolean(load_default=False)
    hashes = fields.Boolean(load_default=False)
    version = fields.Integer(load_default=None, allow_none=True,
                             validate=validate.Range(min=1, max=1_000_000))


def export_options(args: MultiDict) -> dict[str, Any]:
    """?contacts=1&hashes=1&version=N (the privacy options are off unless ticked)."""
    data = {k: args.get(k) for k in ("contacts", "hashes", "version") if args.get(k)}
    return _load(_ExportOptions(), data)


class _DateRange(Schema):
    start = fields.Date(data_key="from", required=True)
    end = fields.Date(data_key="to", required=True)


def date_range(args: MultiDict) -> tuple[date, date]:
    """?from=YYYY-MM-DD&to=YYYY-MM-DD (both required, inclusive)."""
    loaded = _load(_DateRange(), {k: args.get(k) for k in ("from", "to") if args.get(k)})
    if loaded["end"] < loaded["start"]:
        raise ValidationFailed("The range ends before it starts.",
                               fields={"to": ["Must not be before the start."]})
    return loaded["start"], loaded["end"]


def list_filters(args: MultiDict) -> tuple[list[IncidentStatus], list[Severity]]:
    """/incidents?status=…&severity=… (each repeatable; none means any)."""
    try:
        return ([IncidentStatus(s) for s in args.getlist("status") if s],
                [Severity(s) for s in args.getlist("severity") if s])
    except ValueError as error:
        raise ValidationFailed("Unknown status or severity.",
                               fields={"status": ["Pick from the list."]}) from error


def page_number(args: MultiDict) -> int:
    text = (args.get("page") or "1").strip()
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise ValidationFailed("Not a page number.", fields={"page": ["A page number."]})
    return int(text)
