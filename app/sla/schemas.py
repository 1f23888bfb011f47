"""What the SLA admin forms and the /stats filters accept, and the choices they offer.

Forms are parsed into plain values plus an error per field, so that a form that fails is
shown again with each message next to its field and everything typed kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

import holidays
from holidays import registry

from app.moderation import CATEGORIES
from app.reports.models import Priority
from app.sla.models import DAYS, Metric
from app.sla.policies import MAX_TARGET_MINUTES

DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                            "Saturday", "Sunday"), strict=True))
METRICS = (Metric.FIRST_RESPONSE, Metric.NEXT_UPDATE, Metric.RESOLUTION)
CATEGORY_ROWS_FREE = 3  # empty rows the policy form offers for new category targets
MAX_CATEGORY_ROWS = 60
MAX_STATS_DAYS = 366
Errors = dict[str, str]


# --- choices ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """IANA zones people pick (Area/City, and UTC), not the legacy aliases."""
    legacy = ("Etc/", "SystemV/", "US/", "Brazil/", "Canada/", "Chile/", "Mexico/")
    zones = {z for z in available_timezones()
             if "/" in z and not z.startswith(legacy) and z[0].isupper()}
    return ("UTC", *sorted(zones))


def _spaced(name: str) -> str:
    """"UnitedStates" -> "United States" (the holidays registry's class names)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace(" And ", " and ")


@lru_cache(maxsize=1)
def holiday_countries() -> tuple[tuple[str, str], ...]:
    """(ISO 3166 alpha-2 code, name) of every country the holidays package knows."""
    found = {codes[1]: _spaced(codes[0]) for codes in registry.COUNTRIES.values()}
    return tuple(sorted(found.items(), key=lambda item: item[1]))


@lru_cache(maxsize=1)
def holiday_subdivisions() -> dict[str, tuple[tuple[str, str], ...]]:
    """Per country code, its regions as (code, label), e.g. ("BY", "BY · Bayern")."""
    supported = holidays.list_supported_countries()
    found = {}
    for code, _ in holiday_countries():
        codes = supported.get(code) or []
        if not codes:
            continue
        aliases = getattr(holidays.country_holidays(code).__class__,
                          "subdivisions_aliases", {}) or {}
        names: dict[str, str] = {}
        for name, sub in aliases.items():
            names.setdefault(sub, name)
        found[code] = tuple((sub, f"{sub} · {names[sub]}" if sub in names else sub)
                            for sub in codes)
    return found


# --- calendars -------------------------------------------------------------------------

_TIME = r"(?:[01]?\d|2[0-3]):[0-5]\d|24:00"
_SPAN = re.compile(rf"\s*({_TIME})\s*(?:-|–|—|to)\s*({_TIME})\s*")


def _hhmm(value: str) -> str:
    hours, minutes = value.split(":")
    return f"{int(hours):02d}:{minutes}"


def parse_spans(text: str) -> list[list[str]]:
    """"09:00-12:00, 13:00-17:00" -> [["09:00", "12:00"], ["13:00", "17:00"]]. A span
    that ends at or before its start runs past midnight ("22:00-06:00"). Raises
    ValueError with a message for the admin."""
    spans = []
    for part in re.split(r"[,;\n]", text or ""):
        if not part.strip():
            continue
        match = _SPAN.fullmatch(part)
        if match is None:
            raise ValueError(f"“{part.strip()}” is not a span like 09:00-17:00.")
        start, end = _hhmm(match[1]), _hhmm(match[2])
        if start == "24:00":
            raise ValueError("A span starts at 23:59 at the latest.")
        spans.append([start, end])
    return spans


def spans_text(spans: list[list[str]] | None) -> str:
    return ", ".join(f"{a}-{b}" for a, b in spans or [])


def week_text(week: Mapping[str, list[list[str]]] | None) -> str:
    """A week's hours in a line: "Mon–Fri 09:00-17:00; Sat 10:00-14:00"."""
    short = {d: DAY_NAMES[d][:3] for d in DAYS}
    runs: list[tuple[str, str, str]] = []  # (first day, last day, spans)
    for day in DAYS:
        spans = spans_text((week or {}).get(day))
        if runs and runs[-1][2] == spans and DAYS.index(runs[-1][1]) == DAYS.index(day) - 1:
            runs[-1] = (runs[-1][0], day, spans)
        else:
            runs.append((day, day, spans))
    parts = [f"{short[a]}{'–' + short[b] if b != a else ''} {spans}"
             for a, b, spans in runs if spans]
    return "; ".join(parts) or "no working hours"


@dataclass
class CalendarForm:
    """A calendar form as typed (`raw`) and, when it parsed, as the service takes it."""

    raw: dict[str, str]
    errors: Errors = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def calendar_raw(calendar: Any | None) -> dict[str, str]:
    """The form's fields for a stored calendar (or a new one's defaults)."""
    if calendar is None:
        return {"name": "", "timezone": "UTC", "holiday_country": "",
                "holiday_subdivision": "", "extra_holidays": "",
                **{f"hours_{d}": "09:00-17:00" if d in DAYS[:5] else "" for d in DAYS}}
    return {"name": calendar.name, "timezone": calendar.timezone,
            "holiday_country": calendar.holiday_country or "",
            "holiday_subdivision": calendar.holiday_subdivision or "",
            "extra_holidays": "\n".join(calendar.extra_holidays or []),
            **{f"hours_{d}": spans_text((calendar.week or {}).get(d)) for d in DAYS}}


def parse_calendar(form: Mapping[str, str]) -> CalendarForm:
    keys = ["name", "timezone", "holiday_country", "holiday_subdivision", "extra_holidays",
            *(f"hours_{d}" for d in DAYS)]
    raw = {k: str(form.get(k, "")) for k in keys}
    result = CalendarForm(raw=raw)
    errors = result.errors
    name = raw["name"].strip()
    if not name or len(name) > 120:
        errors["name"] = "Name the calendar (at most 120 characters)."
    if raw["timezone"] not in timezones():
        errors["timezone"] = "Pick a timezone from the list."
    week: dict[str, list[list[str]]] = {}
    for day in DAYS:
        try:
            week[day] = parse_spans(raw[f"hours_{day}"])
        except ValueError as error:
            errors[f"hours_{day}"] = str(error)
    if not errors.keys() & {f"hours_{d}" for d in DAYS} and not any(week.values()):
        errors["hours_mon"] = "Give working hours on at least one day."
    country = raw["holiday_country"].strip().upper()
    subdivision = raw["holiday_subdivision"].strip()
    if country and country not in dict(holiday_countries()):
        errors["holiday_country"] = "Pick a country from the list (or none)."
    elif subdivision and not country:
        errors["holiday_subdivision"] = "A region needs its country."
    elif subdivision and subdivision not in dict(holiday_subdivisions().get(country, ())):
        regions = ", ".join(c for c, _ in holiday_subdivisions().get(country, ())) or "none"
        errors["holiday_subdivision"] = (
            f"Not a region of {dict(holiday_countries())[country]}; its regions: {regions}.")
    extra = []
    for token in re.split(r"[\s,;]+", raw["extra_holidays"].strip()):
        if not token:
            continue
        try:
            extra.append(date.fromisoformat(token).isoformat())
        except ValueError:
            errors["extra_holidays"] = f"“{token[:40]}” is not a date as YYYY-MM-DD."
            break
    result.values = {"name": name, "timezone": raw["timezone"], "week": week,
                     "holiday_country": country, "holiday_subdivision": subdivision,
                     "extra_holidays": sorted(set(extra))}
    return result


# --- policies ----------------------------------------------------------------------------

_DURATION = re.compile(r"\s*(?:(\d{1,5})\s*h(?:ours?)?)?\s*(?:(\d{1,6})\s*m(?:in(?:utes?)?)?)?\s*",
                       re.I)


def parse_minutes(text: str) -> int | None:
    """"15m", "4h", "1h 30m", "90" (minutes) -> minutes; "" -> None (no target).
    Raises ValueError with a message for the admin."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        minutes = int(text)
    else:
        match = _DURATION.fullmatch(text)
        if match is None or not (match[1] or match[2]):
            raise ValueError(f"“{text[:20]}” is not a duration like 15m, 4h or 1h 30m.")
        minutes = int(match[1] or 0) * 60 + int(match[2] or 0)
    if not 0 < minutes <= MAX_TARGET_MINUTES:
        raise ValueError("Between 1 minute and 1440h (60 days).")
    return minutes


def minutes_text(minutes: int | None) -> str:
    if not minutes:
        return ""
    hours, rest = divmod(minutes, 60)
    return " ".join(p for p in (f"{hours}h" if hours else "", f"{rest}m" if rest else "") if p)


def target_key(metric: Any, priority: Any) -> str:
    return f"target_{metric}_{priority}"


@dataclass
class PolicyForm:
    raw: dict[str, str]
    category_rows: list[dict[str, str]]
    errors: Errors = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # {(metric, priority): minutes} and {(metric, category): minutes}; absent: no target.
    targets: dict[tuple[Metric, Priority], int] = field(default_factory=dict)
    category_targets: dict[tuple[Metric, str], int] = field(default_factory=dict)


def policy_raw(policy: Any | None, calendar_id: int | None) -> tuple[dict[str, str],
                                                                      list[dict[str, str]]]:
    """The form's fields for a stored policy (or a new one's defaults)."""
    raw = {"calendar_id": str(policy.calendar_id if policy else calendar_id or ""),
           "at_risk_percent": str(round((policy.at_risk_share if policy else 0.75) * 100)),
           "p0_around_the_clock": "on" if (policy is None or policy.p0_around_the_clock)
           else "", "oncall_email": (policy.oncall_email or "") if policy else ""}
    rows = []
    for target in policy.targets if policy else []:
        if target.category is None:
            raw[target_key(target.metric, target.priority)] = minutes_text(target.minutes)
        else:
            rows.append({"metric": str(target.metric), "category": target.category,
                         "target": minutes_text(target.minutes)})
    rows.sort(key=lambda r: (r["category"], r["metric"]))
    rows += [{"metric": "", "category": "", "target": ""} for _ in range(CATEGORY_ROWS_FREE)]
    return raw, rows


def parse_policy(form: Any, calendar_ids: set[int]) -> PolicyForm:
    """Parse the policy form (a werkzeug MultiDict or a plain mapping)."""
    keys = ["calendar_id", "at_risk_percent", "p0_around_the_clock", "oncall_email",
            *(target_key(m, p) for m in METRICS for p in Priority)]
    raw = {k: str(form.get(k, "")) for k in keys}
    rows = []
    for i in range(MAX_CATEGORY_ROWS):
        if f"cat_{i}_category" not in form:
            break
        rows.append({k: str(form.get(f"cat_{i}_{k}", "")) for k in ("metric", "category",
                                                                     "target")})
    result = PolicyForm(raw=raw, category_rows=rows)
    errors = result.errors
    calendar = raw["calendar_id"]
    if not calendar.isdigit() or int(calendar) not in calendar_ids:
        errors["calendar_id"] = "Pick the calendar the clocks count in."
    percent = raw["at_risk_percent"].strip().rstrip("%").strip()
    if not percent.isdigit() or not 1 <= int(percent) <= 99:
        errors["at_risk_percent"] = "A whole percentage from 1 to 99, e.g. 75."
    email = raw["oncall_email"].strip()
    if email and (len(email) > 254 or "@" not in email or any(c.isspace() for c in email)
                  or "." not in email.rpartition("@")[2]):
        errors["oncall_email"] = "Not an e-mail address."
    for metric in METRICS:
        for priority in Priority:
            key = target_key(metric, priority)
            try:
                minutes = parse_minutes(raw[key])
            except ValueError as error:
                errors[key] = str(error)
                continue
            if minutes is not None:
                result.targets[(metric, priority)] = minutes
    for i, row in enumerate(rows):
        if not (row["category"] or row["target"].strip()):
            continue
        if row["metric"] not in {str(m) for m in METRICS}:
            errors[f"cat_{i}"] = "Pick a metric."
        elif row["category"] not in CATEGORIES:
            errors[f"cat_{i}"] = "Pick a moderation category."
        else:
            try:
                minutes = parse_minutes(row["target"])
            except ValueError as error:
                errors[f"cat_{i}"] = str(error)
                continue
            key2 = (Metric(row["metric"]), row["category"])
            if key2 in result.category_targets:
                errors[f"cat_{i}"] = "This category has a target for this metric already."
            elif minutes is not None:
                result.category_targets[key2] = minutes
    if not errors:
        result.settings = {"calendar_id": int(calendar), "at_risk_share": int(percent) / 100,
                           "p0_around_the_clock": raw["p0_around_the_clock"] in {"on", "1",
                                                                                 "true"},
                           "oncall_email": email}
    return result


# --- /stats --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsFilters:
    start: date  # first day, inclusive (UTC)
    end: date  # last day, inclusive (UTC)
    project_id: int | None = None

    def query(self) -> dict[str, str]:
        found = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.project_id is not None:
            found["project"] = str(self.project_id)
        return found


def parse_stats(args: Mapping[str, str], *, default_start: date,
                default_end: date) -> tuple[StatsFilters | None, Errors]:
    """/stats?from=YYYY-MM-DD&to=YYYY-MM-DD&project=ID (dates UTC, both inclusive); a
    missing date takes its default."""
    errors: Errors = {}
    values: dict[str, date] = {}
    for key, default in (("from", default_start), ("to", default_end)):
        text = (args.get(key) or "").strip()
        try:
            values[key] = date.fromisoformat(text) if text else default
        except ValueError:
            errors[key] = "A date as YYYY-MM-DD."
    project = (args.get("project") or "").strip()
    if project and not (project.isdigit() and 0 < int(project) < 2**31):
        errors["project"] = "Pick a project from the list."
    if not errors:
        if values["from"] > values["to"]:
            errors["from"] = "The start is after the end."
        elif (values["to"] - values["from"]).days >= MAX_STATS_DAYS:
            errors["from"] = f"At most {MAX_STATS_DAYS} days at once."
    if errors:
        return None, errors
    return StatsFilters(values["from"], values["to"],
                        int(project) if project else None), errors
