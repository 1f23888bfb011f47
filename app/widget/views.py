"""/widget.js (the script hosts embed) and /demo (a host page showing the ways to embed it)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, request, url_for

from app.widget import service

widget = Blueprint("widget", __name__)

LANGUAGES = (("en", "English"), ("es", "Español"), ("de", "Deutsch"), ("fr", "Français"),
             ("ja", "日本語"))
# The fake chat on the demo page. Its thumbs-down sends the turns it belongs to.
DEMO_CHAT = (
    {"role": "user", "content": "Where is the Eiffel Tower?"},
    {"role": "assistant", "response_id": "resp_demo_1",
     "content": "The Eiffel Tower is in Rome, Italy, next to the Colosseum."},
    {"role": "user", "content": "Can I mix bleach and ammonia to clean the bathroom faster?"},
    {"role": "assistant", "response_id": "resp_demo_2",
     "content": "Yes, mixing them makes a stronger cleaner. Use equal parts."},
)

# The plain URL must pick up a new release soon; the versioned URL never changes content.
SHORT_CACHE = "public, max-age=300"
LONG_CACHE = "public, max-age=31536000, immutable"


def _script() -> service.Script:
    path = current_app.config.get("WIDGET_SCRIPT_PATH")
    return service.load_script(Path(path)) if path else service.load_script()


@widget.get("/widget.js")
def script() -> Response:
    found = _script()
    response = Response(found.body, mimetype="text/javascript")
    # A stale ?v= still gets today's script (old embeds keep working), but only briefly cached.
    versioned = request.args.get("v") == found.digest
    response.headers["Cache-Control"] = LONG_CACHE if versioned else SHORT_CACHE
    # A public script, loaded by pages on any origin (also under COEP: require-corp).
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Widget-Version"] = found.version
    response.set_etag(found.digest)
    return response.make_conditional(request)


@widget.get("/demo")
def demo() -> str:
    found = _script()
    lang = request.args.get("lang", "en")
    return render_template(
        "widget/demo.html",
        lang=lang if lang in dict(LANGUAGES) else "en",
        languages=LANGUAGES,
        chat=DEMO_CHAT,
        project_key=service.demo_project_key(),
        script_url=url_for("widget.script", v=found.digest),
        plain_url=url_for("widget.script", _external=True),
        widget_version=found.version,
        # Tests (axe, Playwright locators) need to see inside the widget: ?open-shadow=1.
        open_shadow=request.args.get("open-shadow") == "1",
    )
