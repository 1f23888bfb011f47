"""Moderation classifiers: the Moderator protocol and its ``local`` and ``openai`` backends.

Pure by design: nothing here imports Flask, SQLAlchemy or the rest of the app, and nothing is
built at import time (clients and models are created on first use).
"""

from __future__ import annotations

from app.moderation.interface import (
    CATEGORIES,
    Classification,
    ModerationUnavailable,
    Moderator,
)
from app.moderation.jsonl import classify_jsonl

BACKENDS = ("local", "openai")

__all__ = [
    "BACKENDS",
    "CATEGORIES",
    "Classification",
    "ModerationUnavailable",
    "Moderator",
    "build_moderator",
    "classify_jsonl",
]


def build_moderator(
    backend: str,
    *,
    openai_api_key: str | None = None,
    openai_base_url: str | None = None,
    openai_model: str = "omni-moderation-latest",
    timeout: float = 10.0,
    max_retries: int = 3,
) -> Moderator:
    """A moderator for ``backend`` ("local" or "openai"); nothing is loaded or connected yet.

    Raises ValueError for an unknown backend, or for "openai" without an API key.
    """
    if backend == "local":
        from app.moderation.local_backend import LocalModerator

        return LocalModerator()
    if backend == "openai":
        if not openai_api_key:
            raise ValueError("the openai moderation backend needs an API key (set OPENAI_API_KEY)")
        from app.moderation.openai_backend import OpenAIModerator

        return OpenAIModerator(
            api_key=openai_api_key,
            base_url=openai_base_url,
            model=openai_model,
            timeout=timeout,
            max_retries=max_retries,
        )
    raise ValueError(
        f"unknown moderation backend {backend!r}; expected one of: {', '.join(BACKENDS)}"
    )
