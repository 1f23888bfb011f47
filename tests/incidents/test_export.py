"""Exports of a retrospective (app.incidents.export): Markdown, PDF, JSON, the linked
reports as CSV, and the zip of a date range, each checked against what the data says;
hostile report text in every format; end-user data only when asked for; who may export.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.models import Role, User
from app.core.clock import frozen
from app.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from app.extensions import db
from app.incidents import export, service
from app.incidents.markdown import escape_text, render_markdown
from app.incidents.models import Incident, Severity
from app.incidents.pdf import PRINT_CSS_URL, html_to_pdf, url_fetcher
from app.projects.models import Project
from app.reports.models import Priority, Reason, Report
from app.sla.models import ClockState, Metric, SlaClock
from tests.incidents.factories import at, make_report

pypdf = pytest.importorskip("pypdf")

HOSTILE = ("# heading [x](javascript:alert(1)) <script>alert(1)</script> "
           "![img](http://evil/x.png) |table| ``` fence")
FORMULA = '=HYPERLINK("http://evil")'
HOSTILE_MD = (r"\# heading \[x\](javascript:alert(1)) \<script\>alert(1)\</script\> "
              r"\!\[img\](http://evil/x.png) \|table\| \`\`\` fence")
FENCE_ANSWER = "```\nrm -rf /\n```\n| a | b |"

SUMMARY = ("A model update answered geography questions wrongly for **three hours**. "
           "See [the dashboard](https://dash.example.com/geo).")
IMPACT = "- 3 reports\n- one flagged for *hate*"
ROOT_CAUSE = "The 1.4 fine-tune dropped the geography set.\n\n<b>not bold</b>"


@dataclass
class Scenario:
    incident: Incident
    lead: User
    responder: User
    owner: User
    reports: list[Report]
    hidden_event_id: int


def _report(project: Project, **fields) -> Report:
    extra = {k: fields.pop(k) for k in ("response_id", "conversation", "contact_email",
                                         "end_user_hash") if k in fields}
    report = make_report(project, commit=False, **fields)
    for name, value in extra.items():
        setattr(report, name, value)
    db.session.commit()
    return report


def _clock(report: Report, metric: Metric, state: ClockState) -> None:
    db.session.add(SlaClock(report_id=report.id, metric=metric, state=state,
                            priority=Priority.P2, target_minutes=60,
                            started_at=report.received_at))
    db.session.commit()


@dataclass
class Loopback:
    """An HTTP server on 127.0.0.1 that records every request it gets."""

    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    state = Loopback()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def scenario(project: Project, make_user) -> Scenario:
    """An incident opened over three reports, walked through every status, its timeline
    written (one item hidden), two action items, a retrospective written, reviewed and
    published at 12:00 on Monday 5 January 2026."""
    lead = make_user(Role.LEAD, name="Lena Lead", email="lena@example.com")
    responder = make_user(Role.RESPONDER, name="Rui Responder", email="rui@example.com")
    owner = make_user(Role.RESPONDER, name="Olga Owner", email="olga@example.com")
    r1 = _report(project, received_at=at(5, 8, 10), reason=Reason.INACCURATE, categories=[],
                 model="gpt-test-1", description="It said Paris is in Italy.",
                 response_id="resp_1",
                 conversation=[{"role": "user", "content": "Where is Paris?"},
                               {"role": "assistant", "content": "Paris is in Italy."}],
                 contact_email="ana@example.org", end_user_hash="a" * 64)
    r2 = _report(project, received_at=at(5, 8, 40), reason=Reason.HARMFUL_OR_OFFENSIVE,
                 categories=["hate", "harassment"], model="gpt-test-1", description=HOSTILE,
                 response_id="resp_2|x",
                 conversation=[{"role": "assistant", "content": FENCE_ANSWER}],
                 end_user_hash="b" * 64)
    r3 = _report(project, received_at=at(5, 9, 5), reason=Reason.INACCURATE,
                 categories=["hate"], model="gpt-test-2", description=FORMULA)
    _clock(r1, Metric.FIRST_RESPONSE, ClockState.ACHIEVED)
    _clock(r1, Metric.RESOLUTION, ClockState.ACHIEVED)
    _clock(r2, Metric.FIRST_RESPONSE, ClockState.BREACHED)
    _clock(r3, Metric.FIRST_RESPONSE, ClockState.RUNNING)

    with frozen(at(5, 9, 30)) as move_to:
        incident = service.open_incident(
            actor=lead, title="Wrong capitals after the *1.4* update", severity=Severity.SEV2,
            report_ids=[r1.public_id, r2.public_id, r3.public_id],
            participant_ids=[responder.id], started_at=at(5, 8, 0),
            detected_at=at(5, 9, 15))
        key = incident.public_id
        move_to(at(5, 9, 45))
        service.add_timeline_entry(actor=lead, incident_id=key, kind="decision",
                                   body="Roll back to 1.3 <now>", at=at(5, 9, 40))
        for hour, minute, status in ((10, 0, "identified"), (10, 30, "monitoring"),
                                     (11, 0, "resolved"), (11, 5, "closed")):
            move_to(at(5, hour, minute))
            service.set_status(actor=lead, incident_id=key, status=status)
        hidden = db.session.scalar(
            select(AuditEvent.id).where(AuditEvent.subject_id == key,
                                        AuditEvent.action == "incident.status_changed")
            .order_by(AuditEvent.id).limit(1))
        service.hide_timeline_item(actor=lead, incident_id=key, source="audit",
                                   source_id=hidden)
        move_to(at(5, 11, 10))
        service.add_action_item(actor=lead, incident_id=key,
                                title="Add a geography eval | release gate", owner_id=owner.id,
                                due_date=date(2026, 1, 30),
                                link="https://tracker.example.com/T-1?a=(1)")
        service.add_action_item(actor=lead, incident_id=key,
                                title="Alert on a spike of inaccurate reports",
                                status="in_progress")
        move_to(at(5, 11, 20))
        service.save_sections(actor=lead, incident_id=key, sections={
            "summary": SUMMARY, "impact": IMPACT, "root_cause": ROOT_CAUSE,
            "lessons": "Evals gate releases."})
        service.submit_for_review(actor=lead, incident_id=key)
        service.sign_off(actor=lead, incident_id=key)
        move_to(at(5, 12, 0))
        service.publish(actor=lead, incident_id=key)
    return Scenario(incident, lead, responder, owner, [r1, r2, r3], hidden)



# --- what the data says, written out -----------------------------------------------------

SEV2 = ("Major: a serious failure for a large group of users or a sensitive category "
        "(self-harm, minors), with no workaround. Work on it today.")
NOT_WRITTEN = ("contributing_factors", "detection", "response_recovery", "went_well",
               "went_poorly", "got_lucky")


def expected_markdown(s: Scenario, *, contacts: bool = False, hashes: bool = False) -> str:
    key = s.incident.public_id
    r1, r2, r3 = (r.public_id for r in s.reports)
    report_header = ("| Report | Received | Reason | Categories | Model | Response id | "
                     "Description | Answer reported |"
                     + (" Contact |" if contacts else "") + (" End-user hash |" if hashes else ""))
    report_rule = "|" + "---|" * (8 + contacts + hashes)

    def private(contact: str, user_hash: str) -> str:
        return (f" {contact} |" if contacts else "") + (f" {user_hash} |" if hashes else "")

    return f"""# Retrospective: Wrong capitals after the \\*1.4\\* update

{key} · version 1 · Published · published 2026-01-05 12:00 UTC

- **Severity:** SEV2: {SEV2}
- **Status:** closed
- **Lead:** Lena Lead
- **Participants:** Rui Responder
- **Projects:** Chat
- **Affected models:** gpt-test-1, gpt-test-2

## Facts

- **Started:** 2026-01-05 08:00 UTC
- **Detected:** 2026-01-05 09:15 UTC
- **Mitigated:** 2026-01-05 10:30 UTC
- **Resolved:** 2026-01-05 11:00 UTC
- **Time to detect:** 1 h 15 min
- **Time to mitigate:** 2 h 30 min
- **Time to resolve:** 3 h 0 min
- **Linked reports:** 3 (first 2026-01-05 08:10 UTC, last 2026-01-05 09:05 UTC)
- **Unflagged reports:** 1
- **Tickets with a breached SLA:** 1
- **Participants:** Lena Lead, Rui Responder

### Linked reports by reason

| Reason | Reports |
|---|---|
| inaccurate | 2 |
| harmful_or_offensive | 1 |

### Linked reports by moderation category

| Category | Reports |
|---|---|
| hate | 2 |
| harassment | 1 |

### Linked reports by model

| Model | Reports |
|---|---|
| gpt-test-1 | 2 |
| gpt-test-2 | 1 |

### SLA outcomes of the linked tickets

| Metric | Achieved | Breached | Open |
|---|---|---|---|
| First response | 1 | 1 | 1 |
| Resolution | 1 | 0 | 0 |

## Summary

{SUMMARY}

## Impact

{IMPACT}

## Root cause

{ROOT_CAUSE}

""" + "".join(f"## {title}\n\n_Not written._\n\n" for title in (
        "Contributing factors", "Detection", "Response and recovery", "What went well",
        "What went poorly", "Where we got lucky")) + f"""## Lessons learned

Evals gate releases.

## Timeline

- **2026-01-05 09:30 UTC** · incident · Lena Lead: Incident opened: Wrong capitals after the \\*1.4\\* update (SEV2)
- **2026-01-05 09:30 UTC** · link · Lena Lead: 3 reports linked
- **2026-01-05 09:40 UTC** · decision · Lena Lead: Roll back to 1.3 \\<now\\>
- **2026-01-05 10:30 UTC** · status · Lena Lead: Status identified → monitoring
- **2026-01-05 11:00 UTC** · status · Lena Lead: Status monitoring → resolved
- **2026-01-05 11:05 UTC** · status · Lena Lead: Status resolved → closed

## Action items

| Action | Owner | Due | Status | Link |
|---|---|---|---|---|
| Add a geography eval \\| release gate | Olga Owner | 2026-01-30 | open | [https://tracker.example.com/T-1?a=(1)](https://tracker.example.com/T-1?a=%281%29) |
| Alert on a spike of inaccurate reports | none | none | in_progress |  |

## Linked reports

{report_header}
{report_rule}
| {r1} | 2026-01-05 08:10 UTC | inaccurate |  | gpt-test-1 | resp_1 | It said Paris is in Italy. | Paris is in Italy. |{private("ana@example.org", "a" * 64)}
| {r2} | 2026-01-05 08:40 UTC | harmful_or_offensive | hate, harassment | gpt-test-1 | resp_2\\|x | {HOSTILE_MD} | \\`\\`\\` rm -rf / \\`\\`\\` \\| a \\| b \\| |{private("", "b" * 64)}
| {r3} | 2026-01-05 09:05 UTC | inaccurate | hate | gpt-test-2 |  | \\=HYPERLINK("http://evil") |  |{private("", "")}
"""  # noqa: E501


def expected_json(s: Scenario) -> dict:
    key = s.incident.public_id
    r1, r2, r3 = (r.public_id for r in s.reports)
    sections = {"summary": SUMMARY, "impact": IMPACT, "root_cause": ROOT_CAUSE,
                "lessons": "Evals gate releases."}
    titles = {"summary": "Summary", "impact": "Impact", "root_cause": "Root cause",
              "contributing_factors": "Contributing factors", "detection": "Detection",
              "response_recovery": "Response and recovery", "went_well": "What went well",
              "went_poorly": "What went poorly", "got_lucky": "Where we got lucky",
              "lessons": "Lessons learned"}

    def event(time: str, kind: str, text: str, source: str = "audit") -> dict:
        return {"at": f"2026-01-05T{time}:00+00:00", "author": "Lena Lead", "kind": kind,
                "text": text, "subject": key, "source": source}

    def report(public_id: str, received: str, reason: str, categories: list[str],
               model: str, response_id: str | None, description: str,
               answer: str | None) -> dict:
        return {"id": public_id, "received_at": f"2026-01-05T{received}:00+00:00",
                "status": "new", "priority": "P2", "reason": reason,
                "flagged_categories": categories, "model": model, "response_id": response_id,
                "description": description, "answer": answer}

    return {
        "format": "flagdesk.retrospective/1",
        "incident": {"id": key, "title": "Wrong capitals after the *1.4* update",
                     "severity": "SEV2", "severity_meaning": SEV2, "status": "closed",
                     "lead": "Lena Lead", "participants": ["Rui Responder"],
                     "projects": ["Chat"], "affected_models": ["gpt-test-1", "gpt-test-2"]},
        "state": "published",
        "version": 1,
        "published_at": "2026-01-05T12:00:00+00:00",
        "facts": {
            "started_at": "2026-01-05T08:00:00+00:00",
            "detected_at": "2026-01-05T09:15:00+00:00",
            "mitigated_at": "2026-01-05T10:30:00+00:00",
            "resolved_at": "2026-01-05T11:00:00+00:00",
            "time_to_detect_seconds": 75 * 60, "time_to_mitigate_seconds": 150 * 60,
            "time_to_resolve_seconds": 180 * 60, "linked_reports": 3,
            "first_report_at": "2026-01-05T08:10:00+00:00",
            "last_report_at": "2026-01-05T09:05:00+00:00",
            "reports_by_reason": {"inaccurate": 2, "harmful_or_offensive": 1},
            "reports_by_category": {"hate": 2, "harassment": 1},
            "reports_by_model": {"gpt-test-1": 2, "gpt-test-2": 1},
            "reports_by_project": {"Chat": 3},
            "unflagged_reports": 1,
            "sla": [{"metric": "first_response", "achieved": 1, "breached": 1, "open": 1},
                    {"metric": "resolution", "achieved": 1, "breached": 0, "open": 0}],
            "tickets_breached": 1,
            "participants": ["Lena Lead", "Rui Responder"]},
        "sections": [{"key": k, "title": t, "markdown": sections.get(k, ""),
                      "machine_written": False} for k, t in titles.items()],
        "timeline": [
            event("09:30", "incident",
                  "Incident opened: Wrong capitals after the *1.4* update (SEV2)"),
            event("09:30", "link", "3 reports linked"),
            event("09:40", "decision", "Roll back to 1.3 <now>", source="entry"),
            event("10:30", "status", "Status identified → monitoring"),
            event("11:00", "status", "Status monitoring → resolved"),
            event("11:05", "status", "Status resolved → closed"),
        ],
        "action_items": [
            {"title": "Add a geography eval | release gate", "owner": "Olga Owner",
             "due_date": "2026-01-30", "status": "open",
             "link": "https://tracker.example.com/T-1?a=(1)"},
            {"title": "Alert on a spike of inaccurate reports", "owner": None,
             "due_date": None, "status": "in_progress", "link": None}],
        "linked_reports": {
            "count": 3, "ids": [r1, r2, r3],
            "listed": [
                report(r1, "08:10", "inaccurate", [], "gpt-test-1", "resp_1",
                       "It said Paris is in Italy.", "Paris is in Italy."),
                report(r2, "08:40", "harmful_or_offensive", ["hate", "harassment"],
                       "gpt-test-1", "resp_2|x", HOSTILE, FENCE_ANSWER),
                report(r3, "09:05", "inaccurate", ["hate"], "gpt-test-2", None, FORMULA,
                       None)]},
    }


# --- each format against the data ---------------------------------------------------------


def test_markdown_export_says_what_the_data_says(scenario):
    markdown = export.retrospective_markdown(actor=scenario.lead,
                                             incident_id=scenario.incident.public_id)

    assert markdown == expected_markdown(scenario)


def test_markdown_export_of_the_version_named(scenario):
    assert export.retrospective_markdown(
        actor=scenario.lead, incident_id=scenario.incident.public_id,
        version=1) == expected_markdown(scenario)


def test_json_export_says_what_the_data_says(scenario):
    text = export.retrospective_json(actor=scenario.lead,
                                     incident_id=scenario.incident.public_id)

    assert json.loads(text) == expected_json(scenario)
    assert text.endswith("}\n")


def test_csv_export_lists_every_linked_report(scenario):
    text = export.linked_reports_csv(actor=scenario.lead,
                                     incident_id=scenario.incident.public_id)
    data = text.encode("utf-8")

    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    r1, r2, r3 = (r.public_id for r in scenario.reports)
    linked = "2026-01-05T09:30:00+00:00"
    assert rows == [
        ["report", "received_at", "linked_at", "status", "priority", "reason",
         "flagged_categories", "model", "response_id", "description"],
        [r1, "2026-01-05T08:10:00+00:00", linked, "new", "P2", "inaccurate", "",
         "gpt-test-1", "resp_1", "It said Paris is in Italy."],
        [r2, "2026-01-05T08:40:00+00:00", linked, "new", "P2", "harmful_or_offensive",
         "hate; harassment", "gpt-test-1", "resp_2|x", HOSTILE],
        [r3, "2026-01-05T09:05:00+00:00", linked, "new", "P2", "inaccurate", "hate",
         "gpt-test-2", "", "'" + FORMULA],
    ]


def test_csv_carries_contacts_and_hashes_only_when_asked(scenario):
    key = scenario.incident.public_id
    plain = export.linked_reports_csv(actor=scenario.lead, incident_id=key)
    both = export.linked_reports_csv(actor=scenario.lead, incident_id=key,
                                     include_reporter_contacts=True,
                                     include_end_user_hashes=True)
    contacts = export.linked_reports_csv(actor=scenario.lead, incident_id=key,
                                         include_reporter_contacts=True)

    assert "ana@example.org" not in plain and "a" * 64 not in plain
    assert "contact_email" not in plain and "end_user_hash" not in plain
    rows = list(csv.reader(io.StringIO(both.removeprefix("\ufeff"), newline="")))
    assert rows[0][-2:] == ["contact_email", "end_user_hash"]
    assert [row[-2:] for row in rows[1:]] == [["ana@example.org", "a" * 64],
                                               ["", "b" * 64], ["", ""]]
    assert "ana@example.org" in contacts and "a" * 64 not in contacts


def test_pdf_export_shows_the_document(scenario):
    pdf = export.retrospective_pdf(actor=scenario.lead, incident_id=scenario.incident.public_id)

    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = " ".join(text.split())
    for expected in (
            "Retrospective: Wrong capitals after the *1.4* update",
            f"{scenario.incident.public_id} · version 1 · Published",
            "SEV2: Major: a serious failure", "Time to detect 1 h 15 min",
            "Time to mitigate 2 h 30 min", "Time to resolve 3 h 0 min",
            "First response 1 1 1", "inaccurate 2", "hate 2",
            "A model update answered geography questions wrongly for three hours. "
            "See the dashboard.",
            "<b>not bold</b>", "Evals gate releases.",
            "Lena Lead: Roll back to 1.3 <now>", "Status resolved → closed",
            "Add a geography eval | release gate", "It said Paris is in Italy.",
            f"Page 1 of {len(reader.pages)}"):
        assert expected in flat, expected
    # Hidden from the published timeline; not end-user data unless asked.
    assert "investigating → identified" not in flat
    assert "ana@example.org" not in flat and "a" * 64 not in flat
    # The lead's https link is a link; nothing else is.
    uris = [annotation.get_object()["/A"]["/URI"] for page in reader.pages
            for annotation in page.get("/Annots") or []
            if "/A" in annotation.get_object() and "/URI" in annotation.get_object()["/A"]]
    assert "https://dash.example.com/geo" in uris
    assert not [uri for uri in uris if "evil" in uri or "javascript" in uri.lower()]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) "
                    "not installed: the PDF's text is checked, not its picture")
def test_pdf_first_page_renders_to_an_image(scenario, tmp_path):
    pdf = export.retrospective_pdf(actor=scenario.lead, incident_id=scenario.incident.public_id)
    (tmp_path / "retro.pdf").write_bytes(pdf)

    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1",
                    str(tmp_path / "retro.pdf"), str(tmp_path / "page")], check=True,
                   timeout=60)

    (image,) = tmp_path.glob("page*.png")
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert image.stat().st_size > 5_000  # text on it, not a blank page


def test_zip_of_a_date_range(scenario):
    key = scenario.incident.public_id
    data = export.published_zip(actor=scenario.lead, start=date(2026, 1, 1),
                                end=date(2026, 1, 5))

    archive = zipfile.ZipFile(io.BytesIO(data))
    folder = f"2026-01-05_{key}"
    assert archive.namelist() == [f"{folder}/{key}-v1.md", f"{folder}/{key}-v1.pdf",
                                  f"{folder}/{key}-v1.json", "manifest.json"]
    assert archive.read(f"{folder}/{key}-v1.md").decode() == expected_markdown(scenario)
    assert json.loads(archive.read(f"{folder}/{key}-v1.json")) == expected_json(scenario)
    pdf_text = pypdf.PdfReader(io.BytesIO(archive.read(f"{folder}/{key}-v1.pdf"))) \
        .pages[0].extract_text()
    assert "Wrong capitals after the *1.4* update" in " ".join(pdf_text.split())
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "flagdesk.retrospectives-zip/1"
    assert (manifest["start"], manifest["end"]) == ("2026-01-01", "2026-01-05")
    (entry,) = manifest["retrospectives"]
    assert {k: entry[k] for k in ("incident", "title", "severity", "version",
                                  "published_at")} == {
        "incident": key, "title": "Wrong capitals after the *1.4* update",
        "severity": "SEV2", "version": 1, "published_at": "2026-01-05T12:00:00+00:00"}
    assert [(f["name"], f["bytes"], f["sha256"]) for f in entry["files"]] == [
        (name, len(archive.read(name)), hashlib.sha256(archive.read(name)).hexdigest())
        for name in archive.namelist()[:3]]
    assert archive.getinfo("manifest.json").date_time == (2026, 1, 5, 12, 0, 0)
    # Same data, same bytes.
    assert export.published_zip(actor=scenario.lead, start=date(2026, 1, 1),
                                end=date(2026, 1, 5)) == data


def test_zip_takes_the_latest_version_published_in_the_range(scenario):
    key = scenario.incident.public_id
    lead = scenario.lead
    with frozen(at(7, 9, 0)) as move_to:
        service.reopen(actor=lead, incident_id=key)
        service.save_sections(actor=lead, incident_id=key,
                              sections={"summary": "Second thoughts."})
        service.submit_for_review(actor=lead, incident_id=key)
        service.sign_off(actor=lead, incident_id=key)
        move_to(at(7, 10, 0))
        service.publish(actor=lead, incident_id=key)

    first_day = zipfile.ZipFile(io.BytesIO(export.published_zip(
        actor=lead, start=date(2026, 1, 5), end=date(2026, 1, 5))))
    both_days = zipfile.ZipFile(io.BytesIO(export.published_zip(
        actor=lead, start=date(2026, 1, 5), end=date(2026, 1, 7))))
    nothing = zipfile.ZipFile(io.BytesIO(export.published_zip(
        actor=lead, start=date(2026, 1, 6), end=date(2026, 1, 6))))

    assert first_day.read(f"2026-01-05_{key}/{key}-v1.md").decode() == \
        expected_markdown(scenario)
    assert [n for n in both_days.namelist() if n.endswith(".md")] == \
        [f"2026-01-07_{key}/{key}-v2.md"]
    assert "Second thoughts." in both_days.read(f"2026-01-07_{key}/{key}-v2.md").decode()
    assert nothing.namelist() == ["manifest.json"]
    assert json.loads(nothing.read("manifest.json"))["retrospectives"] == []
    # The versions stay readable one by one, and the default is the latest.
    assert export.retrospective_markdown(actor=lead, incident_id=key, version=1) == \
        expected_markdown(scenario)
    latest = export.retrospective_markdown(actor=lead, incident_id=key)
    assert "version 2 · Published · published 2026-01-07 10:00 UTC" in latest


def test_zip_refuses_a_backward_range(scenario):
    with pytest.raises(ValidationFailed):
        export.published_zip(actor=scenario.lead, start=date(2026, 1, 5), end=date(2026, 1, 4))


def test_a_draft_exports_as_a_draft_with_facts_computed_now(project, make_user):
    lead = make_user(Role.LEAD)
    report = make_report(project, received_at=at(5, 8, 0))
    with frozen(at(5, 9, 0)):
        incident = service.open_incident(actor=lead, title="Slow answers", severity="SEV4",
                                         report_ids=[report.public_id])
        service.save_sections(actor=lead, incident_id=incident.public_id,
                              sections={"summary": "Work in progress."})
    markdown = export.retrospective_markdown(actor=lead, incident_id=incident.public_id)
    data = json.loads(export.retrospective_json(actor=lead, incident_id=incident.public_id))

    assert f"{incident.public_id} · version 1 · Draft · not published" in markdown
    assert "> **DRAFT**: this retrospective is not published." in markdown
    assert "- **Time to detect:** 1 h 0 min" in markdown
    assert (data["state"], data["version"], data["published_at"]) == ("draft", 1, None)
    assert data["sections"][0]["markdown"] == "Work in progress."
    with pytest.raises(NotFound):
        export.retrospective_markdown(actor=lead, incident_id=incident.public_id, version=2)


def test_the_document_lists_at_most_so_many_items_and_says_so(scenario, monkeypatch):
    monkeypatch.setattr(export, "TIMELINE_LISTED", 4)
    monkeypatch.setattr(export, "REPORTS_LISTED", 2)
    key = scenario.incident.public_id

    markdown = export.retrospective_markdown(actor=scenario.lead, incident_id=key)
    data = json.loads(export.retrospective_json(actor=scenario.lead, incident_id=key))

    assert ("_Showing 4 of 6 timeline items: the written entries and incident events, then "
            "the linked reports' events in time order. The JSON export has all of them._"
            ) in markdown
    assert markdown.count("\n- **2026-01-05") == 4
    assert ("_Showing the first 2 of 3 linked reports (by time received). The CSV export "
            "lists them all._") in markdown
    assert scenario.reports[2].public_id not in markdown.split("## Linked reports")[1]
    assert len(data["timeline"]) == 6
    assert data["linked_reports"]["count"] == 3 and len(data["linked_reports"]["listed"]) == 2


def test_the_document_keeps_the_incidents_own_items_before_the_reports_events():
    items = [{"subject": "rep_1" if i % 2 else "inc_1", "n": i} for i in range(10)]

    listed = export.listed_timeline(items, "inc_1", 7)

    # All five of the incident's, then the earliest two of the reports', in time order.
    assert [item["n"] for item in listed] == [0, 1, 2, 3, 4, 6, 8]


# --- hostile report text, in every format -------------------------------------------------


MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def test_hostile_text_stays_text_in_the_markdown(scenario):
    markdown = export.retrospective_markdown(actor=scenario.lead,
                                             incident_id=scenario.incident.public_id)
    tokens = MD.parse(markdown)
    inline = [child for token in tokens for child in token.children or ()]

    links = [t.attrGet("href") for t in inline if t.type == "link_open"]
    assert links == ["https://dash.example.com/geo",
                     "https://tracker.example.com/T-1?a=%281%29"]  # the lead's, only
    assert not [t for t in inline if t.type in ("image", "code_inline")]
    # Raw HTML only where the lead wrote it in a section (kept as Markdown, as written).
    assert [t.content for t in inline if t.type == "html_inline"] == ["<b>", "</b>"]
    assert not [t for t in tokens if t.type in ("html_block", "fence", "code_block")]
    assert [t.content for t in tokens if t.type == "inline" and t.content.startswith("#")] == []
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "heading" not in " ".join(headings)
    # The reports' table has its 3 rows and 8 cells each: no pipe broke out of a cell.
    tables = [i for i, t in enumerate(tokens) if t.type == "table_open"]
    last = tokens[tables[-1]:]
    rows = [t for t in last if t.type == "tr_open"]
    assert len(rows) == 4
    cells = [t for t in last[:last.index(next(t for t in last if t.type == "table_close"))]
             if t.type in ("td_open", "th_open")]
    assert len(cells) == 4 * 8
    rendered = MD.render(markdown)
    assert "<script>" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_hostile_text_is_escaped_in_the_html(scenario):
    html = export.retrospective_html(actor=scenario.lead,
                                     incident_id=scenario.incident.public_id)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "javascript:" not in html.split("<body>")[0]
    assert 'href="javascript' not in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html  # raw HTML in the lead's Markdown too
    assert "<strong>three hours</strong>" in html  # but the Markdown itself is rendered
    assert "Roll back to 1.3 &lt;now&gt;" in html


def test_hostile_text_shows_as_text_in_the_pdf(scenario):
    pdf = export.retrospective_pdf(actor=scenario.lead, incident_id=scenario.incident.public_id)
    flat = " ".join("\n".join(p.extract_text() for p in pypdf.PdfReader(
        io.BytesIO(pdf)).pages).split())

    assert "<script>alert(1)</script>" in flat
    assert "![img](http://evil/x.png)" in flat
    assert '=HYPERLINK("http://evil")' in flat
    assert b"javascript" not in pdf.lower()


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_neutralised_in_the_csv(project, make_user, start):
    lead = make_user(Role.LEAD)
    report = _report(project, description=f"{start}1+1", model=f"{start}cmd|' /C calc'!A0",
                     response_id="@SUM(A1)")
    incident = service.open_incident(actor=lead, title="Formulas", severity="SEV4",
                                     report_ids=[report.public_id])

    text = export.linked_reports_csv(actor=lead, incident_id=incident.public_id)

    header, row = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    cells = dict(zip(header, row, strict=True))
    assert cells["description"] == f"'{start}1+1"
    assert cells["model"] == f"'{start}cmd|' /C calc'!A0"
    assert cells["response_id"] == "'@SUM(A1)"


def test_a_report_with_an_image_url_fetches_nothing_when_printed(project, make_user,
                                                                  loopback):
    lead = make_user(Role.LEAD)
    report = _report(project, description=f'<img src="{loopback.url}/pixel.png"> '
                                          f"![x]({loopback.url}/md.png) file:///etc/hostname")
    incident = service.open_incident(actor=lead, title="Pixels", severity="SEV4",
                                     report_ids=[report.public_id])
    with frozen(at(5, 9, 0)):
        service.save_sections(actor=lead, incident_id=incident.public_id, sections={
            "summary": f"![chart]({loopback.url}/chart.png) and [a link]({loopback.url}/a)"})

    pdf = export.retrospective_pdf(actor=lead, incident_id=incident.public_id)

    assert pdf.startswith(b"%PDF-")
    assert loopback.requests == []


def test_the_pdf_renderer_refuses_every_url_but_the_print_stylesheet(loopback, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not really")
    fetcher = url_fetcher()
    html = (f'<html><head><link rel="stylesheet" href="{PRINT_CSS_URL}">'
            f'<link rel="stylesheet" href="{loopback.url}/evil.css"></head><body>'
            f'<p>Hello</p><img src="{loopback.url}/x.png"><img src="{secret.as_uri()}">'
            f'<img src="/etc/hostname"><p class="bg">x</p></body></html>')

    pdf = html_to_pdf(html, fetcher=fetcher)

    assert "Hello" in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert loopback.requests == []
    assert sorted(fetcher.refused) == sorted([f"{loopback.url}/evil.css",
                                              f"{loopback.url}/x.png", secret.as_uri()])
    # The print stylesheet was applied: its page footer is there.
    assert "Page 1 of 1" in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


# --- end-user data and permissions ---------------------------------------------------------


def test_markdown_and_json_carry_contacts_and_hashes_only_when_asked(scenario):
    key = scenario.incident.public_id
    lead = scenario.lead
    for function in (export.retrospective_markdown, export.retrospective_json,
                     export.retrospective_html):
        plain = function(actor=lead, incident_id=key)
        assert "ana@example.org" not in plain and "a" * 64 not in plain, function
        assert "b" * 64 not in plain, function
    assert export.retrospective_markdown(
        actor=lead, incident_id=key, include_reporter_contacts=True,
        include_end_user_hashes=True) == expected_markdown(scenario, contacts=True, hashes=True)
    only_hashes = export.retrospective_markdown(actor=lead, incident_id=key,
                                                include_end_user_hashes=True)
    assert only_hashes == expected_markdown(scenario, hashes=True)
    data = json.loads(export.retrospective_json(actor=lead, incident_id=key,
                                                include_reporter_contacts=True))
    assert [r["contact_email"] for r in data["linked_reports"]["listed"]] == \
        ["ana@example.org", None, None]
    assert "end_user_hash" not in data["linked_reports"]["listed"][0]
    pdf = export.retrospective_pdf(actor=lead, incident_id=key, include_reporter_contacts=True,
                                   include_end_user_hashes=True)
    flat = " ".join("".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
                    .split())
    assert "ana@example.org" in flat and "a" * 64 in flat


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RESPONDER])
def test_only_leads_and_admins_export(scenario, make_user, role):
    user = make_user(role)
    key = scenario.incident.public_id
    for call in (
            lambda: export.retrospective_markdown(actor=user, incident_id=key),
            lambda: export.retrospective_json(actor=user, incident_id=key),
            lambda: export.retrospective_pdf(actor=user, incident_id=key),
            lambda: export.retrospective_html(actor=user, incident_id=key),
            lambda: export.linked_reports_csv(actor=user, incident_id=key),
            lambda: export.published_zip(actor=user, start=date(2026, 1, 1),
                                         end=date(2026, 1, 31))):
        with pytest.raises(Forbidden):
            call()


def test_an_admin_exports_and_nobody_signed_out_does(scenario, make_user):
    admin = make_user(Role.ADMIN)
    key = scenario.incident.public_id

    assert export.retrospective_markdown(actor=admin, incident_id=key) == \
        expected_markdown(scenario)
    with pytest.raises(Unauthorized):
        export.retrospective_markdown(actor=None, incident_id=key)
    with pytest.raises(NotFound):
        export.retrospective_markdown(actor=admin, incident_id="inc_nope")


# --- the escaping and the safe renderer on their own ------------------------------------------

_PIECES = st.sampled_from(
    list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + list("ab1 \t") + [
        "é", "\u00a0", "www.", "http://x.y", "1.", "2)", "- ", "+ ", "&amp;", "&#x3C;", "<b>",
        "```", "~~~", "    ", "***", "___", "a_b", "_a_", "[x]: /u", "<http://a.b>", "|-|",
        "javascript:", "\x00", "\x1b"])
_LINE = st.lists(_PIECES, max_size=30).map("".join)


def _inline(tokens) -> str:
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    parts = []
    for child in tokens[1].children:
        assert child.type in ("text", "softbreak", "text_special"), child
        parts.append("\n" if child.type == "softbreak" else child.content)
    return "".join(parts)


def _normal(text: str) -> str:
    return " ".join(text.replace("\x00", "").replace("\x1b", "").split())


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_LINE)
def test_escaped_text_renders_as_exactly_its_characters(text):
    escaped = escape_text(text)

    if not _normal(text):
        assert escaped == ""
    else:
        assert _inline(MD.parse(escaped)) == _normal(text)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_LINE)
def test_escaped_text_stays_in_its_table_cell(text):
    tokens = MD.parse(f"| a | b |\n|---|---|\n| x | {escape_text(text)} |\n")

    cells = [t for t in tokens if t.type == "inline"]
    assert len(cells) == 4
    assert all(c.type in ("text", "text_special") for c in cells[3].children)
    assert "".join(c.content for c in cells[3].children) == _normal(text)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE.filter(lambda line: _normal(line) != ""), min_size=1, max_size=5))
def test_escaped_lines_stay_in_their_list_item(lines):
    escaped = escape_text("\n".join(lines), multiline=True).replace("\n", "\n  ")

    tokens = MD.parse(f"- **t** · k: {escaped}\n- next\n")

    assert [t.type for t in tokens].count("list_item_open") == 2
    children = [c for c in next(t for t in tokens if t.type == "inline").children
                if not (c.type == "text" and c.content == "")]
    assert [c.type for c in children[:3]] == ["strong_open", "text", "strong_close"]
    rest = []
    for child in children[3:]:
        assert child.type in ("text", "softbreak", "text_special"), child
        rest.append("\n" if child.type == "softbreak" else child.content)
    assert "".join(rest) == " · k: " + "\n".join(_normal(line) for line in lines)


def test_escape_text_cuts_before_escaping():
    assert escape_text("abc <def> ghi", limit=6) == r"abc \<d…"
    assert escape_text("# a\n\n1. b", multiline=True) == "\\# a\n\n1\\. b"


def test_render_markdown_is_safe():
    html = str(render_markdown(
        "# Title\n\n[js](javascript:alert(1)) [data](data:text/html;base64,x) "
        "[ok](https://example.com/a) [mail](mailto:a@example.com) [rel](/admin)\n\n"
        "![pixel](http://evil.example/x.png)\n\n<script>alert(1)</script>\n\n"
        "<img src=x onerror=alert(1)>"))

    assert "<h3>Title</h3>" in html
    assert 'href="https://example.com/a"' in html and 'href="mailto:a@example.com"' in html
    assert "javascript:" not in html.replace("[js](javascript:alert(1))", "")
    assert 'href="javascript' not in html and 'href="data:' not in html
    assert 'href="/admin"' not in html
    assert "<img" not in html and "<script>" not in html
    assert '<a href="http://evil.example/x.png" rel="nofollow noopener noreferrer">pixel</a>' \
        in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert str(render_markdown("")) == ""


def test_zip_refuses_more_than_it_can_print_in_one_request(scenario, monkeypatch):
    monkeypatch.setattr(export, "ZIP_MAX_RETROSPECTIVES", 0)

    with pytest.raises(ValidationFailed, match="at most 0"):
        export.published_zip(actor=scenario.lead, start=date(2026, 1, 5), end=date(2026, 1, 5))


def test_the_document_can_be_included_in_a_page(scenario):
    doc = export.retrospective_document(actor=scenario.lead,
                                        incident_id=scenario.incident.public_id)

    fragment = str(export.render_html(doc, standalone=False))
    page = str(export.render_html(doc, stylesheet_href=PRINT_CSS_URL))

    assert fragment.lstrip().startswith('<article class="retrospective"')
    assert fragment.rstrip().endswith("</article>")
    assert "<html" not in fragment and "<link" not in fragment
    assert page.startswith("<!doctype html>")
    assert f'<link rel="stylesheet" href="{PRINT_CSS_URL}">' in page
    assert fragment.strip() in page
    assert "style=" not in page and "<script" not in page  # the app's CSP allows neither
