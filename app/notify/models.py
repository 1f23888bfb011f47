"""The outbox: webhooks to call, and one Delivery row per message to one recipient.

The rows are the queue. A delivery is `pending` until it is sent (`delivered`) or has
failed too often (`failed`); `next_attempt_at` says when it is next due, so a sweep finds
what a lost task left behind.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now
from app.core.db import JSONType, StrEnumType, UTCDateTime
from app.extensions import db
from app.projects.models import Project

URL_MAX = 2000


class WebhookKind(StrEnum):
    ESCALATION = "escalation"  # SLA at risk and breached
    PAGING = "paging"  # breaches of P0/P1 only: an on-call pager


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or held by a sender until then)
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up, or could never be sent (bad address, webhook removed)


class Webhook(db.Model):
    """A project's receiver for signed JSON notifications of one kind."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(URL_MAX))
    kind: Mapped[WebhookKind] = mapped_column(StrEnumType(WebhookKind, 16))
    # The HMAC key; kept readable because every send signs with it. Shown to the admin
    # once (on creation and rotation), masked afterwards.
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    project: Mapped[Project] = relationship()

    @property
    def masked_secret(self) -> str:
        return "•" * 8 + self.secret[-4:]


class Delivery(db.Model):
    """One message to one recipient (a webhook URL or an e-mail address)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # The same notice never reaches the same recipient twice, even from racing sweeps.
        UniqueConstraint("dedupe_key", "channel", "target"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel, 16))
    webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhooks.id", ondelete="SET NULL"), index=True)
    target: Mapped[str] = mapped_column(String(URL_MAX))  # the URL or the e-mail address
    # Which project it concerned, for the record; not a foreign key, so that a sweep
    # queueing thousands of rows pays no per-row constraint trigger for it.
    project_id: Mapped[int | None]
    event: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[DeliveryStatus] = mapped_column(
        StrEnumType(DeliveryStatus, 16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
