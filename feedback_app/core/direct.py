"""Core statements run straight on the DBAPI cursor, for the few that every comment runs under the lock.

SQLAlchemy spends some 10 µs of Python on each execution (its statement cache, an execution context,
a result object) around a SQLite statement that itself takes a few: for the citizen form's five
statements, held under the write lock that every other comment waits for, that was a tenth of the
comment's throughput. A ``Direct`` statement is compiled once per dialect (and set of columns), its
parameters go through the same type conversions SQLAlchemy applies, and it is executed on the
transaction's own DBAPI connection; DBAPI errors come out as SQLAlchemy's exceptions, as from
``Connection.execute``.

SQLite only: on any other database ``Direct`` simply runs the statement through ``Connection.execute``.
An INSERT must be given every column that has a Python-side default (the shortcut applies none), or it
refuses at compile time (``ArgumentError``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.sql import ClauseElement, Insert


class Direct:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple, tuple[str, tuple, Any, dict]] = {}

    def insert(self, connection: Connection, row: dict) -> int:
        """Run the INSERT with ``row``; the new row's integer primary key."""
        if connection.dialect.name != "sqlite":
            return connection.execute(self.statement, row).inserted_primary_key[0]
        return self._run(connection, row).lastrowid

    def run(self, connection: Connection, params: dict | None = None) -> None:
        """Run the statement, for its effect."""
        if connection.dialect.name != "sqlite":
            connection.execute(self.statement, params or {})
            return
        self._run(connection, params or {})

    def one(self, connection: Connection, params: dict) -> tuple:
        """Run the statement; its one row, as the driver returns it (no result conversion: for text and
        integer columns only)."""
        if connection.dialect.name != "sqlite":
            return tuple(connection.execute(self.statement, params).one())
        row = self._run(connection, params).fetchone()
        if row is None:
            raise exc.NoResultFound("No row was found when one was required")
        return row

    def _run(self, connection: Connection, params: dict):
        dbapi_error = connection.dialect.loaded_dbapi.Error
        sql = None
        try:
            sql, values = self._bind(connection, params)
            return connection.connection.driver_connection.execute(sql, values)
        except dbapi_error as error:
            raise exc.DBAPIError.instance(sql, None, error, dbapi_error, hide_parameters=True,
                                          dialect=connection.dialect) from error
        except (TypeError, ValueError, OverflowError) as error:  # a parameter its type cannot convert
            raise exc.StatementError(str(error), sql, None, error, hide_parameters=True) from error

    def _bind(self, connection: Connection, params: dict) -> tuple[str, list]:
        key = (connection.dialect.name, tuple(params) if isinstance(self.statement, Insert) else ())
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(connection, key)
        sql, order, compiled_statement, processors = compiled
        full = compiled_statement.construct_params(params)
        return sql, [processors[name](full[name]) if name in processors else full[name] for name in order]

    def _compile(self, connection: Connection, key: tuple) -> tuple[str, tuple, Any, dict]:
        columns = key[1]
        dialect = connection.dialect
        if isinstance(self.statement, Insert):
            compiled = self.statement.compile(dialect=dialect, column_keys=list(columns))
            if compiled.insert_prefetch:  # defaults that SQLAlchemy computes in Python before executing
                missing = ", ".join(c.name for c in compiled.insert_prefetch)
                raise exc.ArgumentError(f"{self.statement.table.name}: no value given for {missing}, "
                                        "which have Python defaults")
        else:
            compiled = self.statement.compile(dialect=dialect)
        processors = {}  # the type conversions SQLAlchemy applies to each parameter (dates, booleans…)
        for parameter, name in compiled.bind_names.items():
            processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        return compiled.string, tuple(compiled.positiontup), compiled, processors
