"""The declarative base and column types every model shares.

This module imports only SQLAlchemy, so `app.extensions` can hand `Base` to
Flask-SQLAlchemy without an import cycle.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, String, event
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


@contextmanager
def separate_transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A Core transaction apart from the ORM session, committed when the block ends (rolled
    back if it raises): on the engine, a connection of its pool in a transaction of its
    own; on a Connection already in a transaction (the test suite binds the app to one), a
    savepoint in it, as the session's join_transaction_mode="create_savepoint" does.

    For a hot path that needs no unit of work: at intake's rate creating a session, its
    transaction and its commit cost more than SQLite's own commit. The caller must not
    hold a session transaction meanwhile: on SQLite that one holds the write lock
    (BEGIN IMMEDIATE) this one would wait for until it timed out."""
    if isinstance(bind, Connection):
        with bind.begin_nested():
            yield bind
    else:
        with bind.begin() as connection:
            yield connection


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave as a transactional database under concurrent web workers.

    * pysqlite's own transaction handling breaks SAVEPOINT and transactional DDL, so we
      turn it off and emit BEGIN ourselves (SQLAlchemy's documented recipe).
    * BEGIN IMMEDIATE takes the write lock up front: a transaction that reads and then
      writes (intake does) would otherwise fail with "database is locked" when another
      writer got in between, instead of waiting its turn. It waits in `begin_immediate`.
    * WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    * The write-ahead log is checkpointed by one thread per process, once a second
      (WalCheckpointer), not by the committing connection: see there why.
    """
    database = engine.url.database

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Switching a new database to WAL takes an exclusive lock: wait for it here.
        cursor.execute(f"PRAGMA busy_timeout={int(1000 * WRITE_LOCK_TIMEOUT_SECONDS)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if database and database != ":memory:":
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            WalCheckpointer.ensure_running(database)
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


class WalCheckpointer:
    """Checkpoints an SQLite database's write-ahead log once a second, in a daemon thread
    of each process that writes to it.

    SQLite's own automatic checkpoint runs in the connection that commits, after every
    commit once the log holds 1,000 pages. With several web workers writing all the time
    that never ends: the log is only restarted by a writer that begins when every page is
    already copied back, and another worker has always committed first. Under intake's
    load the log grew to 40 MB and each commit paid a checkpoint of its own, two
    fdatasync calls and the same hot pages written again (strace on bench/intake.py).

    A RESTART checkpoint waits for the write lock, copies the second's pages once, and
    lets the next writer start the log afresh; waiting here, off the request path, costs
    no request anything. The sqlite3 module releases the GIL while SQLite works.
    """

    INTERVAL_SECONDS = 1.0
    BUSY_TIMEOUT_MS = 5000
    _started: set[tuple[int, str]] = set()
    _lock = threading.Lock()

    @classmethod
    def ensure_running(cls, database: str) -> None:
        # Keyed by process too: a forked worker inherits the set, not the thread.
        key = (os.getpid(), os.path.abspath(database))
        with cls._lock:
            if key not in cls._started:
                cls._started.add(key)
                threading.Thread(target=cls._run, args=(key[1],), daemon=True,
                                 name=f"wal-checkpoint {key[1]}").start()

    @classmethod
    def _run(cls, path: str) -> None:
        while True:
            time.sleep(cls.INTERVAL_SECONDS)
            try:
                # mode=rw: a database that has gone (a test's temporary file) ends the
                # thread rather than being created again, empty.
                connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True,
                                             timeout=cls.BUSY_TIMEOUT_MS / 1000,
                                             isolation_level=None)
            except sqlite3.Error:
                return
            try:
                connection.execute("PRAGMA wal_checkpoint(RESTART)")
            except sqlite3.Error:
                pass  # busy for longer than the timeout: the next second tries again
            finally:
                connection.close()


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
