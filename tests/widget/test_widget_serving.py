"""Serving the widget: content type, cache lifetimes of the plain and the versioned URL,
CORS for a public script, the size budget, and the contract between widget.js and the
intake API (reason values, field names, what the CORS answer exposes). Also the demo
page and the `serve` command naming it."""

from __future__ import annotations

import gzip
import re

import pytest

from app.extensions import db
from app.projects.service import create_project
from app.reports.models import Reason
from app.reports.schemas import ReportIntakeSchema
from app.widget import service
from tests.conftest import ORIGIN, report_body

BUDGET = 12 * 1024  # bytes, gzip-compressed
SOURCE = service.DEFAULT_SCRIPT.read_text(encoding="utf-8")


def test_the_plain_url_serves_javascript_briefly_cached_to_any_origin(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == service.DEFAULT_SCRIPT.read_bytes()
    assert response.headers["X-Widget-Version"] == service.load_script().version


def test_the_versioned_url_is_immutable_for_a_year(client):
    digest = service.load_script().digest
    response = client.get(f"/widget.js?v={digest}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # An old version's URL still works (embeds keep working) but is not pinned for a year.
    stale = client.get("/widget.js?v=0123456789abcdef")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "public, max-age=300"
    assert stale.data == response.data


def test_a_revalidation_with_the_etag_is_a_304(client):
    etag = client.get("/widget.js").headers["ETag"]
    again = client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_a_changed_file_is_served_with_a_new_digest(tmp_path, app, client):
    script = tmp_path / "widget.js"
    script.write_text('const VERSION = "9.9.9";')
    app.config["WIDGET_SCRIPT_PATH"] = str(script)
    try:
        first = client.get("/widget.js")
        script.write_text('const VERSION = "9.9.10"; // a release')
        second = client.get("/widget.js")
    finally:
        del app.config["WIDGET_SCRIPT_PATH"]
    assert first.headers["X-Widget-Version"] == "9.9.9"
    assert second.headers["X-Widget-Version"] == "9.9.10"
    assert first.headers["ETag"] != second.headers["ETag"]


def test_the_served_script_is_within_the_gzip_budget(client):
    body = client.get("/widget.js").data
    size = len(gzip.compress(body, compresslevel=9))
    print(f"widget.js: {len(body)} bytes, {size} bytes gzip-compressed (budget {BUDGET})")
    assert size <= BUDGET, f"widget.js is {size} bytes gzip-compressed; the budget is {BUDGET}"


def test_the_script_needs_nothing_a_strict_csp_forbids():
    # No eval in any form, no inline handlers or styles, no markup parsed from strings
    # (which Trusted Types would also refuse), no other script or style fetched.
    for forbidden in ("eval(", "new Function", "setTimeout(\"", "innerHTML", "outerHTML",
                      "insertAdjacentHTML", "document.write", 'setAttribute("style"',
                      "cssText", "import(", "importScripts", "<link", "@import"):
        assert forbidden not in SOURCE, forbidden
    assert "new CSSStyleSheet()" in SOURCE and "adoptedStyleSheets" in SOURCE
    assert 'mode: cfg.testOpenShadow != null ? "open" : "closed"' in SOURCE


def test_the_reasons_are_the_intake_apis():
    found = re.search(r"const REASONS = \[([^\]]+)\]", SOURCE).group(1)
    assert re.findall(r'"([a-z_]+)"', found) == [reason.value for reason in Reason]


def test_every_field_the_widget_sends_is_one_the_api_accepts():
    accepted = set(ReportIntakeSchema().fields)
    sent = {"reason", "description", "conversation", "metadata", "contact_email",
            "contact_consent"}
    sent |= set(re.findall(r'"([a-z_]+)"', re.search(
        r'for \(const k of \[([^\]]+)\]\)', SOURCE).group(1)))
    assert sent == accepted


def test_every_language_has_every_text():
    block = SOURCE[SOURCE.index("const T = {"):SOURCE.index("\nconst lang")]
    languages = re.split(r"\n  (en|es|de|fr|ja): \{", block)[1:]
    keys = {}
    for code, body in zip(languages[::2], languages[1::2], strict=True):
        keys[code] = set(re.findall(r"(?m)(?:^\s+|, )([a-zA-Z]+): (?=[\"\[])", body))
        for name, count in (("r", len(Reason)), ("o", 4)):  # reasons, conversation roles
            texts = re.search(rf"\b{name}: \[([^\]]+)\]", body).group(1)
            assert len(re.findall(r'"[^"]+"', texts)) == count, (code, name)
    assert list(keys) == ["en", "es", "de", "fr", "ja"]
    assert all(found == keys["en"] for found in keys.values()), keys


def test_a_cors_answer_lets_the_widget_read_retry_after(submit, client, project):
    accepted = submit(report_body())
    assert accepted.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert accepted.headers["Access-Control-Allow-Origin"] == ORIGIN


# --- the demo page ------------------------------------------------------------------------------


def test_the_demo_page_embeds_the_first_active_projects_key(client):
    stopped = create_project(name="Old", origins=[ORIGIN])
    stopped.active = False
    db.session.commit()
    live = create_project(name="Live", origins=[ORIGIN])
    page = client.get("/demo").get_data(as_text=True)
    digest = service.load_script().digest
    assert f'data-project-key="{live.public_key}"' in page
    assert stopped.public_key not in page
    assert f'src="/widget.js?v={digest}"' in page
    assert 'data-trigger="#help-report"' in page
    assert "data-test-open-shadow" not in page
    # Only scripts with a src: the app's own policy (no inline script) holds on this page.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
    assert "<style" not in page and " style=" not in page


def test_the_demo_page_without_a_project_says_how_to_make_one(client):
    response = client.get("/demo")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "flask demo" in page and "<script src=\"/widget.js" not in page
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_demo_page_picks_a_language(client, project):
    assert '<html lang="ja">' in client.get("/demo?lang=ja").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/demo?lang=xx").get_data(as_text=True)


def test_serve_names_the_demo_page(runner, monkeypatch):
    import app.cli

    monkeypatch.setattr(app.cli, "run_simple", lambda *args, **kwargs: None)
    result = runner.invoke(args=["serve", "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:5123/demo" in result.output


@pytest.mark.parametrize("path", ["/widget.js", "/demo"])
def test_widget_routes_need_no_sign_in(client, path):
    assert client.get(path).status_code == 200
