"""Users, passwords, API tokens and the permission check every service calls."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from app.audit.service import record
from app.auth.models import ApiToken, Role, User
from app.core.clock import now
from app.core.errors import Conflict, Forbidden, Unauthorized, ValidationFailed
from app.extensions import db

TOKEN_PREFIX = "fdk_"

# The least role each permission needs.
PERMISSIONS: dict[str, Role] = {
    "reports:read": Role.VIEWER,
    "reports:triage": Role.RESPONDER,
    "incidents:manage": Role.LEAD,
    "admin": Role.ADMIN,
}

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Last-used stamps are coarse so that reading the API is not a write per request.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def require(actor: User | None, permission: str) -> User:
    """Return the actor if it may do `permission`; raise Unauthorized or Forbidden."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise Unauthorized("Sign in or send a valid API token.")
    if not Role(actor.role).at_least(PERMISSIONS[permission]):
        raise Forbidden(f"Your role ({actor.role}) may not do this ({permission}).")
    return actor


def load_user(user_id: str) -> User | None:
    """flask-login's session loader: an active user by id, or None."""
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user and user.active else None


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
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationFailed("Not an e-mail address.", fields={"email": ["Not an e-mail."]})
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
