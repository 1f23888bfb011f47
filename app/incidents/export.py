"""Exports of retrospectives, for leads: Markdown, PDF, JSON, the linked reports as CSV, and
every retrospective published in a date range as one zip.

Every format is built from one `RetroDocument`, so they say the same things. Which
retrospective: `version=N` is published version N (frozen sections, facts and timeline);
no version is the latest published version, or the working draft when none is published
(the document then says DRAFT, and its facts and timeline are computed now). The incident's
title, severity, status and people, and the linked reports, are shown as they are now.

What the exports carry:

* Untrusted text (anything that came from a report, and every plain-text field: names,
  titles, model names, timeline text) is escaped for the format: Markdown-escaped
  (app.incidents.markdown.escape_text), HTML-escaped by Jinja in the document, JSON- or
  CSV-quoted as data; CSV cells are also neutralised against formulas. Only the
  retrospective's sections are Markdown (the lead's own), kept as such in the Markdown
  and JSON and rendered safely in the HTML/PDF.
* No end-user data unless asked for: reporter contact e-mails with
  `include_reporter_contacts`, end-user hashes with `include_end_user_hashes`.
* The document (Markdown, HTML, PDF) lists the first REPORTS_LISTED linked reports and
  at most TIMELINE_LISTED timeline items (all the written entries and incident events
  first, then the linked reports' events, earliest first), saying what it left out; the
  JSON carries the whole timeline and every linked report's id, the CSV every report.

JSON (`retrospective_json`), format "flagdesk.retrospective/1"; keys are never removed or
renamed within a format version, instants are ISO 8601 UTC strings, durations seconds:

    {"format": "flagdesk.retrospective/1",
     "incident": {"id", "title", "severity", "severity_meaning", "status", "lead",
                  "participants": [..], "projects": [..], "affected_models": [..]},
     "state": "draft" | "in_review" | "published", "version": int,
     "published_at": str | null,
     "facts": RetrospectiveFacts.as_dict() (see app/incidents/facts.py),
     "sections": [{"key", "title", "markdown", "machine_written": bool}, ...in order],
     "timeline": [{"at", "author", "kind", "text", "subject", "source"}, ...],
     "action_items": [{"title", "owner", "due_date", "status", "link"}, ...],
     "linked_reports": {"count": int, "ids": [public ids by time received],
                        "listed": [{"id", "received_at", "status", "priority", "reason",
                                    "flagged_categories", "model", "response_id",
                                    "description", "answer",
                                    ("contact_email"), ("end_user_hash")}, ...]}}

CSV (`linked_reports_csv`): UTF-8 with a byte-order mark (so that Excel reads it as
UTF-8), CRLF line ends, RFC 4180 quoting by the csv module, one header row, one row per
linked report by time received. Columns: report, received_at, linked_at, status,
priority, reason, flagged_categories ("; "-separated), model, response_id, description
(whole), then contact_email and end_user_hash only when asked for. Every cell that starts
with = + - @ TAB or CR gets a leading ' so that no spreadsheet runs it as a formula.

Zip (`published_zip`): one folder per retrospective published (by the UTC date of its
publication) from `start` to `end` inclusive, named "<YYYY-MM-DD>_<incident id>/", holding
"<incident id>-v<version>.md", ".pdf" and ".json" of the latest version published in the
range; "manifest.json" at the root lists them with each file's SHA-256. Entries are in
that order and dated by their publication, so the same data gives the same bytes. At most
ZIP_MAX_RETROSPECTIVES per zip (each PDF takes a second or two): a longer range is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from flask import render_template
from markupsafe import Markup
from sqlalchemy import Select, select

from app.auth.models import User
from app.auth.service import require
from app.core.errors import NotFound, ValidationFailed
from app.extensions import db
from app.incidents.facts import RetrospectiveFacts, facts
from app.incidents.markdown import escape_cell, escape_text, render_markdown, safe_link
from app.incidents.models import (
    SECTION_TITLES,
    SECTIONS,
    SEVERITY_MEANINGS,
    ActionItem,
    Incident,
    IncidentReport,
    Retrospective,
    RetrospectiveState,
    RetrospectiveVersion,
)
from app.incidents.pdf import PRINT_CSS_URL, html_to_pdf
from app.incidents.service import find, list_published
from app.incidents.timeline import build_timeline
from app.incidents.timeline import listed as timeline_listed
from app.reports.models import Report

PERMISSION = "incidents:manage"
JSON_FORMAT = "flagdesk.retrospective/1"
ZIP_FORMAT = "flagdesk.retrospectives-zip/1"
REPORTS_LISTED = 20  # linked reports shown in the document (the CSV has them all)
TIMELINE_LISTED = 500  # timeline items in the document (the JSON has them all)
EXCERPT_CHARS = 200  # of a description or an answer in the document's table
ZIP_MAX_RETROSPECTIVES = 100
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_BOM = "\ufeff"
DOCUMENT_TEMPLATE = "incidents/retrospective_document.html"

STATE_LABELS = {
    RetrospectiveState.DRAFT: "Draft",
    RetrospectiveState.IN_REVIEW: "In review",
    RetrospectiveState.PUBLISHED: "Published",
}
METRIC_LABELS = {"first_response": "First response", "next_update": "Next update",
                 "resolution": "Resolution"}


# --- the document every format is built from -----------------------------------------------


@dataclass(frozen=True)
class LinkedReport:
    public_id: str
    received_at: datetime
    status: str
    priority: str
    reason: str
    flagged_categories: list[str]
    model: str | None
    response_id: str | None
    description: str
    answer: str | None  # the last assistant turn of the reported conversation
    contact_email: str | None = None  # only when asked for
    end_user_hash: str | None = None  # only when asked for

    def as_dict(self, *, contacts: bool, hashes: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.public_id, "received_at": _iso(self.received_at),
            "status": self.status, "priority": self.priority, "reason": self.reason,
            "flagged_categories": list(self.flagged_categories), "model": self.model,
            "response_id": self.response_id, "description": self.description,
            "answer": self.answer}
        if contacts:
            data["contact_email"] = self.contact_email
        if hashes:
            data["end_user_hash"] = self.end_user_hash
        return data


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    markdown: str
    machine_written: bool

    @property
    def html(self) -> Markup:
        return render_markdown(self.markdown)


@dataclass(frozen=True)
class RetroDocument:
    incident_id: str
    title: str
    severity: str
    severity_meaning: str
    status: str
    lead: str | None
    participants: list[str]
    projects: list[str]
    affected_models: list[str]
    state: str
    version: int
    published_at: datetime | None
    facts: RetrospectiveFacts
    sections: list[Section]
    # TimelineItem.as_dict() of the published view: every item, or (a document built with
    # whole_timeline=False, for Markdown, HTML and PDF) only the listed ones.
    timeline: list[dict[str, Any]]
    action_items: list[dict[str, Any]]
    reports_count: int
    report_ids: list[str]
    reports: list[LinkedReport]  # the first REPORTS_LISTED
    include_contacts: bool = False
    include_hashes: bool = False
    listed_timeline: list[dict[str, Any]] = field(default_factory=list)
    timeline_total: int = 0  # items in the whole published view

    @property
    def state_label(self) -> str:
        return STATE_LABELS[RetrospectiveState(self.state)]

    @property
    def is_draft(self) -> bool:
        return self.state != RetrospectiveState.PUBLISHED

    @property
    def timeline_note(self) -> str | None:
        left_out = self.timeline_total - len(self.listed_timeline)
        if not left_out:
            return None
        return (f"Showing {len(self.listed_timeline)} of {self.timeline_total} timeline items: "
                f"the written entries and incident events, then the linked reports' events "
                f"in time order. The JSON export has all of them.")

    @property
    def reports_note(self) -> str | None:
        if self.reports_count <= len(self.reports):
            return None
        return (f"Showing the first {len(self.reports)} of {self.reports_count} linked reports "
                f"(by time received). The CSV export lists them all.")

    @property
    def fact_lines(self) -> list[tuple[str, str]]:
        """(label, value) of the facts, as plain text (escape for the format)."""
        f = self.facts
        window = [(label, _when(value)) for label, value in (
            ("Started", f.started_at), ("Detected", f.detected_at),
            ("Mitigated", f.mitigated_at), ("Resolved", f.resolved_at))]
        durations = [
            ("Time to detect", _duration(f.time_to_detect)),
            ("Time to mitigate", _duration(f.time_to_mitigate)),
            ("Time to resolve", _duration(f.time_to_resolve)),
        ]
        reports = str(f.linked_reports)
        if f.first_report_at and f.last_report_at:
            reports += f" (first {_when(f.first_report_at)}, last {_when(f.last_report_at)})"
        return [*window, *durations, ("Linked reports", reports),
                ("Unflagged reports", str(f.unflagged_reports)),
                ("Tickets with a breached SLA", str(f.tickets_breached)),
                ("Participants", ", ".join(f.participants) or "none")]

    @property
    def count_tables(self) -> list[tuple[str, str, list[tuple[str, int]]]]:
        """(title, first column's name, rows) for each count of the linked reports."""
        f = self.facts
        return [
            ("Linked reports by reason", "Reason", _ranked(f.reports_by_reason)),
            ("Linked reports by moderation category", "Category",
             _ranked(f.reports_by_category)),
            ("Linked reports by model", "Model", _ranked(f.reports_by_model)),
        ]

    @property
    def sla_rows(self) -> list[tuple[str, int, int, int]]:
        return [(METRIC_LABELS.get(o.metric, o.metric), o.achieved, o.breached, o.open)
                for o in self.facts.sla]

    @property
    def subtitle(self) -> str:
        published = (f"published {_when(self.published_at)}" if self.published_at
                     else "not published")
        return f"{self.incident_id} · version {self.version} · {self.state_label} · {published}"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _duration(value: timedelta | None) -> str:
    return "unknown" if value is None else duration_words(int(value.total_seconds()))


def duration_words(seconds: int) -> str:
    """Seconds as "3 h 20 min" (under a minute, "45 s"), as every export words a duration;
    the incident pages use it too, so that the page and the file agree."""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if days or hours else [])
    return sign + " ".join([*parts, f"{minutes} min"])


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    # Stored facts may come back from JSONB in another key order: rank again.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _when_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _last_answer(conversation: list[dict[str, str]] | None) -> str | None:
    for turn in reversed(conversation or []):
        if isinstance(turn, dict) and turn.get("role") == "assistant":
            return str(turn.get("content") or "")
    return None


_ROW_COLUMNS = (Report.public_id, Report.received_at, Report.status, Report.priority,
                Report.reason, Report.flagged_categories, Report.model_name, Report.response_id,
                Report.description, Report.conversation, Report.contact_email,
                Report.end_user_hash)


def linked_in_order(incident: Incident) -> list[tuple[int, str]]:
    """(id, public id) of every linked report, by time received."""
    return [(row.id, row.public_id) for row in db.session.execute(
        select(Report.id, Report.public_id)
        .join(IncidentReport, IncidentReport.report_id == Report.id)
        .where(IncidentReport.incident_id == incident.id)
        .order_by(Report.received_at, Report.id))]


def report_rows(incident: Incident, *, limit: int | None = None, contacts: bool = False,
                hashes: bool = False) -> list[LinkedReport]:
    """The incident's linked reports, by time received (the first `limit`)."""
    if limit is None:
        return _rows(select(*_ROW_COLUMNS)
                     .join(IncidentReport, IncidentReport.report_id == Report.id)
                     .where(IncidentReport.incident_id == incident.id), contacts, hashes)
    # Not ORDER BY … LIMIT over the join: PostgreSQL then walks every report in the
    # database by time, looking for linked ones (3 s among a million reports for a recent
    # incident). The ordered ids are narrow and cheap; the first few are loaded whole.
    return rows_of([report_id for report_id, _ in linked_in_order(incident)[:limit]],
                   contacts=contacts, hashes=hashes)


def rows_of(report_ids: list[int], *, contacts: bool, hashes: bool) -> list[LinkedReport]:
    """These reports, by time received."""
    return _rows(select(*_ROW_COLUMNS).where(Report.id.in_(report_ids)), contacts, hashes)


def _rows(query: Select[Any], contacts: bool, hashes: bool) -> list[LinkedReport]:
    return [LinkedReport(
        public_id=row.public_id, received_at=row.received_at, status=str(row.status),
        priority=str(row.priority), reason=str(row.reason),
        flagged_categories=list(row.flagged_categories or []), model=row.model_name,
        response_id=row.response_id, description=row.description or "",
        answer=_last_answer(row.conversation),
        contact_email=row.contact_email if contacts else None,
        end_user_hash=row.end_user_hash if hashes else None,
    ) for row in db.session.execute(query.order_by(Report.received_at, Report.id))]


def _action_items(incident: Incident) -> list[dict[str, Any]]:
    items = db.session.scalars(select(ActionItem).where(ActionItem.incident_id == incident.id)
                               .order_by(ActionItem.id))
    return [{"title": item.title, "owner": item.owner.name if item.owner else None,
             "due_date": item.due_date.isoformat() if item.due_date else None,
             "status": str(item.status), "link": item.link} for item in items]


def listed_timeline(items: list[dict[str, Any]], incident_id: str,
                     limit: int) -> list[dict[str, Any]]:
    """At most `limit` items for the document: the incident's own first, then the reports'
    earliest, shown in time order."""
    if len(items) <= limit:
        return items
    own = [i for i, item in enumerate(items) if item.get("subject") == incident_id]
    kept = set(own[:limit])
    for i, item in enumerate(items):
        if len(kept) >= limit:
            break
        if item.get("subject") != incident_id:
            kept.add(i)
    return [item for i, item in enumerate(items) if i in kept]


def timeline_dicts(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"at": item["at"], "author": item["author"], "kind": item["kind"],
             "text": item["text"], "subject": item.get("subject"),
             "source": item.get("source")}
            for item in items if not item.get("hidden")]


def build_document(incident: Incident, *, version: int | None = None,
                   include_reporter_contacts: bool = False,
                   include_end_user_hashes: bool = False,
                   whole_timeline: bool = True) -> RetroDocument:
    """The retrospective of `incident` (see the module docstring for which version).
    Without `whole_timeline` a draft's timeline is read only as far as the document lists
    it (the JSON needs it whole; a long incident's is 50,000 items). Checks no
    permission: the export functions below do."""
    retro: Retrospective | None = incident.retrospective
    published: RetrospectiveVersion | None = None
    if retro is not None:
        # One version only (each holds its whole timeline): the one named, or the latest.
        query = select(RetrospectiveVersion).where(
            RetrospectiveVersion.retrospective_id == retro.id)
        query = (query.where(RetrospectiveVersion.version == version) if version is not None
                 else query.order_by(RetrospectiveVersion.version.desc()).limit(1))
        published = db.session.scalar(query)
    if version is not None and published is None and not (
            retro is not None and retro.version == version
            and retro.state != RetrospectiveState.PUBLISHED):
        raise NotFound(f"{incident.public_id} has no retrospective version {version}.")

    if published is not None:
        state, number = RetrospectiveState.PUBLISHED, published.version
        sections_text, machine = dict(published.sections), set()
        facts_now = RetrospectiveFacts.from_dict(published.facts)
        timeline = timeline_dicts(published.timeline)
        total = len(timeline)
        published_at: datetime | None = published.published_at
    else:
        state = retro.state if retro else RetrospectiveState.DRAFT
        number = retro.version if retro else 1
        sections_text = dict(retro.sections) if retro else {}
        machine = set(retro.machine_written) if retro else set()
        facts_now = facts(incident=incident)
        if whole_timeline:
            timeline = timeline_dicts(
                item.as_dict() for item in build_timeline(incident, include_hidden=False))
            total = len(timeline)
        else:
            shown = timeline_listed(incident, limit=TIMELINE_LISTED)
            timeline, total = timeline_dicts(item.as_dict() for item in shown.items), shown.total
        published_at = None

    sections = [Section(key, SECTION_TITLES[key], sections_text.get(key) or "",
                        key in machine) for key in SECTIONS]
    linked = linked_in_order(incident)
    return RetroDocument(
        incident_id=incident.public_id, title=incident.title,
        severity=str(incident.severity),
        severity_meaning=SEVERITY_MEANINGS[incident.severity], status=str(incident.status),
        lead=incident.lead.name if incident.lead else None,
        participants=[user.name for user in incident.participants],
        projects=[project.name for project in incident.projects],
        affected_models=list(incident.affected_models or []),
        state=str(state), version=number, published_at=published_at, facts=facts_now,
        sections=sections, timeline=timeline, action_items=_action_items(incident),
        reports_count=len(linked), report_ids=[public_id for _, public_id in linked],
        reports=rows_of([report_id for report_id, _ in linked[:REPORTS_LISTED]],
                        contacts=include_reporter_contacts, hashes=include_end_user_hashes),
        include_contacts=include_reporter_contacts, include_hashes=include_end_user_hashes,
        listed_timeline=listed_timeline(timeline, incident.public_id, TIMELINE_LISTED),
        timeline_total=total,
    )


# --- Markdown --------------------------------------------------------------------------------


def _md_table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _md_link(url: str | None) -> str:
    """An http(s) link as Markdown; anything else as escaped text."""
    if not url:
        return ""
    if safe_link(url) is None or not url.lower().startswith(("http:", "https:")):
        return escape_cell(url)
    # Percent-encode what could end the destination or the table cell.
    destination = quote(url, safe=":/?#@!$&'*+,;=%-._~")
    return f"[{escape_cell(url, limit=80)}]({destination})"


def render_markdown_document(doc: RetroDocument) -> str:
    """The document as Markdown (see retrospective_markdown)."""
    e = escape_text
    blocks: list[str] = [f"# Retrospective: {e(doc.title)}", e(doc.subtitle)]
    if doc.is_draft:
        blocks.append(f"> **{doc.state_label.upper()}**: this retrospective is not published.")
    people = [
        f"- **Severity:** {e(doc.severity)}: {e(doc.severity_meaning)}",
        f"- **Status:** {e(doc.status)}",
        f"- **Lead:** {e(doc.lead or 'none')}",
        f"- **Participants:** {e(', '.join(doc.participants) or 'none')}",
        f"- **Projects:** {e(', '.join(doc.projects) or 'none')}",
        f"- **Affected models:** {e(', '.join(doc.affected_models) or 'none')}",
    ]
    blocks.append("\n".join(people))

    blocks.append("## Facts")
    blocks.append("\n".join(f"- **{e(label)}:** {e(value)}" for label, value in doc.fact_lines))
    for title, column, rows in doc.count_tables:
        blocks.append(f"### {e(title)}")
        blocks.append(_md_table([e(column), "Reports"],
                                ([escape_cell(name), str(n)] for name, n in rows))
                      if rows else "_None._")
    blocks.append("### SLA outcomes of the linked tickets")
    blocks.append(_md_table(["Metric", "Achieved", "Breached", "Open"],
                            ([e(m), str(a), str(b), str(o)] for m, a, b, o in doc.sla_rows))
                  if doc.sla_rows else "_No SLA clocks._")

    for section in doc.sections:
        blocks.append(f"## {e(section.title)}")
        if section.machine_written:
            blocks.append("> _Drafted by a language model; not yet reviewed by a person._")
        # The lead's own Markdown, as written.
        blocks.append(section.markdown.strip() or "_Not written._")

    blocks.append("## Timeline")
    if doc.timeline_note:
        blocks.append(f"_{e(doc.timeline_note)}_")
    blocks.append("\n".join(_md_timeline_item(item) for item in doc.listed_timeline)
                  if doc.listed_timeline else "_No events._")

    blocks.append("## Action items")
    blocks.append(_md_table(["Action", "Owner", "Due", "Status", "Link"], (
        [escape_cell(a["title"]), escape_cell(a["owner"] or "none"),
         escape_cell(a["due_date"] or "none"), escape_cell(a["status"]), _md_link(a["link"])]
        for a in doc.action_items)) if doc.action_items else "_None._")

    blocks.append("## Linked reports")
    if doc.reports_note:
        blocks.append(f"_{e(doc.reports_note)}_")
    if doc.reports:
        header = ["Report", "Received", "Reason", "Categories", "Model", "Response id",
                  "Description", "Answer reported"]
        header += ["Contact"] if doc.include_contacts else []
        header += ["End-user hash"] if doc.include_hashes else []
        blocks.append(_md_table(header, (_md_report_row(doc, r) for r in doc.reports)))
    else:
        blocks.append("_None._")
    return "\n\n".join(blocks) + "\n"


def _md_timeline_item(item: dict[str, Any]) -> str:
    text = escape_text(item["text"], multiline=True).replace("\n", "\n  ")
    return (f"- **{escape_text(_when(_when_iso(item['at'])))}** · {escape_text(item['kind'])} · "
            f"{escape_text(item['author'])}: {text}")


def _md_report_row(doc: RetroDocument, report: LinkedReport) -> list[str]:
    row = [escape_cell(report.public_id), escape_cell(_when(report.received_at)),
           escape_cell(report.reason), escape_cell(", ".join(report.flagged_categories)),
           escape_cell(report.model), escape_cell(report.response_id),
           escape_cell(report.description, limit=EXCERPT_CHARS),
           escape_cell(report.answer, limit=EXCERPT_CHARS)]
    row += [escape_cell(report.contact_email)] if doc.include_contacts else []
    row += [escape_cell(report.end_user_hash)] if doc.include_hashes else []
    return row


# --- HTML and PDF ---------------------------------------------------------------------------


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """Plain text cut to `limit` characters, blanks collapsed (for the document's table)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "…"


def render_html(doc: RetroDocument, *, stylesheet_href: str | None = None,
                standalone: bool = True) -> Markup:
    """The document as HTML (the template Jinja-escapes every plain-text value).
    `standalone` makes a whole page (the PDF's); without it, only the <article>, for a
    page of the app to include as it is."""
    return Markup(render_template(  # noqa: S704 - our template, autoescaped
        DOCUMENT_TEMPLATE, doc=doc, standalone=standalone, stylesheet_href=stylesheet_href,
        when=_when, when_iso=lambda text: _when(_when_iso(text)), excerpt=excerpt))


def render_pdf(doc: RetroDocument) -> bytes:
    return html_to_pdf(render_html(doc, stylesheet_href=PRINT_CSS_URL))


# --- JSON ------------------------------------------------------------------------------------


def document_dict(doc: RetroDocument) -> dict[str, Any]:
    """The JSON structure (see the module docstring)."""
    return {
        "format": JSON_FORMAT,
        "incident": {
            "id": doc.incident_id, "title": doc.title, "severity": doc.severity,
            "severity_meaning": doc.severity_meaning, "status": doc.status,
            "lead": doc.lead, "participants": list(doc.participants),
            "projects": list(doc.projects), "affected_models": list(doc.affected_models)},
        "state": doc.state,
        "version": doc.version,
        "published_at": _iso(doc.published_at),
        "facts": doc.facts.as_dict(),
        "sections": [{"key": s.key, "title": s.title, "markdown": s.markdown,
                      "machine_written": s.machine_written} for s in doc.sections],
        "timeline": [dict(item) for item in doc.timeline],
        "action_items": [dict(item) for item in doc.action_items],
        "linked_reports": {
            "count": doc.reports_count, "ids": list(doc.report_ids),
            "listed": [r.as_dict(contacts=doc.include_contacts, hashes=doc.include_hashes)
                       for r in doc.reports]},
    }


def _json_text(doc: RetroDocument) -> str:
    return json.dumps(document_dict(doc), ensure_ascii=False, indent=2) + "\n"


# --- CSV -------------------------------------------------------------------------------------


def neutralise_cell(value: Any) -> str:
    """A CSV cell no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


def _csv_rows(incident: Incident, *, contacts: bool, hashes: bool) -> Iterator[list[str]]:
    header = ["report", "received_at", "linked_at", "status", "priority", "reason",
              "flagged_categories", "model", "response_id", "description"]
    header += ["contact_email"] if contacts else []
    header += ["end_user_hash"] if hashes else []
    yield header
    columns = [Report.public_id, Report.received_at, IncidentReport.linked_at, Report.status,
               Report.priority, Report.reason, Report.flagged_categories, Report.model_name,
               Report.response_id, Report.description]
    columns += [Report.contact_email] if contacts else []
    columns += [Report.end_user_hash] if hashes else []
    query = (select(*columns).join(IncidentReport, IncidentReport.report_id == Report.id)
             .where(IncidentReport.incident_id == incident.id)
             .order_by(Report.received_at, Report.id))
    for row in db.session.execute(query).yield_per(1000):
        public_id, received, linked, status, priority, reason, categories, model, \
            response_id, description, *private = row
        yield [public_id, _iso(received), _iso(linked), str(status), str(priority), str(reason),
               "; ".join(categories or []), model, response_id, description, *private]


# --- the entry points ------------------------------------------------------------------------


def retrospective_document(*, actor: User, incident_id: str, version: int | None = None,
                           include_reporter_contacts: bool = False,
                           include_end_user_hashes: bool = False,
                           whole_timeline: bool = True) -> RetroDocument:
    """The document every export is made of (for a page that shows it as HTML)."""
    require(actor, PERMISSION)
    return build_document(find(incident_id), version=version,
                          include_reporter_contacts=include_reporter_contacts,
                          include_end_user_hashes=include_end_user_hashes,
                          whole_timeline=whole_timeline)


def retrospective_markdown(*, actor: User, incident_id: str, version: int | None = None,
                           include_reporter_contacts: bool = False,
                           include_end_user_hashes: bool = False) -> str:
    """One retrospective as Markdown: report text escaped, the sections as written."""
    return render_markdown_document(retrospective_document(
        actor=actor, incident_id=incident_id, version=version,
        include_reporter_contacts=include_reporter_contacts,
        include_end_user_hashes=include_end_user_hashes, whole_timeline=False))


def retrospective_html(*, actor: User, incident_id: str, version: int | None = None,
                       include_reporter_contacts: bool = False,
                       include_end_user_hashes: bool = False,
                       stylesheet_href: str | None = None, standalone: bool = True) -> Markup:
    """One retrospective as the HTML document the PDF is printed from."""
    return render_html(retrospective_document(
        actor=actor, incident_id=incident_id, version=version,
        include_reporter_contacts=include_reporter_contacts,
        include_end_user_hashes=include_end_user_hashes, whole_timeline=False),
        stylesheet_href=stylesheet_href, standalone=standalone)


def retrospective_pdf(*, actor: User, incident_id: str, version: int | None = None,
                      include_reporter_contacts: bool = False,
                      include_end_user_hashes: bool = False) -> bytes:
    """One retrospective as PDF, printed from the HTML document (fetching nothing)."""
    return render_pdf(retrospective_document(
        actor=actor, incident_id=incident_id, version=version,
        include_reporter_contacts=include_reporter_contacts,
        include_end_user_hashes=include_end_user_hashes, whole_timeline=False))


def retrospective_json(*, actor: User, incident_id: str, version: int | None = None,
                       include_reporter_contacts: bool = False,
                       include_end_user_hashes: bool = False) -> str:
    """One retrospective as JSON text ("flagdesk.retrospective/1", UTF-8, indented)."""
    return _json_text(retrospective_document(
        actor=actor, incident_id=incident_id, version=version,
        include_reporter_contacts=include_reporter_contacts,
        include_end_user_hashes=include_end_user_hashes))


def linked_reports_csv(*, actor: User, incident_id: str, include_reporter_contacts: bool = False,
                       include_end_user_hashes: bool = False) -> str:
    """The incident's linked reports as CSV text (BOM first; encode it as UTF-8)."""
    require(actor, PERMISSION)
    incident = find(incident_id)
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out)  # excel dialect: minimal quoting, CRLF
    for row in _csv_rows(incident, contacts=include_reporter_contacts,
                         hashes=include_end_user_hashes):
        writer.writerow([neutralise_cell(cell) for cell in row])
    return out.getvalue()


def published_zip(*, actor: User, start: date, end: date) -> bytes:
    """Every retrospective published from `start` to `end` (UTC dates, inclusive), each
    as Markdown, PDF and JSON of its latest version published then, and a manifest."""
    require(actor, PERMISSION)
    if end < start:
        raise ValidationFailed("The range ends before it starts.",
                               fields={"end": ["Must not be before start."]})
    since = datetime.combine(start, time.min, tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    chosen = [(published, published.retrospective.incident) for published in list_published(
        actor=actor, published_from=since, published_to=until, latest_only=True)]
    chosen.sort(key=lambda pair: (pair[0].published_at, pair[1].public_id))
    if len(chosen) > ZIP_MAX_RETROSPECTIVES:
        # Each PDF takes a second or two to print: a request must stay bounded.
        raise ValidationFailed(
            f"{len(chosen)} retrospectives were published in that range; a zip holds at most "
            f"{ZIP_MAX_RETROSPECTIVES}. Export a shorter range.",
            fields={"end": ["Range too long."]})

    buffer = io.BytesIO()
    manifest: dict[str, Any] = {"format": ZIP_FORMAT, "start": start.isoformat(),
                                "end": end.isoformat(), "retrospectives": []}
    newest = datetime(1980, 1, 1, tzinfo=UTC)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for published, incident in chosen:
            doc = build_document(incident, version=published.version)
            folder = f"{published.published_at.astimezone(UTC):%Y-%m-%d}_{incident.public_id}"
            stem = f"{incident.public_id}-v{published.version}"
            files = []
            for extension, data in (
                    ("md", render_markdown_document(doc).encode()),
                    ("pdf", render_pdf(doc)),
                    ("json", _json_text(doc).encode())):
                name = f"{folder}/{stem}.{extension}"
                _write(archive, name, data, published.published_at)
                files.append({"name": name, "bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()})
            manifest["retrospectives"].append({
                "incident": incident.public_id, "title": incident.title,
                "severity": str(incident.severity), "version": published.version,
                "published_at": _iso(published.published_at), "files": files})
            newest = max(newest, published.published_at)
        _write(archive, "manifest.json",
               (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode(), newest)
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: bytes, at: datetime) -> None:
    stamp = at.astimezone(UTC)
    info = zipfile.ZipInfo(name, date_time=(stamp.year, stamp.month, stamp.day, stamp.hour,
                                            stamp.minute, stamp.second))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
