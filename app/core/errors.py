"""AppError and its kinds, and the one JSON error shape every API error uses:

    {"error": {"code": "...", "message": "...", "fields": {...}}}

Services raise AppError subclasses; views never build error responses by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


class Unauthorized(AppError):
    status, code = 401, "unauthorized"


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(AppError):
    status, code = 422, "validation_failed"


class RateLimited(AppError):
    status, code = 429, "rate_limited"


# Codes for errors raised by Flask, werkzeug, webargs and Flask-Limiter.
_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited",
    500: "internal_error",
}


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _respond(status: int, code: str, message: str, fields: dict | None = None,
             headers: dict[str, str] | None = None) -> Response:
    if _wants_json():
        response = jsonify(error_body(code, message, fields))
    else:
        response = Response(render_template("error.html", status=status, message=message),
                            mimetype="text/html")
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _fields_from_webargs(data: dict | None) -> dict:
    """webargs reports {"json": {...}, "headers": {...}}; clients want the field map."""
    messages = (data or {}).get("messages") or {}
    if len(messages) == 1:
        return next(iter(messages.values()))
    return messages


def _http_message(error: HTTPException) -> str:
    if error.code == 422:
        return "Some fields are missing or invalid."
    if error.code == 400 and "JSON" in (error.description or ""):
        return "The request body is not valid JSON."
    if error.code == 429:
        return f"Too many requests: the limit is {error.description}. Retry later."
    return error.description or error.name


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(error: AppError) -> Response:
        return _respond(error.status, error.code, error.message, error.fields, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        fields = _fields_from_webargs(getattr(error, "data", None)) if status == 422 else {}
        headers = {}
        if error.response is not None and "Retry-After" in error.response.headers:
            headers["Retry-After"] = error.response.headers["Retry-After"]
        if status == 405:
            headers["Allow"] = ", ".join(error.valid_methods or [])  # type: ignore[attr-defined]
        return _respond(status, _HTTP_CODES.get(status, "http_error"), _http_message(error),
                        fields, headers)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", "Something went wrong on our side.")
