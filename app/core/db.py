"""The declarative base and column types every model shares.

This module imports only SQLAlchemy, so `app.extensions` can hand `Base` to
Flask-SQLAlchemy without an import cycle.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints make Alembic migrations portable and their diffs stable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC instant on every backend.

    PostgreSQL keeps the zone; SQLite does not, so values are normalised to UTC on the
    way in and marked as UTC on the way out. A naive datetime is a bug and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave as a transactional database under concurrent web workers.

    * pysqlite's own transaction handling breaks SAVEPOINT and transactional DDL, so we
      turn it off and emit BEGIN ourselves (SQLAlchemy's documented recipe).
    * BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then
      writes (intake does) would otherwise fail with "database is locked" when another
      writer got in between, instead of waiting its turn. It waits in `begin_immediate`.
    * WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Switching a new database to WAL takes an exclusive lock: wait for it here.
        cursor.execute(f"PRAGMA busy_timeout={int(1000 * WRITE_LOCK_TIMEOUT_SECONDS)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # From here on the only lock a statement waits for is the write lock, at BEGIN
        # IMMEDIATE, and begin_immediate does that waiting (WAL readers never wait).
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        begin_immediate(connection.connection.driver_connection)


# SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between attempts at the
# lock, while a write transaction here holds it for well under a millisecond: with four
# web workers, intake spent a third of its time asleep with the lock free (py-spy,
# bench/intake.py). So writers poll for it themselves, from 0.1 ms up to 2 ms apart.
WRITE_LOCK_TIMEOUT_SECONDS = 30.0
WRITE_LOCK_FIRST_PAUSE = 0.0001
WRITE_LOCK_LONGEST_PAUSE = 0.002


def begin_immediate(sqlite_connection: sqlite3.Connection, *,
                    timeout: float = WRITE_LOCK_TIMEOUT_SECONDS) -> None:
    """BEGIN IMMEDIATE on a pysqlite connection whose busy_timeout is 0, retrying while
    another connection holds the write lock; "database is locked" after `timeout` s."""
    deadline = time.monotonic() + timeout
    pause = WRITE_LOCK_FIRST_PAUSE
    while True:
        try:
            sqlite_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            # The primary code: SQLITE_BUSY_RECOVERY and the like are busy too.
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, WRITE_LOCK_LONGEST_PAUSE)


class StrEnumType(TypeDecorator):
    """A StrEnum stored as its plain string value (a VARCHAR, no database enum type, so
    adding a member needs no migration) and read back as the enum member."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[StrEnum], length: int = 32) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum_class(value)
