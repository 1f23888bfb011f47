"""The reporter's status page: what became of their report, without signing in."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.core.errors import NotFound
from app.reports import service

status_pages = Blueprint("status_pages", __name__)


@status_pages.get("/status/<public_id>")
def status_page(public_id: str) -> tuple[str, int, dict[str, str]]:
    token = request.args.get("token", "")
    if not token:
        raise NotFound("No report with this id and token.")
    view = service.reporter_status(public_id=public_id, token=token)
    html = render_template("reports/status.html", report=view)
    # The token is in the URL: keep it out of other sites' logs and shared caches.
    return html, 200, {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
