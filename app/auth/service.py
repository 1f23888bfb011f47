"""Users, passwords, API tokens and the permission check every service calls."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from app.audit.service import record
from app.auth.models import ApiToken, Role, User
from app.core.clock import now
from app.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from app.extensions import db

TOKEN_PREFIX = "fdk_"

# The least role each permission needs.
PERMISSIONS: dict[str, Role] = {
    "reports:read": Role.VIEWER,
    "reports:triage": Role.RESPONDER,
    "incidents:manage": Role.LEAD,  # open, edit, link, write and publish retrospectives, export
    "incidents:read": Role.RESPONDER,  # incidents, their timelines and working retrospectives
    "incidents:note": Role.RESPONDER,  # add notes to an incident's timeline
    "retrospectives:read": Role.VIEWER,  # published retrospectives only
    "admin": Role.ADMIN,
    "sla:manage": Role.ADMIN,  # SLA policies, calendars and targets
    "stats:read": Role.LEAD,  # SLA attainment and response-time reports (/stats)
}

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


def configure_password_hashing(*, time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Set the Argon2id cost (create_app calls this from config; tests make it cheap)."""
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                             parallelism=parallelism)
# Last-used stamps are coarse so that reading the API is not a write per request.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def require(actor: User | None, permission: str) -> User:
    """Return the actor if it may do `permission`; raise Unauthorized or Forbidden."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise Unauthorized("Sign in or send a valid API token.")
    if not Role(actor.role).at_least(PERMISSIONS[permission]):
        raise Forbidden(f"Your role ({actor.role}) may not do this ({permission}).")
    return actor


def load_user(session_id: str) -> User | None:
    """flask-login's session loader: the active user whose User.get_id() this is, or None
    (also when the password changed since the session began)."""
    user_id, _, key = session_id.partition(".")
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active or not hmac.compare_digest(key, user.session_key):
        return None
    return user


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(*, email: str, name: str, role: Role, password: str | None = None,
                actor: User | None = None) -> tuple[User, str]:
    """Create a user; returns it with its password (generated when none is given)."""
    if actor is not None:
        require(actor, "admin")
    email, name = email.strip().lower(), name.strip()
    if role not in set(Role):
        raise ValidationFailed("Pick a role.", fields={"role": ["Unknown role."]})
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("Not an e-mail address.", fields={"email": ["Not an e-mail."]})
    if not name or len(name) > 120:
        raise ValidationFailed("Give a name of at most 120 characters.",
                               fields={"name": ["Required, at most 120 characters."]})
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with e-mail {email} exists already.")
    password = password or secrets.token_urlsafe(12)
    if len(password) < 10:
        raise ValidationFailed("Password too short.",
                               fields={"password": ["Use at least 10 characters."]})
    user = User(email=email, name=name, role=Role(role), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    record(action="user.created", subject_type="user", subject_id=user.id, actor=actor,
           after={"email": email, "role": str(role)})
    db.session.commit()
    return user, password


def _token_digest(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough to make a leaked
    # table useless; a slow hash would only slow every API call down.
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(*, user: User, name: str, actor: User | None = None) -> tuple[ApiToken, str]:
    """Issue an API token for `user`; the raw secret is returned once and never stored."""
    if actor is not None and actor.id != user.id:
        require(actor, "admin")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, prefix=raw[:10], token_hash=_token_digest(raw))
    db.session.add(token)
    db.session.flush()
    record(action="token.created", subject_type="user", subject_id=user.id, actor=actor,
           after={"token": token.prefix, "name": name})
    db.session.commit()
    return token, raw


def authenticate_token(raw: str | None) -> User | None:
    """The active user behind a bearer token, or None for a missing, unknown or revoked one."""
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(raw)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    current = now()
    if token.last_used_at is None or current - token.last_used_at > _LAST_USED_RESOLUTION:
        token.last_used_at = current
        db.session.commit()
    return token.user


def sign_in(*, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None. Takes about as long for an
    unknown e-mail as for a wrong password, so the answer does not reveal who exists."""
    user = find_user(email)
    if user is None or not user.active:
        _hasher.hash(password)  # spend the same effort as a real verification
        return None
    if not verify_password(user, password):
        record(action="user.sign_in_failed", subject_type="user", subject_id=user.id)
        db.session.commit()
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record(action="user.signed_in", subject_type="user", subject_id=user.id, actor=user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


# --- administering users -------------------------------------------------------------


def list_users(*, actor: User) -> list[User]:
    """Every user, active ones first, then by name."""
    require(actor, "admin")
    return list(db.session.scalars(
        select(User).order_by(User.active.desc(), User.name, User.id)))


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def _keep_an_admin(actor: User, user: User, *, role: Role, active: bool) -> None:
    """Refuse a change that would leave no active admin (nobody could undo it)."""
    if user.role != Role.ADMIN or not user.active or (role == Role.ADMIN and active):
        return
    others = db.session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN, User.active.is_(True), User.id != user.id))
    if not others:
        who = "You are" if user.id == actor.id else f"{user.name} is"
        raise Conflict(f"{who} the last active admin: make someone else an admin first.")


def change_role(*, actor: User, user_id: int, role: Role | str) -> User:
    """Give a user another role (never taking away the last active admin)."""
    require(actor, "admin")
    try:
        role = Role(role)
    except ValueError as error:
        raise ValidationFailed("Pick a role.", fields={"role": ["Unknown role."]}) from error
    user = _user(user_id)
    if user.role == role:
        return user
    _keep_an_admin(actor, user, role=role, active=user.active)
    record(action="user.role_changed", subject_type="user", subject_id=user.id, actor=actor,
           before={"role": str(user.role)}, after={"role": str(role)})
    user.role = role
    db.session.commit()
    return user


def set_user_active(*, actor: User, user_id: int, active: bool) -> User:
    """Deactivate a user (they are signed out and their API tokens stop working) or
    reactivate them; never the last active admin."""
    require(actor, "admin")
    user = _user(user_id)
    if user.active == active:
        return user
    _keep_an_admin(actor, user, role=user.role, active=active)
    record(action="user.reactivated" if active else "user.deactivated", subject_type="user",
           subject_id=user.id, actor=actor, before={"active": user.active},
           after={"active": active})
    user.active = active
    db.session.commit()
    return user


def reset_password(*, actor: User, user_id: int) -> tuple[User, str]:
    """Give a user a new generated password; it is returned once and only its hash kept."""
    require(actor, "admin")
    user = _user(user_id)
    password = secrets.token_urlsafe(12)
    user.password_hash = hash_password(password)
    record(action="user.password_reset", subject_type="user", subject_id=user.id, actor=actor)
    db.session.commit()
    return user, password
