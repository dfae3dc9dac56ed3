"""Reference numbers: sequential per year, with a configurable prefix. Not secret."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from feedback_app.core.models import ReferenceCounter
from feedback_app.core.prepared import PreparedStatement


def _take(insert: Any) -> PreparedStatement:
    counter = ReferenceCounter.__table__
    return PreparedStatement(
        insert(counter)
        .values(year=bindparam("year"), value=bindparam("first", 1, type_=Integer))
        .on_conflict_do_update(index_elements=["year"],
                               set_={"value": counter.c.value + bindparam("step", 1, type_=Integer)})
        .returning(counter.c.value)
    )


# built once: every comment takes one, under the write lock
_TAKE = {"postgresql": _take(pg_insert), "sqlite": _take(sqlite_insert)}


def next_sequence(connection: Connection, year: int) -> int:
    """Take the next number of ``year`` in the current transaction (a row lock on PostgreSQL)."""
    return int(_TAKE[connection.dialect.name].one(connection, {"year": year})[0])


def format_reference(prefix: str, year: int, seq: int) -> str:
    return f"{prefix}{year}-{seq:06d}"
