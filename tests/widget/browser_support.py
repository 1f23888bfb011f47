"""Helpers for the widget's browser tests: a second origin serving host pages, ways to see
inside the widget's closed shadow root the way assistive technology does, and reading back
what the live server stored.

A host page is served by a tiny HTTP server on 127.0.0.1 at another port than the live
Flagdesk server, so the widget runs cross-origin as on a customer's site: a real CORS
preflight, real response headers (a Content-Security-Policy among them).
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.projects.service import create_project
from app.reports.models import Report


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class HostSite:
    """Pages on http://127.0.0.1:<port>, registered by path; anything else is a 404."""

    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                page = site.pages.get(self.path.split("?", 1)[0])
                if page is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(page.body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-site",
                                       daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def add(self, path: str, body: str, *, content_type: str = "text/html; charset=utf-8",
            headers: dict[str, str] | None = None) -> str:
        self.pages[path] = Page(body.encode(), content_type, headers or {})
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def widget_tag(src: str, key: str, **data: str | bool) -> str:
    """The one tag a host adds, with data- attributes (True for a bare attribute)."""
    attrs = "".join(
        f" data-{name.replace('_', '-')}" if value is True
        else f' data-{name.replace("_", "-")}="{html.escape(str(value))}"'
        for name, value in data.items())
    return (f'<script src="{html.escape(src)}" data-project-key="{html.escape(key)}"{attrs} '
            f'async></script>')


def host_page(tag: str, *, lang: str = "en", head: str = "", body: str = "") -> str:
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<title>Host app</title>{head}{tag}</head>'
            f'<body><h1>Host app</h1>{body}</body></html>')


# --- what assistive technology sees (it sees through closed shadow roots) -------------


def ax_nodes(page: Any) -> list[dict[str, Any]]:
    """The page's accessibility tree as Chromium computes it, flattened: role, name,
    and whether the node is focused. Closed shadow roots are included, as screen readers
    see them, which page scripts (and Playwright's locators) cannot."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    found = []
    for node in nodes:
        if node.get("ignored"):
            continue
        props = {p["name"]: p.get("value", {}).get("value") for p in node.get("properties", [])}
        found.append({"role": node.get("role", {}).get("value"),
                      "name": node.get("name", {}).get("value", ""),
                      "focused": bool(props.get("focused")),
                      "checked": props.get("checked"),
                      "invalid": props.get("invalid"),
                      "modal": props.get("modal")})
    return found


def ax_names(page: Any, role: str) -> list[str]:
    return [n["name"] for n in ax_nodes(page) if n["role"] == role]


def ax_focused(page: Any) -> tuple[str, str] | None:
    """(role, name) of the focused node, wherever it is, closed shadow roots included."""
    for node in ax_nodes(page):
        if node["focused"] and node["role"] not in ("RootWebArea", "WebArea"):
            return node["role"], node["name"]
    return None


# --- the live server's side ------------------------------------------------------------------


def widget_project(live_server: Any, site: HostSite) -> dict[str, Any]:
    """A project that the live server's own pages (the demo) and the host site may send to."""
    return live_server.run(lambda: (lambda p: {"id": p.id, "key": p.public_key})(
        create_project(name="Widget", origins=[live_server.url, site.origin])))


def reports(live_server: Any) -> list[dict[str, Any]]:
    """Every stored report, oldest first, as plain values."""

    def read() -> list[dict[str, Any]]:
        return [{"id": r.public_id, "reason": str(r.reason), "description": r.description,
                 "conversation": r.conversation, "model": r.model_name,
                 "response_id": r.response_id, "page_url": r.page_url, "locale": r.locale,
                 "user_agent": r.user_agent, "widget_version": r.widget_version,
                 "metadata": r.extra, "end_user_hash": r.end_user_hash,
                 "contact_email": r.contact_email, "contact_consent": r.contact_consent}
                for r in db.session.scalars(select(Report).order_by(Report.id))]

    return live_server.run(read)


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until `check()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.1)


def dialog(page: Any) -> Any:
    """The widget's dialog (in an open root: data-test-open-shadow)."""
    return page.get_by_role("dialog", name="Report a problem")
