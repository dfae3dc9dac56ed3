"""Every row of every table, to tell whether something wrote to the database."""
from __future__ import annotations

from sqlalchemy import Engine, inspect, text


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """The rows of every table (search indexes included), each table's rows in a stable order. On SQLite
    a full-text index is read through the tables that store it (its virtual table cannot be scanned)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = list(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")))
        else:
            names = inspect(conn).get_table_names()
        return {name: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{name}"'))), key=repr)
                for name in names}


def changes(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, tuple[int, int]]:
    """The tables whose rows differ: name → (rows before, rows after)."""
    return {name: (len(before.get(name, [])), len(after.get(name, [])))
            for name in set(before) | set(after) if before.get(name) != after.get(name)}
