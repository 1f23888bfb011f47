"""Outbound notifications: an outbox of Delivery rows, sent by `deliver_due`.

Callers `enqueue` a notice inside their own unit of work (it commits with their change,
or not at all); a sweep (`flask notify deliver`, the Celery beat task, the embedded
server's thread) sends what is due, outside any database transaction, and records each
outcome. Webhooks are delivered at least once: a receiver acknowledges with a 2xx, and
should ignore a Flagdesk-Delivery id it has already seen.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from flask import current_app
from sqlalchemy import select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import selectinload

from app.audit.service import record
from app.auth.models import User
from app.auth.service import require
from app.core.clock import now
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.notify import egress, mail
from app.notify.models import (
    URL_MAX,
    Channel,
    Delivery,
    DeliveryStatus,
    Webhook,
    WebhookKind,
)
from app.notify.signing import SIGNATURE_HEADER, sign
from app.projects.models import Project

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
# A claimed delivery is held this long; a sender that dies leaves it due again after.
# Claims are taken a few at a time, so a lease covers at most CLAIM_BATCH slow sends.
LEASE = timedelta(minutes=10)
CLAIM_BATCH = 10
ERROR_MAX = 500
USER_AGENT = "Flagdesk-Webhooks/1"
_DEDUPE = ("dedupe_key", "channel", "target")


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min, … at most 1 h."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


# --- enqueueing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One thing to tell, to some recipients.

    `dedupe_key` names the occurrence (e.g. "sla:<report>:<metric>:breached"): a notice
    whose key already reached a recipient is not queued for it again. `payload` is the
    webhook's "data" and the e-mail's content: JSON values; "subject" (or "title") is
    the e-mail's subject line, "text" its first paragraph, "url" a link at the end, and
    the other fields are listed as "name: value". It may hold untrusted report text.
    """

    event: str
    dedupe_key: str
    payload: dict[str, Any]
    project_id: int | None
    emails: tuple[str, ...] = ()
    webhook_kinds: tuple[str, ...] = (WebhookKind.ESCALATION.value,)


def enqueue(*, event: str, dedupe_key: str, payload: dict[str, Any], project_id: int | None,
            emails: Sequence[str] = (),
            webhook_kinds: Collection[str] = (WebhookKind.ESCALATION.value,)) -> int:
    """Queue one Delivery per e-mail address and per active webhook of the project whose
    kind is in `webhook_kinds`, in the caller's session (the caller commits). A recipient
    that already has a delivery with this dedupe_key gets none. Returns the rows added."""
    return enqueue_many([Notice(event=event, dedupe_key=dedupe_key, payload=payload,
                                project_id=project_id, emails=tuple(emails),
                                webhook_kinds=tuple(webhook_kinds))])


def enqueue_many(notices: Sequence[Notice]) -> int:
    """`enqueue` for many notices at once: one query for the webhooks, then inserts that
    skip existing (dedupe_key, channel, target) rows, safe against a concurrent sweep."""
    if not notices:
        return 0
    hooks = _active_webhooks({n.project_id for n in notices
                              if n.project_id is not None and n.webhook_kinds})
    current = now()
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(notice: Notice, channel: Channel, target: str, webhook_id: int | None,
            problem: str | None = None) -> None:
        key = (notice.dedupe_key, channel.value, target)
        if key in rows:
            return
        rows[key] = {
            "channel": channel, "webhook_id": webhook_id, "target": target,
            "project_id": notice.project_id, "event": notice.event,
            "dedupe_key": notice.dedupe_key, "payload": notice.payload,
            "status": DeliveryStatus.FAILED if problem else DeliveryStatus.PENDING,
            "attempts": 0, "next_attempt_at": None if problem else current,
            "last_error": problem, "created_at": current,
        }

    for notice in notices:
        if len(notice.dedupe_key) > 200 or len(notice.event) > 64 or not notice.dedupe_key:
            raise ValueError(f"dedupe_key (1-200 characters) or event (at most 64) too long "
                             f"or empty: {notice.event[:64]!r} {notice.dedupe_key[:200]!r}")
        for address in notice.emails:
            address = address.strip()
            if not address:
                continue
            if mail.is_address(address):
                add(notice, Channel.EMAIL, address, None)
            else:
                # Recorded as failed rather than dropped: an admin sees it on Deliveries.
                add(notice, Channel.EMAIL, mail.clean_line(address, mail.ADDRESS_MAX), None,
                    "not a valid e-mail address; not sent")
        kinds = set(notice.webhook_kinds)
        for webhook_id, kind, url in hooks.get(notice.project_id, ()):
            if kind in kinds:
                add(notice, Channel.WEBHOOK, url, webhook_id)
    return _insert_new(list(rows.values()))


def _active_webhooks(project_ids: set[int]) -> dict[int | None, list[tuple[int, str, str]]]:
    hooks: dict[int | None, list[tuple[int, str, str]]] = defaultdict(list)
    if not project_ids:
        return hooks
    query = (select(Webhook.id, Webhook.project_id, Webhook.kind, Webhook.url)
             .where(Webhook.project_id.in_(project_ids), Webhook.active.is_(True))
             .order_by(Webhook.id))
    for webhook_id, project_id, kind, url in db.session.execute(query):
        hooks[project_id].append((webhook_id, str(kind), url))
    return hooks


def _insert_new(rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        return _insert_new_postgresql(rows)
    table = Delivery.__table__
    statement = (sqlite.insert(table).on_conflict_do_nothing(index_elements=list(_DEDUPE))
                 .returning(table.c.id))
    # Executed as one multi-row INSERT per page of rows (SQLAlchemy's "insertmanyvalues"),
    # which keeps each statement under SQLite's bound-parameter limit.
    return len(db.session.execute(statement, rows).all())


# One statement and one parameter for any number of rows: the rows travel as one JSON
# array that PostgreSQL expands with jsonb_to_recordset. 10,000 notices cost one round
# trip, with no per-row SQL text to build and parse (as a multi-row VALUES list has) and
# no per-element array quoting.
_INSERT_RECORDSET = text("""
    INSERT INTO deliveries (channel, webhook_id, target, project_id, event, dedupe_key,
                            payload, status, attempts, next_attempt_at, last_error, created_at)
    SELECT n.channel, n.webhook_id, n.target, n.project_id, n.event, n.dedupe_key, n.payload,
           CASE WHEN n.last_error IS NULL THEN :pending ELSE :failed END, 0,
           CASE WHEN n.last_error IS NULL THEN CAST(:now AS timestamptz) END,
           n.last_error, CAST(:now AS timestamptz)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS n(channel varchar, webhook_id integer, target varchar, project_id integer,
              event varchar, dedupe_key varchar, payload jsonb, last_error varchar)
    ON CONFLICT (dedupe_key, channel, target) DO NOTHING
""")


def _insert_new_postgresql(rows: list[dict[str, Any]]) -> int:
    fields = ("channel", "webhook_id", "target", "project_id", "event", "dedupe_key",
              "payload", "last_error")
    document = json.dumps([{f: row[f] for f in fields} for row in rows],
                          separators=(",", ":"))
    params = {"rows": document, "now": rows[0]["created_at"],
              "pending": DeliveryStatus.PENDING.value, "failed": DeliveryStatus.FAILED.value}
    return db.session.execute(_INSERT_RECORDSET, params).rowcount


# --- delivering ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRun:
    """What one `deliver_due` did: deliveries claimed, and how each ended this time."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Job:
    """A claimed delivery, copied out of the session so it is sent with no transaction."""

    id: int
    channel: Channel
    target: str
    event: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    secret: str | None = field(default=None, repr=False)
    problem: str | None = None  # why it can never be sent


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True)
class _Settings:
    timeout: float
    smtp_url: str | None = field(repr=False)
    mail_from: str
    allow_private_networks: bool = False  # see app.notify.egress


def _settings() -> _Settings:
    config = current_app.config
    return _Settings(timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS", 5)),
                     smtp_url=config.get("SMTP_URL") or None,
                     mail_from=config.get("MAIL_FROM") or "Flagdesk <flagdesk@localhost>",
                     allow_private_networks=bool(
                         config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)))


def deliver_due(*, limit: int = 100) -> DeliveryRun:
    """Send up to `limit` due deliveries and record each outcome (committing its own
    bookkeeping). A 2xx (or an accepted e-mail) is delivered; any other answer or error
    is retried after `backoff(attempts)`, and after MAX_ATTEMPTS the delivery is failed.
    Safe to run in several processes at once: each delivery is claimed by one."""
    settings = _settings()
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    claimed = 0
    with ExitStack() as stack:
        clients: list[httpx.Client] = []

        def http() -> httpx.Client:
            # Made on first use: most runs find nothing due, and a client costs a TLS setup.
            # No kept-alive connections: a request pinned to an address (egress.pin) must
            # not reuse a connection opened for another host name at that address.
            if not clients:
                clients.append(stack.enter_context(httpx.Client(
                    timeout=settings.timeout, follow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                    limits=httpx.Limits(max_keepalive_connections=0))))
            return clients[0]

        while claimed < limit:
            jobs = _claim(min(CLAIM_BATCH, limit - claimed))
            claimed += len(jobs)
            for job in jobs:
                counts[_record(job, _send(job, http, settings))] += 1
            if len(jobs) < CLAIM_BATCH:
                break
    return DeliveryRun(claimed=claimed, **counts)


def _claim(count: int) -> list[_Job]:
    """Take the lease on up to `count` due deliveries and copy out what sending needs."""
    current = now()
    query = (select(Delivery)
             .where(Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= current)
             .order_by(Delivery.next_attempt_at, Delivery.id)
             .limit(count)
             # PostgreSQL: racing senders take different rows. SQLite: BEGIN IMMEDIATE
             # already gives this transaction the database's one write lock.
             .with_for_update(skip_locked=True))
    deliveries = list(db.session.scalars(query))
    hook_ids = {d.webhook_id for d in deliveries if d.webhook_id is not None}
    hooks = {h.id: h for h in db.session.scalars(
        select(Webhook).where(Webhook.id.in_(hook_ids)))} if hook_ids else {}
    jobs = []
    for delivery in deliveries:
        delivery.attempts += 1
        delivery.next_attempt_at = current + LEASE
        secret, problem = None, None
        if delivery.channel == Channel.WEBHOOK:
            hook = hooks.get(delivery.webhook_id)  # type: ignore[arg-type]
            if hook is None:
                problem = "the webhook was removed; not sent"
            elif not hook.active:
                problem = "the webhook is inactive; not sent"
            else:
                secret = hook.secret
        jobs.append(_Job(id=delivery.id, channel=delivery.channel, target=delivery.target,
                         event=delivery.event, payload=delivery.payload,
                         created_at=delivery.created_at, attempts=delivery.attempts,
                         secret=secret, problem=problem))
    db.session.commit()
    return jobs


def _send(job: _Job, http: Callable[[], httpx.Client], settings: _Settings) -> _Outcome:
    if job.problem:
        return _Outcome(ok=False, error=job.problem, permanent=True)
    try:
        if job.channel == Channel.WEBHOOK:
            return _send_webhook(job, http(), settings)
        return _send_email(job, settings)
    except Exception as error:  # noqa: BLE001 - one bad delivery must not stop the others
        log.exception("delivery %s: unexpected error while sending", job.id)
        return _Outcome(ok=False, error=_describe(error))


def webhook_body(*, delivery_id: int, event: str, created_at: datetime,
                 payload: dict[str, Any]) -> bytes:
    """The JSON body a webhook receives (the exact bytes that are signed)."""
    return json.dumps({"id": delivery_id, "event": event, "created_at": created_at.isoformat(),
                       "data": payload}, separators=(",", ":"), ensure_ascii=False).encode()


def _send_webhook(job: _Job, http: httpx.Client, settings: _Settings) -> _Outcome:
    assert job.secret is not None
    target = egress.Pinned(job.target)
    if not settings.allow_private_networks:
        try:
            target = egress.pin(job.target)
        except egress.RefusedAddress as refused:
            return _Outcome(ok=False, permanent=True, error=(
                f"refused: {refused}; webhooks reach public addresses only "
                "(WEBHOOK_ALLOW_PRIVATE_NETWORKS=true allows private networks)"))
        except (OSError, UnicodeError) as error:
            return _Outcome(ok=False, error=f"cannot resolve the host: {error}")
    body = webhook_body(delivery_id=job.id, event=job.event, created_at=job.created_at,
                        payload=job.payload)
    headers = {
        **target.headers,
        "Content-Type": "application/json",
        "Flagdesk-Event": job.event,
        "Flagdesk-Delivery": str(job.id),
        SIGNATURE_HEADER: sign(job.secret, body, int(now().timestamp())),
    }
    try:
        with http.stream("POST", target.url, content=body, headers=headers,
                         extensions=target.extensions) as response:
            code = response.status_code
            if 200 <= code < 300:
                return _Outcome(ok=True, status_code=code)
            if 300 <= code < 400:
                where = response.headers.get("Location", "")
                return _Outcome(ok=False, status_code=code,
                                error=f"HTTP {code}: redirects are not followed ({where})")
            return _Outcome(ok=False, status_code=code,
                            error=f"HTTP {code}: {_excerpt(response)}".rstrip(": "))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return _Outcome(ok=False, error=_describe(error))


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of an error response's body, for the admin (never read in full)."""
    received = b""
    try:
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) >= limit:
                break
    except httpx.HTTPError:
        pass
    return mail.clean_line(received[:limit].decode("utf-8", "replace"), limit)


def _send_email(job: _Job, settings: _Settings) -> _Outcome:
    if not mail.is_address(job.target):
        return _Outcome(ok=False, error="not a valid e-mail address; not sent", permanent=True)
    subject, body = mail.render(job.event, job.payload)
    try:
        mail.send(smtp_url=settings.smtp_url, sender=settings.mail_from, to=job.target,
                  subject=subject, body=body, timeout=settings.timeout)
    except mail.MailError as error:
        return _Outcome(ok=False, error=str(error))
    return _Outcome(ok=True)


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _record(job: _Job, outcome: _Outcome) -> str:
    current = now()
    values: dict[str, Any] = {"last_status_code": outcome.status_code}
    if outcome.ok:
        result = "delivered"
        values.update(status=DeliveryStatus.DELIVERED, delivered_at=current,
                      next_attempt_at=None, last_error=None)
    else:
        values["last_error"] = (outcome.error or "failed")[:ERROR_MAX]
        if outcome.permanent or job.attempts >= MAX_ATTEMPTS:
            result = "failed"
            values.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            result = "retrying"
            values["next_attempt_at"] = current + backoff(job.attempts)
        log.warning("delivery %s (%s, attempt %s) %s: %s", job.id, job.channel, job.attempts,
                    "gave up" if result == "failed" else "will be retried", values["last_error"])
    # Only if it is still ours: had the lease run out and another sender taken it, its
    # attempt count would differ and its outcome is the one to keep.
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == job.id, Delivery.attempts == job.attempts,
               Delivery.status == DeliveryStatus.PENDING)
        .values(**values).execution_options(synchronize_session=False))
    db.session.commit()
    return result


# --- administering webhooks; the outbox ----------------------------------------------


def _check(actor: User | None) -> None:
    # No actor: the operator at the command line (as for projects and users).
    if actor is not None:
        require(actor, "admin")


def webhooks(*, actor: User | None, project_id: int | None = None) -> list[Webhook]:
    """The webhooks, by project name then age, with their projects loaded."""
    _check(actor)
    query = (select(Webhook).join(Project).options(selectinload(Webhook.project))
             .order_by(Project.name, Project.id, Webhook.id))
    if project_id is not None:
        query = query.where(Webhook.project_id == project_id)
    return list(db.session.scalars(query))


def normalize_webhook_url(url: str) -> str:
    """The URL, stripped, if it is an absolute http(s) URL without credentials;
    ValidationFailed otherwise."""
    url = (url or "").strip()
    problem = None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts, problem = None, "Not a valid URL."
    if parts is not None:
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            problem = "Give an absolute http:// or https:// URL."
        elif parts.username is not None or parts.password is not None:
            problem = ("Leave credentials out of the URL: receivers authenticate Flagdesk "
                       "by the signature.")
        elif parts.fragment or any(c.isspace() or ord(c) < 32 for c in url):
            problem = "The URL may not contain spaces, control characters or a #fragment."
        elif len(url) > URL_MAX:
            problem = f"Keep the URL under {URL_MAX} characters."
        elif not current_app.config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False):
            try:
                egress.check_literal(url)
            except egress.RefusedAddress as refused:
                problem = (f"{refused}: webhooks reach public addresses "
                           "only (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true allows private networks).")
    if problem:
        raise ValidationFailed(problem, fields={"url": [problem]})
    return url


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_webhook(*, actor: User | None, project_id: int, url: str, kind: str,
                   description: str = "") -> tuple[Webhook, str]:
    """Register a webhook for a project; returns it with its signing secret (show it
    once: afterwards it is only shown masked)."""
    _check(actor)
    project = db.session.get(Project, project_id) if project_id else None
    if project is None:
        raise NotFound(f"No project {project_id}.")
    url = normalize_webhook_url(url)
    try:
        kind = WebhookKind(kind)
    except ValueError as error:
        raise ValidationFailed("Pick a kind.", fields={"kind": ["Unknown kind."]}) from error
    description = " ".join((description or "").split())
    if len(description) > 200:
        raise ValidationFailed("Keep the description under 200 characters.",
                               fields={"description": ["At most 200 characters."]})
    exists = db.session.scalar(select(Webhook.id).where(
        Webhook.project_id == project.id, Webhook.url == url, Webhook.kind == kind))
    if exists is not None:
        raise Conflict(f"{project.name} already sends {kind} notifications to this URL.")
    secret = _new_secret()
    webhook = Webhook(project_id=project.id, url=url, kind=kind, secret=secret,
                      description=description)
    db.session.add(webhook)
    db.session.flush()
    record(action="webhook.created", subject_type="project", subject_id=project.id,
           actor=actor, after={"webhook": webhook.id, "url": url, "kind": str(kind),
                               "description": description})
    db.session.commit()
    return webhook, secret


def _webhook(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return webhook


def get_webhook(*, actor: User | None, webhook_id: int) -> Webhook:
    _check(actor)
    return _webhook(webhook_id)


def rotate_secret(*, actor: User | None, webhook_id: int) -> str:
    """Give a webhook a new signing secret, used from the next send on; returns it (show
    it once). Deliveries still pending are signed with the new one."""
    _check(actor)
    webhook = _webhook(webhook_id)
    webhook.secret = _new_secret()
    record(action="webhook.secret_rotated", subject_type="project",
           subject_id=webhook.project_id, actor=actor,
           after={"webhook": webhook.id, "url": webhook.url})
    db.session.commit()
    return webhook.secret


def delete_webhook(*, actor: User | None, webhook_id: int) -> None:
    """Remove a webhook. Its past deliveries stay (for the record); pending ones are
    failed when their turn comes, unsent."""
    _check(actor)
    webhook = _webhook(webhook_id)
    record(action="webhook.deleted", subject_type="project", subject_id=webhook.project_id,
           actor=actor, before={"webhook": webhook.id, "url": webhook.url,
                                "kind": str(webhook.kind)})
    db.session.delete(webhook)
    db.session.commit()


def deliveries(*, actor: User | None, status: str | None = None,
               limit: int = 100) -> list[Delivery]:
    """The most recent deliveries first, optionally only those in one status."""
    _check(actor)
    query = select(Delivery).order_by(Delivery.id.desc()).limit(max(1, min(limit, 500)))
    if status:
        try:
            query = query.where(Delivery.status == DeliveryStatus(status))
        except ValueError as error:
            raise ValidationFailed("Unknown status.",
                                   fields={"status": ["pending, delivered or failed."]}
                                   ) from error
    return list(db.session.scalars(query))
