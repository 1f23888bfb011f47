"""The reports API: public intake (called from browsers on other origins), the
reporter's status, and the token-authenticated staff reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth.api import token_required
from app.core import ratelimit
from app.core.errors import Forbidden, Unauthorized, ValidationFailed
from app.core.http import json_only
from app.projects import cors
from app.projects.service import IntakeProject, intake_project, origin_allowed_for
from app.reports import schemas, service
from app.tasks import enqueue_tagging

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                description="Report intake (public) and reading reports (staff).")

INTAKE_HEADERS = ("Content-Type", "X-Project-Key", "Idempotency-Key")
INTAKE_SCHEMA = schemas.ReportIntakeSchema()


def _project_key() -> str:
    return request.headers.get("X-Project-Key", "")


def _intake_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count every intake request, even one refused later (bad JSON, unknown key), per
    client address and per project key."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        config = current_app.config
        ratelimit.enforce(config["INTAKE_LIMIT_PER_ADDRESS"], "intake-address",
                          ratelimit.client_address())
        ratelimit.enforce(config["INTAKE_LIMIT_PER_PROJECT"], "intake-project", _project_key())
        return view(*args, **kwargs)

    return limited


def _intake_project(view: Callable[..., Any]) -> Callable[..., Any]:
    """Check the project's key and the calling page's origin before the body is read: a
    caller without a valid key, or from another origin, learns nothing about the body
    (401 or 403, not 400 or 422). The view gets the project as `project`."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        project = intake_project(
            _project_key(), max_age=current_app.config["INTAKE_PROJECT_CACHE_SECONDS"])
        if project is None:
            raise Unauthorized("Unknown or disabled project key (X-Project-Key).")
        origin = request.headers.get("Origin")
        if origin is not None:
            if not origin_allowed_for(project, origin):
                cors.deny_origin()
                raise Forbidden(f"Origin {origin} may not send reports to this project.")
            cors.allow_origin_checked()
        return view(*args, project=project, **kwargs)

    return checked


@blp.before_request
def _preflight() -> Any:
    if request.method == "OPTIONS":
        return cors.preflight(methods=("POST",), headers=INTAKE_HEADERS)
    return None


@blp.route("")
class Reports(MethodView):
    @_intake_limits
    @_intake_project
    @json_only(max_bytes=schemas.MAX_BODY_BYTES)
    # Instances, not classes: webargs would build a schema per request otherwise.
    @blp.arguments(INTAKE_SCHEMA)
    @blp.response(201, schemas.ReportReceiptSchema)
    @blp.alt_response(200, schema=schemas.ReportReceiptSchema,
                      description="An Idempotency-Key replay: the first report, nothing new.")
    @blp.doc(parameters=[
        {"in": "header", "name": "X-Project-Key", "required": True,
         "schema": {"type": "string"}, "description": "The project's public key (pk_…)."},
        {"in": "header", "name": "Idempotency-Key", "required": False,
         "schema": {"type": "string", "maxLength": 255},
         "description": "Retries with the same key return the first report."},
    ])
    def post(self, data: dict[str, Any], project: IntakeProject) -> Any:
        """Submit a report (public; authenticated by the project's key)"""
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and (len(key) > 255 or not key.isprintable()):
            raise ValidationFailed("Idempotency-Key must be printable, at most 255 characters.",
                                   fields={"Idempotency-Key": ["Invalid header."]})
        data.setdefault("user_agent", None)
        data["user_agent"] = data["user_agent"] or (request.user_agent.string[:512] or None)
        receipt = service.submit_report(
            project=project, data=data, idempotency_key=key,
            pepper=current_app.config["END_USER_PEPPER"], secret=current_app.config["SECRET_KEY"])
        if receipt.created:
            enqueue_tagging(receipt.report_id)
        return _receipt_response(receipt)

    @token_required
    @blp.arguments(schemas.ReportListQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, schemas.ReportPageSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, query: dict[str, Any]) -> Any:
        """List reports, newest first (staff; bearer token)"""
        return service.list_reports(actor=g.api_user, **query)


@blp.route("/<public_id>")
class ReportDetail(MethodView):
    @token_required
    @blp.response(200, schemas.ReportOutSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    def get(self, public_id: str) -> Any:
        """One report with its moderation tags (staff; bearer token)"""
        return service.get_report(actor=g.api_user, public_id=public_id)


@blp.route("/<public_id>/status")
class ReportStatus(MethodView):
    @blp.arguments(schemas.StatusQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, schemas.ReportStatusSchema)
    def get(self, query: dict[str, Any], public_id: str) -> Any:
        """The reporter's view of a report: status, last update, public replies"""
        return service.reporter_status(public_id=public_id, token=query["token"])


# The reporter's answers: public (the status token is the credential), so limited per
# client address and per report, counting refused requests too.
REPORTER_MESSAGE_LIMIT_PER_ADDRESS = "10/minute;60/hour"
REPORTER_MESSAGE_LIMIT_PER_REPORT = "20/hour"
MESSAGE_BODY_BYTES = 16 * 1024


def _message_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        config = current_app.config
        ratelimit.enforce(config.get("REPORTER_MESSAGE_LIMIT_PER_ADDRESS",
                                     REPORTER_MESSAGE_LIMIT_PER_ADDRESS),
                          "reporter-message-address", ratelimit.client_address())
        ratelimit.enforce(config.get("REPORTER_MESSAGE_LIMIT_PER_REPORT",
                                     REPORTER_MESSAGE_LIMIT_PER_REPORT),
                          "reporter-message-report", str(kwargs.get("public_id", ""))[:64])
        return view(*args, **kwargs)

    return limited


@blp.route("/<public_id>/messages")
class ReporterMessages(MethodView):
    @_message_limits
    @json_only(max_bytes=MESSAGE_BODY_BYTES)
    @blp.arguments(schemas.ReporterMessageSchema)
    @blp.response(201, schemas.ReportStatusSchema)
    def post(self, data: dict[str, Any], public_id: str) -> Any:
        """The reporter answers (status token in the body); a ticket waiting on them
        moves on"""
        return service.reporter_answer(public_id=public_id, token=data["token"],
                                       body=data["body"])


def _receipt_response(receipt: service.Receipt) -> Response:
    """The receipt as JSON: 201, or 200 for an Idempotency-Key replay. Written here rather
    than dumped through ReportReceiptSchema by @blp.response, which passes a Response through
    and still documents it (tests/test_openapi.py holds the two together): a schema dump
    and jsonify cost intake more than this whole function."""
    public_id = receipt.public_id
    body = {
        "id": public_id,
        "status": str(receipt.status),
        "received_at": receipt.received_at.isoformat(),
        "status_url": url_for("reports.ReportStatus", public_id=public_id, _external=True),
        "status_page_url": url_for("status_pages.status_page", public_id=public_id,
                                   token=receipt.status_token, _external=True),
        "status_token": receipt.status_token,
    }
    return current_app.response_class(json.dumps(body), 201 if receipt.created else 200,
                                      mimetype="application/json")


@blp.after_request
def _cors(response: Any) -> Any:
    if request.endpoint == "reports.Reports" and request.method == "POST":
        cors.add_cors_headers(response)
    return response
