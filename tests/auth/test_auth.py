from __future__ import annotations

import pytest

from app.auth.models import Role
from app.auth.service import create_token, create_user, require
from app.core.errors import Forbidden, Unauthorized, ValidationFailed


def test_roles_are_ordered():
    assert Role.ADMIN.at_least(Role.LEAD) and Role.LEAD.at_least(Role.RESPONDER)
    assert not Role.VIEWER.at_least(Role.RESPONDER)


@pytest.mark.parametrize(("role", "permission", "allowed"), [
    (Role.VIEWER, "reports:read", True),
    (Role.VIEWER, "reports:triage", False),
    (Role.RESPONDER, "reports:triage", True),
    (Role.RESPONDER, "incidents:manage", False),
    (Role.LEAD, "incidents:manage", True),
    (Role.LEAD, "admin", False),
    (Role.ADMIN, "admin", True),
])
def test_require_checks_the_role(make_user, role, permission, allowed):
    user = make_user(role)
    if allowed:
        assert require(user, permission) is user
    else:
        with pytest.raises(Forbidden):
            require(user, permission)


def test_require_refuses_nobody_and_the_inactive(make_user):
    with pytest.raises(Unauthorized):
        require(None, "reports:read")
    user = make_user(Role.ADMIN)
    user.active = False
    with pytest.raises(Unauthorized):
        require(user, "reports:read")


def test_only_admins_create_users_and_others_tokens(make_user):
    lead = make_user(Role.LEAD)
    with pytest.raises(Forbidden):
        create_user(email="x@example.com", name="x", role=Role.VIEWER, actor=lead)
    with pytest.raises(Forbidden):
        create_token(user=make_user(Role.VIEWER), name="t", actor=lead)
    _, raw = create_token(user=lead, name="mine", actor=lead)
    assert raw.startswith("fdk_")


def test_short_passwords_and_non_emails_are_refused():
    with pytest.raises(ValidationFailed):
        create_user(email="x@example.com", name="x", role=Role.VIEWER, password="short")
    with pytest.raises(ValidationFailed):
        create_user(email="not-an-email", name="x", role=Role.VIEWER)
