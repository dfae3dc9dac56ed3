"""Reference numbers: sequential per year, with a configurable prefix. Not secret."""
from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedback_app.intake.models import ReferenceCounter


def next_sequence(session: Session, year: int) -> int:
    """Take the next number of ``year`` in the current transaction (a row lock on PostgreSQL)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(ReferenceCounter)
        .values(year=year, value=1)
        .on_conflict_do_update(index_elements=["year"], set_={"value": ReferenceCounter.value + 1})
        .returning(ReferenceCounter.value)
    )
    return session.execute(stmt).scalar_one()


def format_reference(prefix: str, year: int, seq: int) -> str:
    return f"{prefix}{year}-{seq:06d}"
