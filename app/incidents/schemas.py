"""What the incident forms and JSON accept, and the checks the service repeats.

The service re-checks what matters (it is called from forms, the API and the CLI alike),
through the small functions at the top of this module.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from app.incidents.models import (
    SECTIONS,
    ActionItemStatus,
    IncidentStatus,
    Severity,
    TimelineKind,
)

TITLE_MAX = 200
MODEL_NAME_MAX = 200
MAX_MODELS = 20
MAX_LINKED_PER_CALL = 10_000
SECTION_MAX = 50_000  # characters of Markdown per retrospective section
ENTRY_MAX = 10_000  # characters of Markdown per timeline entry
LINK_MAX = 2000
PUBLIC_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
# The order the impact window's instants must keep, when given.
WINDOW = ("started_at", "detected_at", "mitigated_at", "resolved_at")


def window_errors(values: dict[str, datetime | None]) -> dict[str, list[str]]:
    """Field errors for an impact window out of order (started ≤ detected ≤ mitigated ≤
    resolved, comparing only the instants given); empty when it is in order."""
    errors: dict[str, list[str]] = {}
    given = [(name, values.get(name)) for name in WINDOW if values.get(name) is not None]
    for (earlier, first), (later, second) in zip(given, given[1:], strict=False):
        if second < first:  # type: ignore[operator]
            errors.setdefault(later, []).append(
                f"Must not be before {earlier.removesuffix('_at').replace('_', ' ')}.")
    return errors


def http_url_error(link: str) -> str | None:
    """Why `link` is not an acceptable http(s) URL, or None when it is."""
    if len(link) > LINK_MAX:
        return f"At most {LINK_MAX} characters."
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in link):
        return "No spaces or control characters."
    try:
        parts = urlsplit(link)
    except ValueError:
        return "Not a URL."
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// links."
    return None


class CleanString(fields.String):
    """A string with surrounding whitespace removed and no NUL (PostgreSQL refuses it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        return text


class AwareDateTime(fields.AwareDateTime):
    """An ISO instant with an offset (naive values are refused), as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)


class IncidentSchema(Schema):
    """Opening an incident (the form on the board and the ticket page, and JSON)."""

    class Meta:
        unknown = EXCLUDE

    title = CleanString(required=True, validate=validate.Length(min=1, max=TITLE_MAX))
    severity = fields.Enum(Severity, by_value=True, required=True)
    status = fields.Enum(IncidentStatus, by_value=True,
                         validate=validate.NoneOf([IncidentStatus.CLOSED]))
    # Left out: the lead is whoever opens it; null: no lead yet.
    lead_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**31 - 1))
    participant_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)),
                                  load_default=list, validate=validate.Length(max=200))
    # Left out or null: those of the linked reports.
    project_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)),
                              load_default=None, allow_none=True,
                              validate=validate.Length(max=200))
    affected_models = fields.List(
        CleanString(validate=validate.Length(min=1, max=MODEL_NAME_MAX)),
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_MODELS))
    report_ids = fields.List(CleanString(validate=validate.Regexp(PUBLIC_ID_PATTERN)),
                             load_default=list,
                             validate=validate.Length(max=MAX_LINKED_PER_CALL))
    started_at = AwareDateTime(allow_none=True, load_default=None)
    detected_at = AwareDateTime(allow_none=True, load_default=None)
    mitigated_at = AwareDateTime(allow_none=True, load_default=None)
    resolved_at = AwareDateTime(allow_none=True, load_default=None)

    @validates_schema
    def _window_in_order(self, data: dict[str, Any], **_: Any) -> None:
        errors = window_errors(data)
        if errors:
            raise ValidationError(errors)


class IncidentUpdateSchema(IncidentSchema):
    """Editing an incident: every field optional; what is left out stays as it is.
    The window order is checked again by the service against the stored instants."""

    class Meta:
        unknown = EXCLUDE

    title = CleanString(validate=validate.Length(min=1, max=TITLE_MAX))
    severity = fields.Enum(Severity, by_value=True)
    status = fields.Enum(IncidentStatus, by_value=True, dump_only=True)  # see set_status
    lead_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**31 - 1))
    participant_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)),
                                  validate=validate.Length(max=200))
    project_ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**31 - 1)),
                              validate=validate.Length(max=200))
    affected_models = fields.List(
        CleanString(validate=validate.Length(min=1, max=MODEL_NAME_MAX)),
        validate=validate.Length(max=MAX_MODELS))
    report_ids = fields.List(CleanString(), dump_only=True)
    started_at = AwareDateTime(allow_none=True)
    detected_at = AwareDateTime(allow_none=True)
    mitigated_at = AwareDateTime(allow_none=True)
    resolved_at = AwareDateTime(allow_none=True)


class StatusChangeSchema(Schema):
    status = fields.Enum(IncidentStatus, by_value=True, required=True)
    at = AwareDateTime(allow_none=True, load_default=None)


class LinkReportsSchema(Schema):
    report_ids = fields.List(CleanString(validate=validate.Regexp(PUBLIC_ID_PATTERN)),
                             required=True,
                             validate=validate.Length(min=1, max=MAX_LINKED_PER_CALL))


class TimelineEntrySchema(Schema):
    """A person's timeline entry; `at` defaults to now."""

    class Meta:
        unknown = EXCLUDE

    body = CleanString(required=True, validate=validate.Length(min=1, max=ENTRY_MAX))
    kind = fields.Enum(TimelineKind, by_value=True, load_default=TimelineKind.NOTE)
    at = AwareDateTime(allow_none=True, load_default=None)


class TimelineVisibilitySchema(Schema):
    source = fields.String(required=True, validate=validate.OneOf(["audit", "entry"]))
    source_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**63 - 1))
    hidden = fields.Boolean(required=True)


class RetrospectiveSectionsSchema(Schema):
    """The editable sections (Markdown); a section left out is left as it is. `approve`
    names machine-written sections a person accepts as they are."""

    class Meta:
        unknown = EXCLUDE

    sections = fields.Dict(
        keys=fields.String(validate=validate.OneOf(SECTIONS)),
        values=CleanString(validate=validate.Length(max=SECTION_MAX)),
        load_default=dict)
    approve = fields.List(fields.String(validate=validate.OneOf(SECTIONS)), load_default=list)


def _section() -> CleanString:
    return CleanString(validate=validate.Length(max=SECTION_MAX))


class RetrospectiveFormSchema(Schema):
    """The same as a flat HTML form: one field per section (`summary`, `impact`, …) and
    `approve` repeated; loads as {"sections": {...}, "approve": [...]}."""

    class Meta:
        unknown = EXCLUDE

    summary = _section()
    impact = _section()
    root_cause = _section()
    contributing_factors = _section()
    detection = _section()
    response_recovery = _section()
    went_well = _section()
    went_poorly = _section()
    got_lucky = _section()
    lessons = _section()
    approve = fields.List(fields.String(validate=validate.OneOf(SECTIONS)), load_default=list)

    @post_load
    def _nest(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"sections": {key: data[key] for key in SECTIONS if key in data},
                "approve": data.get("approve", [])}


class ActionItemSchema(Schema):
    """An action item. The service also refuses a due date in the past when it is set."""

    class Meta:
        unknown = EXCLUDE

    title = CleanString(required=True, validate=validate.Length(min=1, max=TITLE_MAX))
    owner_id = fields.Integer(allow_none=True, load_default=None,
                              validate=validate.Range(min=1, max=2**31 - 1))
    due_date = fields.Date(allow_none=True, load_default=None)
    status = fields.Enum(ActionItemStatus, by_value=True, load_default=ActionItemStatus.OPEN)
    link = CleanString(allow_none=True, load_default=None)

    @validates("due_date")
    def _plausible_date(self, value: date | None, **_: Any) -> None:
        if value is not None and not date(2000, 1, 1) <= value <= date(2100, 12, 31):
            raise ValidationError("Give a date between 2000 and 2100.")

    @validates("link")
    def _http_only(self, value: str | None, **_: Any) -> None:
        if value:
            error = http_url_error(value)
            if error:
                raise ValidationError(error)

    @post_load
    def _empty_link_is_none(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "link" in data and not data["link"]:
            data["link"] = None
        return data


class ActionItemUpdateSchema(ActionItemSchema):
    title = CleanString(validate=validate.Length(min=1, max=TITLE_MAX))
    owner_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**31 - 1))
    due_date = fields.Date(allow_none=True)
    status = fields.Enum(ActionItemStatus, by_value=True)
    link = CleanString(allow_none=True)
