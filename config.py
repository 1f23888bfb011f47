"""Configuration from the environment, with embedded defaults that need nothing installed.

`load_config()` returns a plain dict; `create_app(config)` layers a test's or a caller's
overrides on top. Nothing here runs at import time.

Secrets have no default in code. In the embedded (development) mode, a missing SECRET_KEY
or END_USER_PEPPER is generated once and kept in `instance/`, so `make run` works on a new
machine; with FLAGDESK_ENV=production a missing secret stops start-up.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent / "instance"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_secret(name: str, instance_dir: Path) -> str:
    """Read or create a development secret kept in instance/ (never committed)."""
    path = instance_dir / name
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _secret(env: Mapping[str, str], name: str, production: bool, instance_dir: Path) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if production:
        raise ConfigError(
            f"{name} is not set. Production (FLAGDESK_ENV=production) needs it from the "
            f"environment, e.g. {name}=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return _instance_secret(name.lower(), instance_dir)


def load_config(env: Mapping[str, str] | None = None) -> dict:
    env = os.environ if env is None else env
    production = env.get("FLAGDESK_ENV", "development") == "production"
    instance_dir = Path(env.get("FLAGDESK_INSTANCE_DIR") or INSTANCE_DIR)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'flagdesk.sqlite3'}"
    broker = env.get("CELERY_BROKER_URL") or None
    backend = env.get("MODERATION_BACKEND", "local")
    if backend not in {"local", "openai"}:
        raise ConfigError(f"MODERATION_BACKEND must be 'local' or 'openai', not {backend!r}")
    if backend == "openai" and not env.get("OPENAI_API_KEY"):
        raise ConfigError("MODERATION_BACKEND=openai needs OPENAI_API_KEY in the environment")
    smtp_url = env.get("SMTP_URL", "").strip() or None
    if smtp_url and not smtp_url.lower().startswith(("smtp://", "smtps://")):
        # Not echoed: the URL may hold the SMTP password.
        raise ConfigError("SMTP_URL must look like smtp://user:password@host:587 (STARTTLS) "
                          "or smtps://user:password@host:465")

    return {
        "ENV_NAME": "production" if production else "development",
        "PORT": int(env.get("PORT", "5000")),
        "INSTANCE_DIR": str(instance_dir),
        "SECRET_KEY": _secret(env, "SECRET_KEY", production, instance_dir),
        # The pepper keyed into the HMAC of end-user ids; rotating it unlinks old hashes.
        "END_USER_PEPPER": _secret(env, "END_USER_PEPPER", production, instance_dir),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "CELERY_BROKER_URL": broker,
        "MODERATION_BACKEND": backend,
        "OPENAI_API_KEY": env.get("OPENAI_API_KEY") or None,
        "OPENAI_BASE_URL": env.get("OPENAI_BASE_URL") or None,
        "OPENAI_MODERATION_MODEL": env.get("OPENAI_MODERATION_MODEL", "omni-moderation-latest"),
        "MODERATION_TIMEOUT_SECONDS": float(env.get("MODERATION_TIMEOUT_SECONDS", "10")),
        "MODERATION_MAX_RETRIES": int(env.get("MODERATION_MAX_RETRIES", "3")),
        # Optional first drafts of a retrospective's summary and contributing factors from
        # a chat model (OPENAI_API_KEY, OPENAI_BASE_URL); off unless a model is named.
        "RETRO_DRAFT_MODEL": env.get("RETRO_DRAFT_MODEL", "").strip() or None,
        "RETRO_DRAFT_TIMEOUT_SECONDS": float(env.get("RETRO_DRAFT_TIMEOUT_SECONDS", "60")),
        "RETRO_DRAFT_MAX_RETRIES": int(env.get("RETRO_DRAFT_MAX_RETRIES", "2")),
        # Rate limits for the public intake endpoint (Flask-Limiter syntax).
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "INTAKE_LIMIT_PER_ADDRESS": env.get("INTAKE_LIMIT_PER_ADDRESS", "30/minute"),
        "INTAKE_LIMIT_PER_PROJECT": env.get("INTAKE_LIMIT_PER_PROJECT", "600/minute"),
        # Failed sign-ins allowed before /login answers 429 for a while.
        "LOGIN_LIMIT_PER_ADDRESS": env.get("LOGIN_LIMIT_PER_ADDRESS", "10/minute;50/hour"),
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT", "5/minute;20/hour"),
        # How many proxies in front of us set X-Forwarded-For; 0 trusts none of it.
        "TRUSTED_PROXY_COUNT": int(env.get("TRUSTED_PROXY_COUNT", "0")),
        "PREFERRED_URL_SCHEME": env.get("PREFERRED_URL_SCHEME", "https" if production else "http"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag(env.get("SESSION_COOKIE_SECURE"), default=production),
        # Argon2id cost for staff passwords (RFC 9106's second recommended profile).
        "ARGON2_TIME_COST": int(env.get("ARGON2_TIME_COST", "3")),
        "ARGON2_MEMORY_COST_KIB": int(env.get("ARGON2_MEMORY_COST_KIB", "65536")),
        "ARGON2_PARALLELISM": int(env.get("ARGON2_PARALLELISM", "4")),
        # How often an open board asks whether new reports arrived.
        "BOARD_POLL_MS": int(env.get("BOARD_POLL_MS", "10000")),
        # Without a broker: how often the serve command's sweep retries failed tagging.
        "TAGGING_SWEEP_SECONDS": float(env.get("TAGGING_SWEEP_SECONDS", "60")),
        # With Celery: how often beat sends the sweep that tags new reports (intake
        # publishes nothing; the pending rows are the queue).
        "TAGGING_POLL_SECONDS": float(env.get("TAGGING_POLL_SECONDS", "1")),
        # How long a process may answer intake from its snapshot of a project (key,
        # origins, routing rules) before reading it again.
        "INTAKE_PROJECT_CACHE_SECONDS": float(env.get("INTAKE_PROJECT_CACHE_SECONDS", "5")),
        # Outbound notifications. Without SMTP_URL, e-mail goes to the console sink (the
        # flagdesk.mail logger) instead of being sent.
        "SMTP_URL": smtp_url,
        "MAIL_FROM": env.get("MAIL_FROM", "").strip() or "Flagdesk <flagdesk@localhost>",
        # Per phase (connect, send, wait for the answer) of a webhook call or SMTP exchange.
        "WEBHOOK_TIMEOUT_SECONDS": float(env.get("WEBHOOK_TIMEOUT_SECONDS", "5")),
        # Webhooks reach public addresses only unless this is set (app/notify/egress.py).
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": _flag(env.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS")),
        # flask-smorest: the OpenAPI document at /api/openapi.json
        "API_TITLE": "Flagdesk API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
