from __future__ import annotations

import pytest

from app.auth.models import Role
from app.core.errors import Forbidden
from app.projects.service import create_project, normalize_origin, origin_allowed_anywhere


@pytest.mark.parametrize(("given", "expected"), [
    ("https://Example.com", "https://example.com"),
    ("https://example.com:443/", "https://example.com"),
    ("http://localhost:5000", "http://localhost:5000"),
    ("http://example.com:80", "http://example.com"),
])
def test_origins_are_normalised(given, expected):
    assert normalize_origin(given) == expected


@pytest.mark.parametrize("bad", ["example.com", "ftp://example.com", "https://example.com/path",
                                 "https://user@example.com", "null", ""])
def test_non_origins_are_refused(bad):
    with pytest.raises(ValueError):
        normalize_origin(bad)


def test_only_admins_create_projects(make_user):
    with pytest.raises(Forbidden):
        create_project(name="X", origins=[], actor=make_user(Role.LEAD))
    project = create_project(name="X", origins=["https://x.example"], actor=make_user(Role.ADMIN))
    assert project.public_key.startswith("pk_")


def test_preflight_lookup_sees_only_active_projects():
    project = create_project(name="X", origins=["https://x.example"])
    assert origin_allowed_anywhere("https://X.example:443")
    project.active = False
    assert not origin_allowed_anywhere("https://x.example")
