"""PreparedInsert (app.core.prepared): driver SQL that stores exactly what SQLAlchemy's own
execution of the same INSERT stores, on the suite's database (SQLite, or PostgreSQL in CI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, Table, Text, insert, select, text
from sqlalchemy.exc import IntegrityError

from app.core.db import JSONType, StrEnumType, UTCDateTime
from app.core.prepared import PreparedInsert
from app.extensions import db


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


metadata = MetaData()
samples = Table(
    "prepared_samples", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("colour", StrEnumType(Colour, 8), nullable=False),
    Column("payload", JSONType),
    Column("flag", Boolean, nullable=False),
    Column("note", Text),
    Column("tally", Integer, default=0),
)
COLUMNS = ("at", "colour", "payload", "flag", "note", "tally")


@pytest.fixture
def connection():
    # Created inside the test's transaction, and so rolled back with it.
    connection = db.session.connection()
    metadata.create_all(connection)
    return connection


def stored(connection, row_id):
    """The row as the database holds it, read without any type processing."""
    return connection.execute(text(
        "SELECT at, colour, payload, flag, note, tally FROM prepared_samples WHERE id = :id"),
        {"id": row_id}).one()


@pytest.mark.parametrize("values", [
    # An instant in another zone, whole seconds (SQLite's text format must still match);
    # JSON with non-ASCII text, nesting and null; a member of a StrEnum.
    dict(at=datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
         colour=Colour.BLUE, payload={"turns": [{"role": "user", "content": "ça va ☃"}],
                                      "n": None}, flag=True, note=None, tally=3),
    dict(at=datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC), colour="red",
         payload=[], flag=False, note="O'Brien; DROP TABLE x; --", tally=0),
])
def test_stores_what_connection_execute_stores(connection, values):
    prepared = PreparedInsert(insert(samples).returning(samples.c.id), COLUMNS)

    (ours,) = prepared.execute(connection, values)
    theirs = connection.execute(insert(samples).returning(samples.c.id), values).scalar_one()

    assert ours != theirs
    assert stored(connection, ours) == stored(connection, theirs)
    read_back = connection.execute(select(samples).where(samples.c.id == ours)).one()
    assert read_back.at == values["at"]
    assert read_back.colour is Colour(values["colour"])
    assert read_back.payload == values["payload"]


def test_a_missing_value_is_an_error_naming_the_column(connection):
    prepared = PreparedInsert(insert(samples), COLUMNS)
    values = dict(at=datetime.now(UTC), colour=Colour.RED, payload=None, flag=True,
                  tally=1)  # no "note"
    with pytest.raises(KeyError, match="note"):
        prepared.execute(connection, values)
    assert connection.scalar(text("SELECT count(*) FROM prepared_samples")) == 0


def test_a_column_default_the_caller_does_not_pass_is_refused(connection):
    # "tally" has a Python default, which driver SQL would silently skip.
    prepared = PreparedInsert(insert(samples), ("at", "colour", "payload", "flag", "note"))
    with pytest.raises(ValueError, match="tally"):
        prepared.execute(connection, dict(at=datetime.now(UTC), colour=Colour.RED,
                                          payload=None, flag=True, note=None))


def test_a_driver_error_is_raised_as_sqlalchemys(connection):
    # What Connection.execute would raise: error handlers and retries see the same types.
    prepared = PreparedInsert(insert(samples), COLUMNS)
    values = dict(at=None, colour=Colour.RED, payload=None, flag=True, note=None, tally=1)
    with pytest.raises(IntegrityError) as raised:
        prepared.execute(connection, values)
    assert "prepared_samples" in str(raised.value.statement)
