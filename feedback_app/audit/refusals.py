"""Refused requests (403, 409, 429), counted per minute, actor, status and route.

A refusal is worth knowing about (a clerk trying an administrator's page, a form posted from another
site, a client hammering a rate limit), but one audit entry per refusal would let a flood fill the log.
So each refusal adds one to the count of its (minute, actor, status, route): an insert that, when the
row is there already, updates it instead (the dialect's ``ON CONFLICT DO UPDATE``, SQLite and
PostgreSQL alike), one statement whatever other workers count at the same moment.

The actor is a staff username or ``client_actor(...)`` of a keyed hash of the client's address: the
address itself (personal data) is never stored. The caller hashes it (``web.refusal_audit``).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feedback_app.core.models import RefusalCount

REFUSED = frozenset({403, 409, 429})
CLIENT_PREFIX = "client:"  # + 64 hex digits: longer than any username (64), so never one
ROUTE_LENGTH = 200
NO_ROUTE = "-"  # refused before the URL matched a route (the origin check of a path that does not exist)


def client_actor(client_hash: str) -> str:
    """The actor of a refusal to somebody not logged in as staff: by the keyed hash of their address."""
    return CLIENT_PREFIX + client_hash


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(RefusalCount)
    if dialect == "sqlite":
        return sqlite.insert(RefusalCount)
    raise NotImplementedError(f"refusals are counted on SQLite and PostgreSQL, not on {dialect}")


def count_refusal(session: Session, *, at: datetime, actor: str, status: int, route: str | None) -> None:
    """Add one refusal answered at ``at`` to its minute's count (a row of its own the first time)."""
    if status not in REFUSED:
        raise ValueError(f"not a refusal that is counted: {status}")
    table = RefusalCount.__table__.c
    insert = _insert(session).values(
        minute=minute_of(at), actor=actor, status=status, route=(route or NO_ROUTE)[:ROUTE_LENGTH],
        count=1, first_at=at, last_at=at,
    )
    new = insert.excluded  # workers' jobs may commit out of order: first and last are compared, not taken
    session.execute(insert.on_conflict_do_update(
        index_elements=[table.minute, table.actor, table.status, table.route],
        set_={
            "count": table.count + 1,
            "first_at": case((new.first_at < table.first_at, new.first_at), else_=table.first_at),
            "last_at": case((new.last_at > table.last_at, new.last_at), else_=table.last_at),
        },
    ))
    session.flush()


def recent_refusals(session: Session, limit: int = 50) -> Sequence[RefusalCount]:
    """The counts of the newest minutes first; within a minute, the largest first."""
    return session.scalars(
        select(RefusalCount)
        .order_by(RefusalCount.minute.desc(), RefusalCount.count.desc(), RefusalCount.status, RefusalCount.route,
                  RefusalCount.actor)
        .limit(limit)
    ).all()
