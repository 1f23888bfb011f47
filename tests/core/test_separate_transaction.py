"""separate_transaction (app.core.db): a Core transaction apart from the ORM session, on
the engine (committed for every other connection to see) or, inside a test's transaction,
as a savepoint; on the suite's database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, select

from app.core.db import configure_sqlite, separate_transaction
from tests.conftest import fresh_database

metadata = MetaData()
notes = Table("separate_notes", metadata, Column("id", Integer, primary_key=True),
              Column("text", String(20), nullable=False))


class Refused(Exception):
    pass


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    url, drop = fresh_database(tmp_path, "separate")
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)  # BEGIN IMMEDIATE, as the app's engine
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    drop()


def texts(engine: Engine) -> list[str]:
    """What another connection sees: committed rows only. Read through an engine of its
    own, without BEGIN IMMEDIATE, so that it never waits for a writer on SQLite."""
    reader = create_engine(engine.url)
    try:
        with reader.connect() as connection:
            return list(connection.scalars(select(notes.c.text).order_by(notes.c.id)))
    finally:
        reader.dispose()


def test_on_the_engine_the_block_commits_for_every_connection_to_see(engine):
    with separate_transaction(engine) as connection:
        connection.execute(notes.insert().values(text="kept"))
    assert texts(engine) == ["kept"]


def test_on_the_engine_a_block_that_raises_leaves_nothing(engine):
    with pytest.raises(Refused), separate_transaction(engine) as connection:
        connection.execute(notes.insert().values(text="dropped"))
        raise Refused
    assert texts(engine) == []
    with separate_transaction(engine) as connection:  # and the pool's connection is usable
        connection.execute(notes.insert().values(text="after"))
    assert texts(engine) == ["after"]


def test_in_an_outer_transaction_it_is_a_savepoint_the_outer_one_decides(engine):
    with engine.connect() as outer:
        transaction = outer.begin()
        outer.execute(notes.insert().values(text="outer"))
        with separate_transaction(outer) as connection:
            assert connection is outer
            connection.execute(notes.insert().values(text="inner"))
        with pytest.raises(Refused), separate_transaction(outer) as connection:
            connection.execute(notes.insert().values(text="undone"))
            raise Refused
        assert list(outer.scalars(select(notes.c.text).order_by(notes.c.id))) == [
            "outer", "inner"]
        assert texts(engine) == []  # nothing is committed until the outer transaction is
        transaction.rollback()
    assert texts(engine) == []
