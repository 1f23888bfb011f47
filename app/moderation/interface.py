"""What every moderation backend promises: categories, the result type, the protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: The moderation taxonomy, spelled as the OpenAI moderation API spells it.
CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


@dataclass(frozen=True)
class Classification:
    """One text's verdict.

    ``scores`` holds only the categories the backend actually scores (0..1); a category the
    backend cannot judge is absent, never zero. ``flagged`` is a subset of ``scores``' keys.
    """

    scores: dict[str, float]
    flagged: frozenset[str]
    backend: str
    model: str


class ModerationUnavailable(Exception):
    """The backend is down, timed out, or refused after its retries; the message says why."""


@runtime_checkable
class Moderator(Protocol):
    backend: str

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """One Classification per text, in input order; an empty input gives ``[]``."""
        ...
