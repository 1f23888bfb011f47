"""PreparedInsert: a Core INSERT compiled once per dialect, run on the driver's cursor.

For a statement a hot path runs thousands of times a second with the same columns,
SQLAlchemy's per-execution work (looking up the compiled form by cache key, building the
parameters, running column defaults, setting up the execution context and the result)
costs as much CPU as the database's own work: intake's two INSERTs spent more time there
than in SQLite (bench/intake.py, callgrind and py-spy). Here that work happens once. The
SQL is what the dialect compiled, and every value still goes through its column type's
bind processor, so the database receives what `Connection.execute` would have sent. The
statement runs on the cursor of the caller's connection, inside its transaction (which
SQLAlchemy still begins and commits), and a driver error is raised as SQLAlchemy's
exception for it, as `Connection.execute` would raise it. Cursor events
(before_cursor_execute) do not fire for it.

Binding (processing the values) is a step of its own, so that a writer can do it before
its transaction starts: on SQLite every moment between BEGIN IMMEDIATE and COMMIT holds
the database's one write lock.

The price: no column defaults are applied, so a caller passes every column the compiled
statement binds (a missing one is a KeyError naming it, on first use in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert


@dataclass(frozen=True)
class BoundInsert:
    """The SQL and its processed parameters, ready to run on a connection."""

    sql: str
    parameters: tuple[Any, ...] | dict[str, Any]

    def execute(self, connection: Connection) -> tuple[Any, ...] | None:
        """Run it in `connection`'s transaction; the row RETURNING gives, else None."""
        dbapi_error = connection.dialect.loaded_dbapi.Error
        cursor = connection.connection.cursor()
        try:
            cursor.execute(self.sql, self.parameters)
            return cursor.fetchone() if cursor.description else None
        except dbapi_error as error:
            raise DBAPIError.instance(self.sql, self.parameters, error, dbapi_error,
                                      dialect=connection.dialect) from error
        finally:
            cursor.close()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the bound columns, in the statement's order
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool  # "?" (SQLite) or "%(name)s" (psycopg)

    def bind(self, values: Mapping[str, Any]) -> BoundInsert:
        processed = [values[name] if process is None else process(values[name])
                     for name, process in zip(self.names, self.processors, strict=True)]
        return BoundInsert(self.sql, tuple(processed) if self.positional
                           else dict(zip(self.names, processed, strict=True)))


class PreparedInsert:
    def __init__(self, statement: Insert | Callable[[str], Insert],
                 columns: tuple[str, ...]) -> None:
        """`statement`, or a function building it for a dialect's name (ON CONFLICT is
        spelled per dialect); `columns`: the keys every execution passes."""
        self.build = statement if callable(statement) else (lambda _dialect: statement)
        self.columns = columns
        self._by_dialect: dict[str, _Compiled] = {}

    def bind(self, dialect: Dialect, values: Mapping[str, Any]) -> BoundInsert:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = self._compile(dialect)
        return compiled.bind(values)

    def execute(self, connection: Connection,
                values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        return self.bind(connection.dialect, values).execute(connection)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.build(dialect.name).compile(dialect=dialect,
                                                    column_keys=list(self.columns))
        names = tuple(compiled.positiontup if compiled.positional else compiled.binds)
        unexpected = set(names) - set(self.columns)
        if unexpected:  # a column with a default the caller does not pass
            raise ValueError(f"PreparedInsert: also pass {sorted(unexpected)}")
        processors = tuple(compiled.binds[name].type.dialect_impl(dialect)
                           .bind_processor(dialect) for name in names)
        return _Compiled(str(compiled), names, processors, compiled.positional)
