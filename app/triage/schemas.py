"""What the board and ticket forms accept. The board's filters live in the URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from app.moderation import CATEGORIES
from app.reports.models import Priority, Reason, Status

ASSIGNEE_PATTERN = r"^(me|none|[0-9]{1,9})$"
# Row ids as the URL and forms carry them: ASCII digits, small enough for any integer column.
ID_PATTERN = re.compile(r"^[0-9]{1,9}$")
MAX_ID = 2**31 - 1
PUBLIC_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


def _no_nul(value: str) -> None:
    # PostgreSQL cannot store or compare text with NUL in it, and no honest client sends it.
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
MAX_COMMENT = 10_000
# The board's orders besides the default (most urgent first), as the URL names them.
DUE_SOONEST = "due"
SORTS = {DUE_SOONEST: "Due soonest"}


@dataclass(frozen=True)
class BoardFilters:
    """The board's filters; they travel in the URL (see BoardQuerySchema)."""

    project_id: int | None = None
    priorities: tuple[Priority, ...] = ()
    category: str | None = None
    flagged: bool | None = None
    reason: Reason | None = None
    assignee: str | None = None  # "me", "none", or a user id
    q: str | None = None
    received_from: date | None = None
    received_to: date | None = None
    sort: str | None = None  # None: most urgent first; "due": due soonest (SORTS)

    def query_pairs(self) -> list[tuple[str, str]]:
        """The filters as the board's query string parameters, in one canonical order."""
        pairs: list[tuple[str, str]] = []
        if self.project_id is not None:
            pairs.append(("project", str(self.project_id)))
        pairs += [("priority", str(p)) for p in sorted(set(self.priorities))]
        for key, value in (("category", self.category), ("reason", self.reason),
                           ("assignee", self.assignee), ("q", self.q)):
            if value:
                pairs.append((key, str(value)))
        if self.flagged is not None:
            pairs.append(("flagged", "true" if self.flagged else "false"))
        if self.received_from is not None:
            pairs.append(("from", self.received_from.isoformat()))
        if self.received_to is not None:
            pairs.append(("to", self.received_to.isoformat()))
        if self.sort:
            pairs.append(("sort", self.sort))
        return pairs


class BoardQuerySchema(Schema):
    """/board?project=…&priority=P0&priority=P1&category=…&flagged=…&reason=…&assignee=me
    &q=…&from=YYYY-MM-DD&to=YYYY-MM-DD&sort=due. Empty values mean "any"."""

    class Meta:
        unknown = EXCLUDE  # a shared link with an extra parameter still opens

    project = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), allow_none=True)
    priority = fields.List(fields.Enum(Priority, by_value=True), load_default=list)
    category = fields.String(validate=validate.OneOf(CATEGORIES), allow_none=True)
    flagged = fields.Boolean(allow_none=True)
    reason = fields.Enum(Reason, by_value=True, allow_none=True)
    assignee = fields.String(validate=validate.Regexp(ASSIGNEE_PATTERN), allow_none=True)
    q = fields.String(validate=[validate.Length(max=200), _no_nul], allow_none=True)
    received_from = fields.Date(data_key="from", allow_none=True)
    received_to = fields.Date(data_key="to", allow_none=True)
    sort = fields.String(validate=validate.OneOf(list(SORTS), error="Pick an order."),
                         allow_none=True)

    @post_load
    def _to_filters(self, data: dict[str, Any], **kwargs: Any) -> BoardFilters:
        if data.get("received_from") and data.get("received_to") and (
                data["received_from"] > data["received_to"]):
            raise ValidationError("The start is after the end.", field_name="from")
        return BoardFilters(
            project_id=data.get("project"), priorities=tuple(data.get("priority") or ()),
            category=data.get("category"), flagged=data.get("flagged"),
            reason=data.get("reason"), assignee=data.get("assignee"),
            q=(data.get("q") or "").strip() or None,
            received_from=data.get("received_from"), received_to=data.get("received_to"),
            sort=data.get("sort"))


def board_filters(args: Any) -> BoardFilters:
    """Parse the board's query string, treating empty parameters as absent."""
    cleaned: dict[str, Any] = {}
    for key in args:
        values = [v for v in args.getlist(key) if v != ""]
        if values:
            cleaned[key] = values if key == "priority" else values[0]
    return BoardQuerySchema().load(cleaned)


class BulkActionSchema(Schema):
    """One action on one or more tickets (the board's bulk bar and keyboard shortcuts)."""

    ids = fields.List(fields.String(validate=validate.Regexp(PUBLIC_ID_PATTERN,
                                                             error="Not a ticket id.")),
                      required=True,
                      validate=validate.Length(min=1, max=200))
    # "incident": open an incident with the selected tickets (the new-incident form).
    action = fields.String(required=True, validate=validate.OneOf(
        ["move", "assign", "priority", "dismiss", "incident"]))
    value = fields.String(load_default="", validate=validate.Length(max=32))

    @post_load
    def _check(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        action, value = data["action"], data["value"]
        if action == "move" and value not in {s.value for s in Status}:
            raise ValidationError("Pick a column.", field_name="value")
        if action == "priority" and value not in {p.value for p in Priority}:
            raise ValidationError("Pick a priority P0–P4.", field_name="value")
        if action == "assign" and not (value in {"", "me"} or ID_PATTERN.match(value)):
            raise ValidationError("Pick a person.", field_name="value")
        return data


class CommentSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_COMMENT))


class MergeSchema(Schema):
    into = fields.String(required=True, validate=validate.Length(min=1, max=32))
