"""Browser tests: Debian's Chromium driven by Playwright against a live server.

The live server runs the real app in a thread on 127.0.0.1 with its own database (a fresh
SQLite file, or a fresh PostgreSQL database when TEST_DATABASE_URL is PostgreSQL), CSRF
on, and real commits; each test starts from empty tables. Without /usr/bin/chromium the
tests are skipped with a message that says how to install it (`make test` and `.ci/run`
install it).
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app.auth.models import Role
from app.auth.service import create_user
from app.extensions import db
from tests.conftest import app_config, build_app, fresh_database

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery staple"
# Flags that keep a headless Chromium quiet on a machine without a network (it would
# otherwise try to reach Google's services at every start).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@dataclass
class LiveServer:
    app: Flask
    url: str

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a function (a service, a query) inside the live server's app context; return
        plain values from it, since its session ends with the call."""
        with self.app.app_context():
            try:
                return function(*args, **kwargs)
            finally:
                db.session.remove()

    def user(self, role: Role = Role.RESPONDER, **kwargs: Any) -> Person:
        n = uuid.uuid4().hex[:6]

        def make() -> Person:
            user, _ = create_user(email=kwargs.get("email", f"{role}-{n}@example.com"),
                                  name=kwargs.get("name", f"{str(role).title()} {n}"),
                                  role=role, password=PASSWORD)
            return Person(id=user.id, email=user.email, name=user.name, role=str(user.role))

        return self.run(make)


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str
    role: str


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live")
    url, drop = fresh_database(tmp, "browser")
    app = build_app(app_config(url, tmp, SERVER_NAME=None, PREFERRED_URL_SCHEME="http",
                               TESTING=False, WTF_CSRF_ENABLED=True))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()
        drop()


@pytest.fixture(autouse=True)
def _empty_tables(live_server: LiveServer) -> Iterator[None]:
    yield
    with live_server.app.app_context():
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.session.remove()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: run `make test` (it installs "
                    "Debian's chromium as root) or `apt-get install -y chromium`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageProblems:
    """What the page complained about: script errors and CSP violations."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, page_problems: PageProblems) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda error: page_problems.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error"
            and page_problems.errors.append(message.text))
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def sign_in(live_server: LiveServer, page: Any) -> Callable[..., Person]:
    """Sign in through the real login form as a new user of the given role."""

    def as_role(role: Role = Role.RESPONDER, **kwargs: Any) -> Person:
        user = live_server.user(role, **kwargs)
        page.goto(live_server("/login"))
        page.get_by_label("E-mail").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server("/board") + "*")
        return user

    return as_role
