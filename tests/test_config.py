"""Configuration: embedded defaults that need nothing, and no secret defaults in code."""

from __future__ import annotations

import stat

import pytest

from config import ConfigError, load_config


def test_embedded_defaults_need_nothing(tmp_path):
    config = load_config({"FLAGDESK_INSTANCE_DIR": str(tmp_path)})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'flagdesk.sqlite3'}"
    assert config["MODERATION_BACKEND"] == "local"
    assert config["CELERY_BROKER_URL"] is None
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_development_secrets_are_generated_once_and_kept_private(tmp_path):
    first = load_config({"FLAGDESK_INSTANCE_DIR": str(tmp_path)})
    second = load_config({"FLAGDESK_INSTANCE_DIR": str(tmp_path)})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 48
    assert first["SECRET_KEY"] != first["END_USER_PEPPER"]
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("missing", ["SECRET_KEY", "END_USER_PEPPER"])
def test_production_refuses_to_start_without_secrets(tmp_path, missing):
    env = {"FLAGDESK_ENV": "production", "FLAGDESK_INSTANCE_DIR": str(tmp_path),
           "SECRET_KEY": "s" * 50, "END_USER_PEPPER": "p" * 50}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_config(env)
    assert not (tmp_path / missing.lower()).exists()


def test_production_takes_everything_from_the_environment(tmp_path):
    config = load_config({
        "FLAGDESK_ENV": "production", "SECRET_KEY": "s" * 50, "END_USER_PEPPER": "p" * 50,
        "DATABASE_URL": "postgresql+psycopg://db/flagdesk", "CELERY_BROKER_URL": "redis://r:6379/0",
        "MODERATION_BACKEND": "openai", "OPENAI_API_KEY": "sk-test",
        "FLAGDESK_INSTANCE_DIR": str(tmp_path)})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/flagdesk"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["MODERATION_BACKEND"] == "openai"


def test_openai_backend_needs_a_key(tmp_path):
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_config({"MODERATION_BACKEND": "openai", "FLAGDESK_INSTANCE_DIR": str(tmp_path)})


def test_an_unknown_backend_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="MODERATION_BACKEND"):
        load_config({"MODERATION_BACKEND": "magic", "FLAGDESK_INSTANCE_DIR": str(tmp_path)})
