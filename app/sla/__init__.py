"""SLA policies, calendars, per-ticket clocks, sweeps and escalations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """Keep SLA clocks in step with what the reports domain announces (it cannot import
    us: data flows one way). Connecting twice is harmless: blinker keeps one receiver."""
    from app.reports.signals import report_routed, reporter_answered

    report_routed.connect(_on_routed)
    reporter_answered.connect(_on_reporter_answered)


def _on_routed(report: Any, **_: Any) -> None:
    from app.sla import service

    service.routed(report)


def _on_reporter_answered(report: Any, *, before: Any, **_: Any) -> None:
    from app.sla import service

    service.reporter_answered(report, before=before)
