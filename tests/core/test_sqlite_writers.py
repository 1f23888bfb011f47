"""SQLite as the embedded database: writers queue for the write lock (app.core.db's
begin_immediate) rather than fail, and give up with "database is locked" only after the
timeout. Runs on a database file of its own, whatever TEST_DATABASE_URL says."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from app.core.db import WalCheckpointer, begin_immediate, configure_sqlite


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'writers.sqlite3'}")
    configure_sqlite(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield engine
    engine.dispose()


def bodies(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT body FROM notes ORDER BY id")))


def test_a_writer_waits_for_the_one_holding_the_lock_then_writes(engine):
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def first() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO notes (body) VALUES ('first')"))
            holding.set()
            release.wait(5)
            order.append("first commits")

    def second() -> None:
        holding.wait(5)
        with engine.begin() as connection:  # waits here until the first commits
            order.append("second has the lock")
            connection.execute(text("INSERT INTO notes (body) VALUES ('second')"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(5)
    release.set()
    for thread in threads:
        thread.join(10)

    assert order == ["first commits", "second has the lock"]
    assert bodies(engine) == ["first", "second"]


def test_a_writer_gives_up_after_the_timeout_and_changes_nothing(engine, tmp_path):
    with engine.begin() as holder:
        holder.execute(text("INSERT INTO notes (body) VALUES ('held')"))
        other = sqlite3.connect(tmp_path / "writers.sqlite3", isolation_level=None)
        other.execute("PRAGMA busy_timeout=0")
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            begin_immediate(other, timeout=0.05)
        assert not other.in_transaction
        other.close()
    assert bodies(engine) == ["held"]


def test_errors_other_than_a_busy_lock_are_not_retried(tmp_path):
    connection = sqlite3.connect(tmp_path / "other.sqlite3", isolation_level=None)
    connection.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        begin_immediate(connection, timeout=30)  # at once, not after 30 s
    connection.close()


def test_the_write_ahead_log_is_checkpointed_and_reused_not_grown(engine, tmp_path):
    # Commits never checkpoint themselves (wal_autocheckpoint=0); the process's
    # WalCheckpointer thread does, about once a second, and the log then starts again
    # from its beginning instead of growing with every commit.
    wal = tmp_path / "writers.sqlite3-wal"

    def write(rows: int) -> None:
        for i in range(rows):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO notes (body) VALUES (:b)"),
                                   {"b": f"note {i} " + "x" * 500})

    write(100)
    grown = wal.stat().st_size
    database = tmp_path / "writers.sqlite3"
    before = database.stat().st_size
    deadline = time.monotonic() + 10
    while database.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.1)  # until the checkpointer has copied the pages back
    assert database.stat().st_size > before
    time.sleep(WalCheckpointer.INTERVAL_SECONDS)  # a RESTART finishes after the copy
    write(100)
    assert wal.stat().st_size == grown
    assert len(bodies(engine)) == 200
