"""Routing rules as data: the most urgent match wins; the defaults put the worst first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.projects.service import DEFAULT_ROUTING_RULES
from app.reports.routing import route


@dataclass
class Rule:
    category: str | None = None
    reason: str | None = None
    priority: str = "P4"
    min_score: float | None = None


DEFAULTS = [Rule(category=c, reason=r, priority=p) for c, r, p in DEFAULT_ROUTING_RULES]


@pytest.mark.parametrize(("reason", "flagged", "expected"), [
    ("other", {"sexual/minors"}, "P0"),
    ("inaccurate", {"sexual/minors", "hate"}, "P0"),
    ("other", {"self-harm/intent"}, "P1"),
    ("other", {"self-harm/instructions"}, "P1"),
    ("other", {"self-harm"}, "P1"),
    ("other", {"violence/graphic"}, "P2"),
    ("privacy", set(), "P2"),
    ("jailbreak_or_prompt_injection", set(), "P2"),
    ("unsafe_advice", set(), "P2"),
    ("other", {"harassment"}, "P3"),
    ("inaccurate", set(), "P3"),
    ("other", set(), "P4"),
])
def test_default_rules(reason, flagged, expected):
    assert route(reason=reason, scores={}, flagged=flagged, rules=DEFAULTS).priority == expected


def test_the_deciding_rule_is_named():
    routed = route(reason="privacy", scores={}, flagged={"self-harm"}, rules=DEFAULTS)
    assert (routed.priority, routed.matched) == ("P1", "category:self-harm")
    assert route(reason="other", scores={}, flagged=set(), rules=DEFAULTS).matched == "default"


def test_a_score_threshold_rule_ignores_the_backends_flag():
    rules = [Rule(category="hate", min_score=0.3, priority="P1")]
    above = route(reason="other", scores={"hate": 0.35}, flagged=set(), rules=rules)
    below = route(reason="other", scores={"hate": 0.2}, flagged={"hate"}, rules=rules)
    assert (above.priority, below.priority) == ("P1", "P4")


def test_no_rules_means_p4():
    assert route(reason="privacy", scores={}, flagged={"hate"}, rules=[]).priority == "P4"
