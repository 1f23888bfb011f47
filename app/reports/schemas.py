"""What goes in and out of the reports API. Every limit here is part of the public
contract and appears in the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.moderation import CATEGORIES
from app.reports.models import Priority, Reason, Status, TaggingState

MAX_BODY_BYTES = 64 * 1024
MAX_DESCRIPTION = 5000
MAX_TURNS = 20
MAX_TURN_CHARS = 8000
MAX_EXTRA_KEYS = 20
MAX_EXTRA_VALUE_CHARS = 500
TURN_ROLES = ("user", "assistant", "system", "tool")
TURN_FIELDS = ("role", "content")
# BCP 47 in its common shapes: "en", "pt-BR", "zh-Hant-TW".
LOCALE_PATTERN = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$")


class CleanString(fields.String):
    """A string with surrounding white space removed and no NUL characters, which
    PostgreSQL cannot store and no honest client sends."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        return text.strip()


def _text(max_length: int, **kwargs: Any) -> CleanString:
    return CleanString(validate=validate.Length(max=max_length), **kwargs)


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_EXTRA_VALUE_CHARS and "\x00" not in value
    return value is None or isinstance(value, bool | int | float)


# Intake's two structured fields are each checked by one field of their own rather than
# by a nested schema (a turn) or a Dict of validated keys (the host context): marshmallow
# runs a whole schema load per turn and a field per key, and those were half of intake's
# validation time (bench/intake.py). The rules are the same, errors still name the field
# (a turn's, by its index and name), and `metadata` writes their OpenAPI description.


class ConversationTurn(fields.Field):
    """One turn of the conversation: {"role": one of TURN_ROLES, "content": 1 to
    MAX_TURN_CHARS characters}, both required, nothing else; text as CleanString makes it."""

    default_error_messages = {"invalid": "A turn is an object with role and content."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        errors = {name: ["Unknown field."] for name in value if name not in TURN_FIELDS}
        turn: dict[str, str] = {}
        for name in TURN_FIELDS:
            text = value.get(name)
            if not isinstance(text, str):
                errors[name] = ["Not a valid string." if name in value
                                else "Missing data for required field."]
            elif "\x00" in text:
                errors[name] = ["Must not contain NUL characters."]
            else:
                turn[name] = text.strip()
        if "role" in turn and turn["role"] not in TURN_ROLES:
            errors["role"] = [f"Must be one of: {', '.join(TURN_ROLES)}."]
        if "content" in turn and not 1 <= len(turn["content"]) <= MAX_TURN_CHARS:
            errors["content"] = [f"Length must be between 1 and {MAX_TURN_CHARS}."]
        if errors:
            raise ValidationError(errors)
        return turn


TURN_DOCUMENT = {
    "type": "object", "required": ["role", "content"], "additionalProperties": False,
    "properties": {"role": {"type": "string", "enum": list(TURN_ROLES)},
                   "content": {"type": "string", "minLength": 1, "maxLength": MAX_TURN_CHARS}},
}


class HostContext(fields.Field):
    """Flat host context: up to MAX_EXTRA_KEYS keys of 1 to 64 characters (surrounding
    white space removed), each value a string of up to MAX_EXTRA_VALUE_CHARS, a number, a
    boolean or null."""

    default_error_messages = {"invalid": "Not a valid mapping type."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        if len(value) > MAX_EXTRA_KEYS:
            raise ValidationError(f"At most {MAX_EXTRA_KEYS} keys.")
        context = {key.strip(): item for key, item in value.items()}
        if len(context) < len(value) or not all(
                1 <= len(key) <= 64 and "\x00" not in key for key in context):
            raise ValidationError("Keys have 1 to 64 characters, distinct without the "
                                  "white space around them, and no NUL.")
        bad = [key for key, item in context.items() if not _scalar(item)]
        if bad:
            raise ValidationError(f"Values must be short strings, numbers, booleans or null: "
                                  f"{', '.join(sorted(bad))}.")
        return context


class ReportIntakeSchema(Schema):
    """A report as the widget (or any client) sends it. Unknown fields are refused."""

    reason = fields.Enum(Reason, by_value=True, required=True,
                         metadata={"description": "What the user says went wrong."})
    description = _text(MAX_DESCRIPTION, load_default="",
                        metadata={"description": "The user's own words."})
    conversation = fields.List(
        ConversationTurn(metadata=TURN_DOCUMENT), load_default=list,
        validate=validate.Length(max=MAX_TURNS),
        metadata={"description": "The turns the user complains about, oldest first."},
    )
    model = _text(200, load_default=None, allow_none=True)
    response_id = _text(200, load_default=None, allow_none=True,
                        metadata={"description": "The host app's response or request id."})
    page_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=None,
                          allow_none=True, validate=validate.Length(max=2048))
    locale = CleanString(load_default=None, allow_none=True,
                         validate=[validate.Length(max=35), validate.Regexp(LOCALE_PATTERN)])
    user_agent = _text(512, load_default=None, allow_none=True)
    widget_version = _text(32, load_default=None, allow_none=True)
    end_user_id = _text(256, load_default=None, allow_none=True,
                        metadata={"description": "The host's id for the user. Stored only as "
                                                 "an HMAC-SHA256 with a server-side pepper."})
    contact_email = fields.Email(load_default=None, allow_none=True,
                                 validate=validate.Length(max=254))
    contact_consent = fields.Boolean(
        load_default=False,
        metadata={"description": "Must be true when contact_email is given."},
    )
    metadata = HostContext(load_default=dict, metadata={
        "type": "object", "maxProperties": MAX_EXTRA_KEYS,
        "additionalProperties": {"nullable": True, "anyOf": [
            {"type": "string", "maxLength": MAX_EXTRA_VALUE_CHARS}, {"type": "number"},
            {"type": "boolean"}]},
        "description": f"Flat host context: up to {MAX_EXTRA_KEYS} keys of 1 to 64 "
                       f"characters; values strings ({MAX_EXTRA_VALUE_CHARS} characters), "
                       "numbers, booleans or null."})

    @validates_schema
    def _check_whole(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("description") and not data.get("conversation"):
            raise ValidationError("Say what went wrong, or include the conversation.",
                                  field_name="description")
        if data.get("contact_email") and not data.get("contact_consent"):
            raise ValidationError("Contact e-mail needs contact_consent: true.",
                                  field_name="contact_consent")


class ReportReceiptSchema(Schema):
    id = fields.String(metadata={"description": "The report's public id."})
    status = fields.Enum(Status, by_value=True)
    received_at = fields.AwareDateTime()
    status_url = fields.Url(metadata={"description": "JSON status; pass ?token=."})
    status_page_url = fields.Url(metadata={"description": "The reporter's status page."})
    status_token = fields.String(metadata={"description": "Proves the caller sent the report."})


class PublicReplySchema(Schema):
    body = fields.String()
    at = fields.AwareDateTime(attribute="created_at")


class ReportStatusSchema(Schema):
    id = fields.String(attribute="public_id")
    status = fields.Enum(Status, by_value=True)
    received_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    replies = fields.List(fields.Nested(PublicReplySchema))
    merged = fields.Boolean(metadata={"description": "Handled together with other reports "
                                                     "of the same problem."})


class StatusQuerySchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


MAX_REPORTER_MESSAGE = 5000


class ReporterMessageSchema(Schema):
    """The reporter's answer, sent with the status token intake gave them."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=200),
                          metadata={"description": "The status token from the receipt."})
    body = CleanString(required=True, validate=validate.Length(min=1, max=MAX_REPORTER_MESSAGE),
                       metadata={"description": "The reporter's answer (plain text)."})


class ModerationTagSchema(Schema):
    field = fields.String()
    category = fields.String()
    score = fields.Float()
    flagged = fields.Boolean()
    source = fields.String(metadata={"description": "The backend: local or openai."})
    model = fields.String()
    created_at = fields.AwareDateTime()


class TurnOutSchema(Schema):
    role = fields.String()
    content = fields.String()


class ReportOutSchema(Schema):
    id = fields.String(attribute="public_id")
    project_id = fields.Integer()
    received_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    reason = fields.Enum(Reason, by_value=True)
    description = fields.String()
    conversation = fields.List(fields.Nested(TurnOutSchema))
    model = fields.String(attribute="model_name", allow_none=True)
    response_id = fields.String(allow_none=True)
    page_url = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    widget_version = fields.String(allow_none=True)
    metadata = fields.Dict(attribute="extra")
    end_user_hash = fields.String(allow_none=True)
    contact_email = fields.String(allow_none=True)
    contact_consent = fields.Boolean()
    status = fields.Enum(Status, by_value=True)
    priority = fields.Enum(Priority, by_value=True)
    tagging_state = fields.Enum(TaggingState, by_value=True)
    tagged_at = fields.AwareDateTime(allow_none=True)
    tags = fields.List(fields.Nested(ModerationTagSchema))


class ReportPageSchema(Schema):
    items = fields.List(fields.Nested(ReportOutSchema))
    next_cursor = fields.String(allow_none=True,
                                metadata={"description": "Pass as ?cursor= for the next page."})


class ReportListQuerySchema(Schema):
    project_id = fields.Integer(validate=validate.Range(min=1))
    status = fields.Enum(Status, by_value=True)
    priority = fields.Enum(Priority, by_value=True)
    category = CleanString(validate=validate.OneOf(CATEGORIES))
    flagged = fields.Boolean()
    cursor = CleanString(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
