"""Core statements compiled once and run straight on SQLite's connection: the few every comment runs.

SQLAlchemy spends some 15 µs of Python on each execution (its statement cache, an execution context,
a result object) around a SQLite statement that itself takes a few: a comment runs five of them while
it holds the write lock every other comment waits for. A ``PreparedStatement`` is compiled once per
set of keys, with SQLAlchemy's public API only: ``ClauseElement.compile`` against the dialect with the
named parameter style (the DBAPI takes a dict), the statement's own bound parameters found with
``visitors.iterate``, each value converted by its type's ``bind_processor`` (dates, booleans, the UTC
datetimes), and the SQL run on ``Connection.connection.driver_connection`` — the transaction's own
DBAPI connection — with a DBAPI error raised as SQLAlchemy's (``DBAPIError.instance``), as
``Connection.execute`` would. ``tests/test_prepared.py`` runs every statement both ways and fails when
the rows differ.

SQLite only: on any other database a ``PreparedStatement`` runs through ``Connection.execute``. An
INSERT must be given every column that has a Python-side default (the shortcut applies none), or it
refuses (``ArgumentError``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import BindParameter, Connection, Insert, Select, TextClause, exc
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql import visitors
from sqlalchemy.sql.expression import UpdateBase
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any]
Statement = UpdateBase | Select[*tuple[Any, ...]] | TextClause  # what a PreparedStatement runs


class PreparedStatement:
    def __init__(self, statement: Statement) -> None:
        self.statement = statement
        self._types: dict[str, TypeEngine[Any]] = {
            node.key: node.type for node in visitors.iterate(statement) if isinstance(node, BindParameter)
        }
        self._own = frozenset(self._types)  # the parameters the statement itself binds
        if isinstance(statement, Insert):
            for column in statement.table.c:
                self._types.setdefault(column.key, column.type)
        self._compiled: dict[tuple[str, tuple[str, ...]], tuple[str, dict[str, Any], dict[str, Processor]]] = {}

    def insert(self, connection: Connection, row: Mapping[str, Any]) -> int:
        """Run the INSERT with ``row``; the new row's integer primary key."""
        if connection.dialect.name != "sqlite":
            key = connection.execute(self.statement, dict(row)).inserted_primary_key
            assert key is not None
            return int(key[0])
        return int(self._run(connection, row).lastrowid)

    def run(self, connection: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Run the statement, for its effect."""
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, dict(params or {}))
            return
        self._run(connection, params or {})

    def one(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """Run the statement; its one row, as the driver returns it (for text and integer columns)."""
        if connection.dialect.name != "sqlite":
            return tuple(connection.execute(self.statement, dict(params)).one())
        row = self._run(connection, params).fetchone()
        if row is None:
            raise exc.NoResultFound("No row was found when one was required")
        return tuple(row)

    def _run(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        sql, defaults, processors = self._prepare(connection.dialect, tuple(params))
        values = {**defaults, **params}
        dbapi_error = connection.dialect.loaded_dbapi.Error
        try:
            for name, process in processors.items():
                values[name] = process(values[name])
            raw = connection.connection.driver_connection
            if raw is None:  # a connection in use has its DBAPI connection
                raise RuntimeError("the connection has no DBAPI connection")
            return raw.execute(sql, values)
        except dbapi_error as error:
            raise exc.DBAPIError.instance(sql, None, error, dbapi_error, hide_parameters=True,
                                          dialect=connection.dialect) from error
        except (TypeError, ValueError, OverflowError) as error:  # a value its type cannot convert
            raise exc.StatementError(str(error), sql, None, error, hide_parameters=True) from error

    def _prepare(self, dialect: Dialect, keys: tuple[str, ...]) -> tuple[str, dict[str, Any], dict[str, Processor]]:
        # an INSERT is compiled per set of columns given; any other statement once, whatever the first
        # call passed (its defaults are every parameter's own, filled by each call's values)
        keys = keys if isinstance(self.statement, Insert) else ()
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            found = self._compiled[(dialect.name, keys)] = self._compile(dialect, keys)
        return found

    def _compile(self, dialect: Dialect, keys: tuple[str, ...]) -> tuple[str, dict[str, Any], dict[str, Processor]]:
        assert isinstance(dialect, DefaultDialect)  # every dialect SQLAlchemy ships derives from it
        named = type(dialect)(paramstyle="named")  # the DBAPI takes the parameters as a dict
        compiled: Compiled
        if isinstance(self.statement, Insert):
            compiled = self.statement.compile(dialect=named, column_keys=list(keys))
            missing = [c.name for c in self.statement.table.c
                       if c.default is not None and c.key in compiled.params and c.key not in keys
                       and c.key not in self._own]
            if missing:
                raise exc.ArgumentError(f"{self.statement.table.name}: no value given for {', '.join(missing)}, "
                                        "which have Python defaults")
        else:
            compiled = self.statement.compile(dialect=named)
        defaults = {name: value for name, value in compiled.params.items() if name not in keys}
        processors: dict[str, Processor] = {}
        for name, default in compiled.params.items():
            type_ = self._types.get(name)
            if type_ is None:  # a literal of the statement under a name of the compiler's (value + 1)
                if name in keys or not isinstance(default, (int, str)):
                    raise exc.ArgumentError(f"no type known for the parameter {name!r}")
                continue
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        return str(compiled), defaults, processors
