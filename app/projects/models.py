from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import now
from app.core.db import UTCDateTime
from app.extensions import db


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # Public by design: it ships inside the widget on the host's pages.
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    origins: Mapped[list[ProjectOrigin]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectOrigin.origin"
    )
    routing_rules: Mapped[list[RoutingRule]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="RoutingRule.position"
    )

    @property
    def allowed_origins(self) -> list[str]:
        return [o.origin for o in self.origins]


class ProjectOrigin(db.Model):
    """An origin (scheme://host[:port]) whose pages may send reports for the project.

    A row per origin, indexed, so the CORS preflight (which carries no project key) can ask
    "does any active project allow this origin?" in one indexed lookup.
    """

    __tablename__ = "project_origins"
    __table_args__ = (UniqueConstraint("project_id", "origin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(String(255), index=True)

    project: Mapped[Project] = relationship(back_populates="origins")


class RoutingRule(db.Model):
    """A routing rule as data: when it matches, the report gets at least this priority.

    A rule matches on a moderation category being flagged, or on the reason the user
    chose (exactly one of the two is set). The most urgent matching priority wins.
    """

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    category: Mapped[str | None] = mapped_column(String(64))
    # "any": any flagged category; a score threshold instead of the backend's flag, if set.
    min_score: Mapped[float | None]
    reason: Mapped[str | None] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(2))

    project: Mapped[Project] = relationship(back_populates="routing_rules")
