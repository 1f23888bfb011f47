"""Routing: the priority a report gets from its reason and its moderation tags.

Pure: rules come in as data (a project's RoutingRule rows, or anything shaped like them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from app.reports.models import Priority

ANY_CATEGORY = "*"
DEFAULT_PRIORITY = Priority.P4


class Rule(Protocol):
    category: str | None
    min_score: float | None
    reason: str | None
    priority: str


@dataclass(frozen=True)
class Routed:
    priority: Priority
    matched: str  # which rule decided, for the audit trail: "category:self-harm", "default"


def _matches(rule: Rule, reason: str, scores: Mapping[str, float], flagged: set[str]) -> bool:
    if rule.reason is not None:
        return rule.reason == reason
    if rule.category == ANY_CATEGORY:
        return bool(flagged)
    if rule.min_score is not None:
        return scores.get(rule.category or "", 0.0) >= rule.min_score
    return rule.category in flagged


def route(*, reason: str, scores: Mapping[str, float], flagged: set[str],
          rules: Iterable[Rule]) -> Routed:
    """The most urgent priority among matching rules; P4 when none matches.

    `scores` holds the highest score per category over the classified fields, `flagged`
    the categories any field was flagged in.
    """
    best = Routed(DEFAULT_PRIORITY, "default")
    for rule in rules:
        if _matches(rule, reason, scores, flagged) and Priority(rule.priority) < best.priority:
            label = f"reason:{rule.reason}" if rule.reason else f"category:{rule.category}"
            best = Routed(Priority(rule.priority), label)
    return best
