"""Projects: creating them with their public key and default routing rules, and looking
them up for intake."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from time import monotonic
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.audit.service import record
from app.auth.models import User
from app.auth.service import require
from app.core.db import separate_transaction
from app.core.errors import NotFound, ValidationFailed
from app.extensions import db
from app.projects.models import Project, ProjectOrigin, RoutingRule

KEY_PREFIX = "pk_"

# The routing rules every new project starts with (a settings page may edit them later).
# Each is (category, reason, priority): exactly one of category or reason is set; the
# category "*" means any flagged category. The most urgent match wins; no match is P4.
# self-harm alone is P1 as well as its /intent and /instructions refinements because the
# offline classifier scores only the parent category, and a person at risk must not wait.
DEFAULT_ROUTING_RULES: tuple[tuple[str | None, str | None, str], ...] = (
    ("sexual/minors", None, "P0"),
    ("self-harm/intent", None, "P1"),
    ("self-harm/instructions", None, "P1"),
    ("self-harm", None, "P1"),
    ("violence/graphic", None, "P2"),
    ("hate/threatening", None, "P2"),
    ("harassment/threatening", None, "P2"),
    ("illicit/violent", None, "P2"),
    ("*", None, "P3"),
    (None, "privacy", "P2"),
    (None, "unsafe_advice", "P2"),
    (None, "jailbreak_or_prompt_injection", "P2"),
    (None, "harmful_or_offensive", "P3"),
    (None, "biased", "P3"),
    (None, "inaccurate", "P3"),
)


def normalize_origin(value: str) -> str:
    """'https://Example.com:443/' -> 'https://example.com'; ValueError if not an origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) origin")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{value!r} has more than scheme, host and port")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def normalize_origins(origins: list[str]) -> list[str]:
    """Each origin normalised, blank lines skipped, duplicates dropped, sorted;
    ValidationFailed naming every line that is not an origin."""
    normalized, problems = set(), []
    for number, line in enumerate(origins, start=1):
        if not line.strip():
            continue
        try:
            normalized.add(normalize_origin(line))
        except ValueError:
            problems.append(f"Line {number}: {line.strip()[:100]!r} is not an http(s) origin "
                            "(scheme://host[:port], e.g. https://app.example.com).")
    if problems:
        raise ValidationFailed(" ".join(problems), fields={"origins": problems})
    return sorted(normalized)


def _valid_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Give the project a name of at most 120 characters.",
                               fields={"name": ["Required, at most 120 characters."]})
    return name


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


def create_project(*, name: str, origins: list[str], actor: User | None = None) -> Project:
    """Create an active project with a fresh public key and the default routing rules."""
    if actor is not None:
        require(actor, "admin")
    name, normalized = _valid_name(name), normalize_origins(origins)
    project = Project(name=name, public_key=_new_key())
    project.origins = [ProjectOrigin(origin=o) for o in normalized]
    project.routing_rules = [
        RoutingRule(position=i, category=category, reason=reason, priority=priority)
        for i, (category, reason, priority) in enumerate(DEFAULT_ROUTING_RULES)
    ]
    db.session.add(project)
    db.session.flush()
    record(action="project.created", subject_type="project", subject_id=project.id, actor=actor,
           after={"name": project.name, "origins": normalized})
    db.session.commit()
    return project


def active_project_by_key(public_key: str | None) -> Project | None:
    if not public_key:
        return None
    return db.session.scalar(
        select(Project).where(Project.public_key == public_key, Project.active.is_(True))
    )


@dataclass(frozen=True)
class IntakeRule:
    category: str | None
    min_score: float | None
    reason: str | None
    priority: str


@dataclass(frozen=True)
class IntakeProject:
    """What intake needs of an active project, as plain values that outlive the session."""

    id: int
    allowed_origins: frozenset[str]
    routing_rules: tuple[IntakeRule, ...]


# Intake looks its project up on every request, and it rarely changes: a snapshot per key
# is kept for a few seconds per process. Changes made here clear this process's snapshots at
# once; other processes see them within INTAKE_PROJECT_CACHE_SECONDS. Only known keys are
# kept, in a bounded dict, so random keys cannot grow it.
_INTAKE_CACHE_MAX = 1024
_intake_cache: dict[str, tuple[float, IntakeProject]] = {}


def forget_intake_projects() -> None:
    """Drop this process's intake snapshots (after a project changes)."""
    _intake_cache.clear()


def intake_project(public_key: str | None, *, max_age: float) -> IntakeProject | None:
    """The active project with this public key, as a snapshot at most `max_age` s old."""
    if not public_key:
        return None
    cached = _intake_cache.get(public_key)
    if cached is not None and monotonic() - cached[0] < max_age:
        return cached[1]
    snapshot = _read_intake_project(public_key)
    if snapshot is None:
        _intake_cache.pop(public_key, None)
        return None
    if len(_intake_cache) >= _INTAKE_CACHE_MAX:
        _intake_cache.clear()
    _intake_cache[public_key] = (monotonic(), snapshot)
    return snapshot


def _read_intake_project(public_key: str) -> IntakeProject | None:
    # In a transaction of its own, not the session's: intake then writes in a separate
    # transaction (reports.service.submit_report), which on SQLite would wait for the
    # write lock that a session transaction still open here would hold.
    with separate_transaction(db.engine) as connection:
        project_id = connection.scalar(select(Project.id).where(
            Project.public_key == public_key, Project.active.is_(True)))
        if project_id is None:
            return None
        origins = connection.scalars(select(ProjectOrigin.origin).where(
            ProjectOrigin.project_id == project_id))
        rules = connection.execute(
            select(RoutingRule.category, RoutingRule.min_score, RoutingRule.reason,
                   RoutingRule.priority)
            .where(RoutingRule.project_id == project_id).order_by(RoutingRule.position))
        return IntakeProject(id=project_id, allowed_origins=frozenset(origins),
                             routing_rules=tuple(IntakeRule(*rule) for rule in rules))


def origin_allowed_anywhere(origin: str) -> bool:
    """True if some active project accepts reports from `origin` (used by preflights,
    which carry no project key)."""
    try:
        origin = normalize_origin(origin)
    except ValueError:
        return False
    query = (
        select(ProjectOrigin.id)
        .join(Project)
        .where(ProjectOrigin.origin == origin, Project.active.is_(True))
        .limit(1)
    )
    return db.session.scalar(query) is not None


def origin_allowed_for(project: Project | IntakeProject, origin: str) -> bool:
    try:
        return normalize_origin(origin) in project.allowed_origins
    except ValueError:
        return False


def first_project() -> Project | None:
    return db.session.scalar(select(Project).order_by(Project.id).limit(1))


# --- administering projects ----------------------------------------------------------


def list_projects(*, actor: User) -> list[Project]:
    require(actor, "admin")
    return list(db.session.scalars(
        select(Project).options(selectinload(Project.origins))
        .order_by(Project.active.desc(), Project.name, Project.id)))


def get_project(*, actor: User, project_id: int) -> Project:
    require(actor, "admin")
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(f"No project {project_id}.")
    return project


def update_project(*, actor: User, project_id: int, name: str, origins: list[str]) -> Project:
    """Rename a project and replace its allowed origins (normalised, validated)."""
    project = get_project(actor=actor, project_id=project_id)
    name, normalized = _valid_name(name), normalize_origins(origins)
    before = {"name": project.name, "origins": project.allowed_origins}
    after = {"name": name, "origins": normalized}
    if before == after:
        return project
    project.name = name
    kept = {o.origin: o for o in project.origins}
    project.origins = [kept.get(o) or ProjectOrigin(origin=o) for o in normalized]
    changed = [k for k in before if before[k] != after[k]]
    record(action="project.updated", subject_type="project", subject_id=project.id,
           actor=actor, before={k: before[k] for k in changed},
           after={k: after[k] for k in changed})
    db.session.commit()
    forget_intake_projects()
    return project


def set_project_active(*, actor: User, project_id: int, active: bool) -> Project:
    """Stop (or resume) accepting reports for a project; its tickets stay."""
    project = get_project(actor=actor, project_id=project_id)
    if project.active != active:
        record(action="project.activated" if active else "project.deactivated",
               subject_type="project", subject_id=project.id, actor=actor,
               before={"active": project.active}, after={"active": active})
        project.active = active
        db.session.commit()
        forget_intake_projects()
    return project


def rotate_key(*, actor: User, project_id: int) -> Project:
    """Give a project a new public key; the old one stops working for intake at once in
    this process, and within INTAKE_PROJECT_CACHE_SECONDS in the others."""
    project = get_project(actor=actor, project_id=project_id)
    old = project.public_key
    project.public_key = _new_key()
    # Keys are public (they ship in the widget), but a prefix is enough to tell them apart.
    record(action="project.key_rotated", subject_type="project", subject_id=project.id,
           actor=actor, before={"key": old[:8] + "…"}, after={"key": project.public_key[:8] + "…"})
    db.session.commit()
    forget_intake_projects()
    return project
