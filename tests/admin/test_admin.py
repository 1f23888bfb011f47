"""The admin pages: users (create, role, deactivate, reset password) and projects (create,
edit name and origins, activate, rotate the public key). Only admins; every change audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth import service as users
from app.auth.models import Role, User
from app.auth.service import authenticate_token, create_token, load_user, sign_in
from app.core.errors import Conflict, Forbidden
from app.extensions import db
from app.projects import service as projects
from app.projects.models import Project
from tests.conftest import ORIGIN, report_body
from tests.web import post_form
from tests.web import sign_in as sign_in_client


@pytest.fixture
def admin(client, make_user):
    user = make_user(Role.ADMIN, name="Ada Admin")
    sign_in_client(client, user)
    return user


def audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def intake(client, key: str, origin: str | None = ORIGIN):
    headers = {"X-Project-Key": key} | ({"Origin": origin} if origin else {})
    return client.post("/api/v1/reports", json=report_body(), headers=headers)


def fresh(model, ident):
    db.session.expire_all()
    return db.session.get(model, ident)


# --- who may ------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER, Role.LEAD])
def test_only_admins_see_the_admin_pages(client, make_user, project, role):
    sign_in_client(client, make_user(role))
    for path in ("/admin/users", "/admin/projects", f"/admin/projects/{project.id}"):
        assert client.get(path).status_code == 403
    response = post_form(client, f"/admin/projects/{project.id}/rotate-key", {"confirm": "yes"})
    assert response.status_code == 403
    assert fresh(Project, project.id).public_key == project.public_key


def test_strangers_are_sent_to_sign_in(client):
    response = client.get("/admin/users")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("call", [
    lambda actor: users.list_users(actor=actor),
    lambda actor: users.change_role(actor=actor, user_id=actor.id, role="admin"),
    lambda actor: users.set_user_active(actor=actor, user_id=actor.id, active=False),
    lambda actor: users.reset_password(actor=actor, user_id=actor.id),
    lambda actor: projects.list_projects(actor=actor),
    lambda actor: projects.rotate_key(actor=actor, project_id=1),
    lambda actor: projects.update_project(actor=actor, project_id=1, name="x", origins=[]),
    lambda actor: projects.set_project_active(actor=actor, project_id=1, active=False),
])
def test_the_admin_services_check_the_role(make_user, call):
    with pytest.raises(Forbidden):
        call(make_user(Role.LEAD))


# --- users --------------------------------------------------------------------------


def test_the_users_page_lists_everyone(client, admin, make_user):
    make_user(Role.VIEWER, name="Vic Viewer", email="vic@example.com")
    html = client.get("/admin/users").get_data(as_text=True)
    assert "Vic Viewer" in html and "vic@example.com" in html and "Ada Admin" in html
    assert "(you)" in html
    assert 'aria-label="Admin"' in html


def test_creating_a_user_shows_the_generated_password_once(client, admin):
    response = post_form(client, "/admin/users",
                         {"email": "New.Person@Example.com", "name": "New Person",
                          "role": "lead"})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    password = re.search(r'data-testid="new-password">([^<]+)<', html).group(1)
    assert "shown only this once" in html
    user = users.find_user("new.person@example.com")
    assert user.role == Role.LEAD and user.name == "New Person"
    assert sign_in(email="new.person@example.com", password=password) is not None
    assert password not in client.get("/admin/users").get_data(as_text=True)
    (event,) = [e for e in audit("user.created") if e.subject_id == str(user.id)]
    assert event.actor_id == admin.id and password not in str(event.after)


@pytest.mark.parametrize(("form", "status", "message"), [
    ({"email": "not-an-email", "name": "X", "role": "viewer"}, 422, "Not an e-mail address."),
    ({"email": "x@example.com", "name": "  ", "role": "viewer"}, 422, "Give a name"),
    ({"email": "x@example.com", "name": "X", "role": "owner"}, 422, "Pick a role."),
    ({"email": "ADA@example.com", "name": "X", "role": "viewer"}, 409, "exists already"),
])
def test_creating_a_user_with_bad_input_says_why(client, admin, make_user, form, status,
                                                message):
    make_user(Role.VIEWER, email="ada@example.com")
    count = db.session.scalar(select(func.count()).select_from(User))
    response = post_form(client, "/admin/users", form)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html
    assert f'value="{form["name"].strip()}"' in html  # what was typed is kept
    assert db.session.scalar(select(func.count()).select_from(User)) == count


def test_changing_a_role(client, admin, make_user):
    user = make_user(Role.VIEWER, name="Vic")
    response = post_form(client, f"/admin/users/{user.id}/role", {"role": "responder"},
                         follow_redirects=True)
    assert "Vic is now responder." in response.get_data(as_text=True)
    assert fresh(User, user.id).role == Role.RESPONDER
    (event,) = audit("user.role_changed")
    assert (event.before, event.after) == ({"role": "viewer"}, {"role": "responder"})


def test_an_unknown_role_changes_nothing(client, admin, make_user):
    user = make_user(Role.VIEWER)
    response = post_form(client, f"/admin/users/{user.id}/role", {"role": "root"},
                         follow_redirects=True)
    assert "Role not changed: Pick a role." in response.get_data(as_text=True)
    assert fresh(User, user.id).role == Role.VIEWER


def test_deactivating_signs_a_user_out_and_stops_their_tokens(client, admin, make_user):
    user = make_user(Role.RESPONDER, name="Rex")
    _, raw = create_token(user=user, name="cli")
    response = post_form(client, f"/admin/users/{user.id}/active", {"active": "false"},
                         follow_redirects=True)
    assert "Rex is deactivated." in response.get_data(as_text=True)
    assert load_user(user.get_id()) is None and authenticate_token(raw) is None
    assert sign_in(email=user.email, password="correct horse battery") is None
    post_form(client, f"/admin/users/{user.id}/active", {"active": "true"})
    assert load_user(user.get_id()) is not None
    assert [e.action for e in audit("user.deactivated") + audit("user.reactivated")] == [
        "user.deactivated", "user.reactivated"]


def test_the_last_active_admin_cannot_demote_or_deactivate_themselves(client, admin):
    for path, form in ((f"/admin/users/{admin.id}/role", {"role": "lead"}),
                       (f"/admin/users/{admin.id}/active", {"active": "false"})):
        html = post_form(client, path, form, follow_redirects=True).get_data(as_text=True)
        assert "You are the last active admin: make someone else an admin first." in html
    me = fresh(User, admin.id)
    assert me.role == Role.ADMIN and me.active
    assert audit("user.role_changed") == [] and audit("user.deactivated") == []


def test_an_admin_may_step_down_when_another_admin_remains(make_user):
    first, second = make_user(Role.ADMIN), make_user(Role.ADMIN)
    users.change_role(actor=first, user_id=first.id, role=Role.LEAD)
    with pytest.raises(Conflict, match="You are the last active admin"):
        users.set_user_active(actor=second, user_id=second.id, active=False)
    # An inactive admin does not count as one.
    third = make_user(Role.ADMIN)
    users.set_user_active(actor=second, user_id=third.id, active=False)
    with pytest.raises(Conflict):
        users.change_role(actor=second, user_id=second.id, role=Role.VIEWER)


def test_resetting_a_password(client, admin, make_user):
    user = make_user(Role.RESPONDER, name="Rae")
    response = post_form(client, f"/admin/users/{user.id}/password")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "New password for Rae" in html
    password = re.search(r'data-testid="new-password">([^<]+)<', html).group(1)
    assert sign_in(email=user.email, password=password) is not None
    assert sign_in(email=user.email, password="correct horse battery") is None
    (event,) = audit("user.password_reset")
    assert event.actor_id == admin.id and event.after is None


def test_acting_on_an_unknown_user_says_so(client, admin):
    response = post_form(client, "/admin/users/99999/role", {"role": "viewer"},
                         follow_redirects=True)
    assert "No user 99999." in response.get_data(as_text=True)


# --- projects -----------------------------------------------------------------------


def test_the_projects_page_lists_projects_with_keys_and_origins(client, admin, project):
    html = client.get("/admin/projects").get_data(as_text=True)
    assert project.name in html and project.public_key in html and ORIGIN in html


def test_creating_a_project_normalises_its_origins(client, admin):
    response = post_form(client, "/admin/projects", {
        "name": "  Help centre ",
        "origins": "https://Help.Example.com:443/\n\n  http://localhost:8080 \nhttps://help.example.com",
    })
    assert response.status_code == 303
    project = db.session.scalar(select(Project).where(Project.name == "Help centre"))
    assert response.headers["Location"] == f"/admin/projects/{project.id}"
    assert project.allowed_origins == ["http://localhost:8080", "https://help.example.com"]
    assert intake(client, project.public_key, "https://help.example.com").status_code == 201


def test_bad_origins_are_refused_line_by_line(client, admin):
    response = post_form(client, "/admin/projects", {
        "name": "X", "origins": "https://ok.example\nok.example\nhttps://x.example/path"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Line 2: &#39;ok.example&#39; is not an http(s) origin" in html
    assert "Line 3: &#39;https://x.example/path&#39; is not an http(s) origin" in html
    assert "https://x.example/path</textarea>" in html  # what was typed is kept
    assert db.session.scalar(select(func.count()).select_from(Project)) == 0


def test_editing_a_projects_name_and_origins(client, admin, project):
    page = client.get(f"/admin/projects/{project.id}").get_data(as_text=True)
    assert f">{ORIGIN}</textarea>" in page
    response = post_form(client, f"/admin/projects/{project.id}",
                         {"name": "Chat (web)", "origins": "https://NEW.example.com\n"},
                         follow_redirects=True)
    assert "Project saved." in response.get_data(as_text=True)
    saved = fresh(Project, project.id)
    assert saved.name == "Chat (web)" and saved.allowed_origins == ["https://new.example.com"]
    (event,) = audit("project.updated")
    assert event.before == {"name": "Chat", "origins": [ORIGIN]}
    assert event.after == {"name": "Chat (web)", "origins": ["https://new.example.com"]}
    assert intake(client, saved.public_key, ORIGIN).status_code == 403
    assert intake(client, saved.public_key, "https://new.example.com").status_code == 201


def test_a_bad_edit_changes_nothing(client, admin, project):
    response = post_form(client, f"/admin/projects/{project.id}",
                         {"name": "", "origins": "ftp://files.example"})
    assert response.status_code == 422
    assert "Give the project a name" in response.get_data(as_text=True)
    response = post_form(client, f"/admin/projects/{project.id}",
                         {"name": "Chat", "origins": "ftp://files.example"})
    assert "Line 1: &#39;ftp://files.example&#39; is not an http(s) origin" in (
        response.get_data(as_text=True))
    saved = fresh(Project, project.id)
    assert saved.name == "Chat" and saved.allowed_origins == [ORIGIN]
    assert audit("project.updated") == []


def test_deactivating_a_project_stops_its_intake(client, admin, project):
    response = post_form(client, f"/admin/projects/{project.id}/active", {"active": "false"},
                         follow_redirects=True)
    assert "Chat no longer accepts reports." in response.get_data(as_text=True)
    assert intake(client, project.public_key).status_code == 401
    post_form(client, f"/admin/projects/{project.id}/active", {"active": "true"})
    assert intake(client, project.public_key).status_code == 201
    assert len(audit("project.deactivated")) == len(audit("project.activated")) == 1


def test_rotating_the_key_needs_a_confirmation(client, admin, project):
    response = post_form(client, f"/admin/projects/{project.id}/rotate-key")
    assert response.status_code == 422
    assert "tick the box to confirm" in response.get_data(as_text=True)
    assert fresh(Project, project.id).public_key == project.public_key


def test_rotating_the_key_shows_the_new_one_and_the_old_one_stops_working(client, admin,
                                                                          project):
    old = project.public_key
    assert intake(client, old).status_code == 201
    response = post_form(client, f"/admin/projects/{project.id}/rotate-key",
                         {"confirm": "yes"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    new = fresh(Project, project.id).public_key
    assert new != old and new.startswith("pk_")
    assert f'data-testid="public-key">{new}<' in html and old not in html
    assert "This is the new key. The old one no longer works." in html
    refused = intake(client, old)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "unauthorized"
    assert intake(client, new).status_code == 201
    (event,) = audit("project.key_rotated")
    assert event.actor_id == admin.id and new not in str(event.after)


def test_an_unknown_project_is_404(client, admin):
    assert client.get("/admin/projects/99999").status_code == 404
