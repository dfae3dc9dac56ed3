"""What the public sees of publication: each item's published comments and replies, and its counts.

The bulletin page shows, under every item, how many comments it received, accepted and answered, and
the latest few published ones; ``page_version`` tells when any of that may have changed, so the page
is rendered again only then (``cached_for_bulletin``).
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from feedback_app.core.database import utcnow
from feedback_app.core.models import Bulletin, Publication, State, Submission, SubmissionEvent

# Accepted for handling: neither waiting for acceptance, nor rejected, nor merged into another.
NOT_ACCEPTED = frozenset({State.received.value, State.rejected.value, State.merged.value})
ANSWERED = frozenset({State.answered.value, State.closed.value})
LATEST_ON_BULLETIN = 3
COUNTS_LAG_SECONDS = 60  # how long the counts on the bulletin page may lag behind (see page_version)


@dataclass(frozen=True)
class Published:
    id: int
    item_number: int
    published_at: datetime
    received_at: datetime
    kind: str
    text: str
    reply_text: str | None


@dataclass(frozen=True)
class ItemCounts:
    received: int = 0
    accepted: int = 0
    answered: int = 0


def item_counts(session: Session, bulletin_id: int) -> dict[int, ItemCounts]:
    """Comments received, accepted and answered, per item, in one GROUP BY."""
    accepted = func.sum(case((Submission.state.in_(NOT_ACCEPTED), 0), else_=1))
    answered = func.sum(case((Submission.state.in_(ANSWERED), 1), else_=0))
    rows = session.execute(
        select(Submission.item_number, func.count(), accepted, answered)
        .where(Submission.bulletin_id == bulletin_id)
        .group_by(Submission.item_number)
    ).all()
    return {n: ItemCounts(int(r), int(a or 0), int(d or 0)) for n, r, a, d in rows}


def _of_bulletin(bulletin_id: int):
    """``Submission.bulletin_id = :id``, written so that no index serves it (see ``BY_PUBLICATION``)."""
    return (Submission.bulletin_id + 0) == bulletin_id


# Publications joined to their submissions, written so that the planner starts from the (small)
# publication table and fetches each submission by primary key: "+ 0" keeps the index on
# publication.submission_id (and, in _of_bulletin, the one on submission.bulletin_id) out of reach.
# Without it SQLite, which has no statistics, walks every submission of the bulletin (0.7 s at a
# million rows) to find the few that are published.
BY_PUBLICATION = Submission.id == Publication.submission_id + 0


def _published_select():
    return (
        select(Publication.id, Submission.item_number, Publication.published_at, Submission.received_at,
               Submission.kind, Publication.text, Publication.reply_text)
        .join(Submission, BY_PUBLICATION)
        .where(Publication.withdrawn_at.is_(None))
    )


def published(session: Session, bulletin_id: int, item_number: int, *, limit: int, offset: int = 0
              ) -> list[Published]:
    stmt = (_published_select()
            .where(_of_bulletin(bulletin_id), Submission.item_number == item_number)
            .order_by(Publication.published_at.desc(), Publication.id.desc())
            .limit(limit).offset(offset))
    return [Published(*row) for row in session.execute(stmt)]


def published_count(session: Session, bulletin_id: int, item_number: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Publication)
        .join(Submission, BY_PUBLICATION)
        .where(Publication.withdrawn_at.is_(None), _of_bulletin(bulletin_id), Submission.item_number == item_number)
    ) or 0


@dataclass(frozen=True)
class ItemPublications:
    counts: ItemCounts
    latest: list[Published]
    total: int


@dataclass(frozen=True)
class BulletinPublications:
    counts: dict[int, ItemCounts]
    latest: dict[int, list[Published]]
    totals: dict[int, int]

    def item(self, number: int) -> ItemPublications:
        """Counts and the latest published comments of one item."""
        return ItemPublications(self.counts.get(number, ItemCounts()), self.latest.get(number, []),
                                self.totals.get(number, 0))


def for_bulletin(session: Session, bulletin_id: int) -> BulletinPublications:
    """Counts, and the latest few published comments, of every item: three queries for the page."""
    base = _published_select().where(_of_bulletin(bulletin_id)).add_columns(
        func.row_number().over(partition_by=Submission.item_number,
                               order_by=(Publication.published_at.desc(), Publication.id.desc())).label("rn")
    ).subquery()
    rows = session.execute(
        select(base.c.id, base.c.item_number, base.c.published_at, base.c.received_at, base.c.kind, base.c.text,
               base.c.reply_text)
        .where(base.c.rn <= LATEST_ON_BULLETIN)
        .order_by(base.c.item_number, base.c.rn)
    ).all()
    latest: dict[int, list[Published]] = {}
    for row in rows:
        latest.setdefault(row.item_number, []).append(Published(*row))
    totals = dict(session.execute(
        select(Submission.item_number, func.count())
        .select_from(Publication).join(Submission, BY_PUBLICATION)
        .where(Publication.withdrawn_at.is_(None), _of_bulletin(bulletin_id))
        .group_by(Submission.item_number)
    ).all())
    return BulletinPublications(item_counts(session, bulletin_id), latest, totals)


def page_version(session: Session, bulletin: Bulletin) -> str:
    """A short token that changes whenever the bulletin page's published comments or counts may have.

    Publications of this bulletin: how many, and the latest publication and withdrawal (the
    publication table is small): a publication or a withdrawal shows at once. Counts: every new
    submission and every change of state writes a ``submission_event`` row, so the last event moves
    with them; only events older than ``COUNTS_LAG_SECONDS`` are looked at (read backwards from the
    end of the primary key index), so that a busy office re-counts a million rows at most once a
    minute rather than at every event, and the counts on the page lag by at most that much. The
    bulletin's import time keeps tokens of different databases apart. Rows deleted by hand (not
    through the services) are not seen until the next event.
    """
    pub = session.execute(
        select(func.count(Publication.id), func.max(Publication.published_at), func.max(Publication.withdrawn_at))
        .join(Submission, BY_PUBLICATION)
        .where(_of_bulletin(bulletin.id))
    ).one()
    cutoff = utcnow() - timedelta(seconds=COUNTS_LAG_SECONDS)
    last_event = session.execute(
        select(SubmissionEvent.id, SubmissionEvent.at).where(SubmissionEvent.at < cutoff)
        .order_by(SubmissionEvent.id.desc()).limit(1)
    ).first()
    raw = f"{bulletin.imported_at}|{pub[0]}|{pub[1]}|{pub[2]}|{tuple(last_event) if last_event else None}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


_bulletin_cache: dict[tuple[int, str], tuple[str, BulletinPublications]] = {}
_bulletin_lock = threading.Lock()


def cached_for_bulletin(session: Session, bulletin: Bulletin) -> BulletinPublications:
    """``for_bulletin``, counted again only when ``page_version`` moved. One thread counts while the
    others wait for its result, so that a change does not send every concurrent request to the
    database for the same GROUP BY."""
    version = page_version(session, bulletin)
    key = (bulletin.id, bulletin.source_sha256)
    with _bulletin_lock:
        hit = _bulletin_cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        data = for_bulletin(session, bulletin.id)
        _bulletin_cache[key] = (version, data)
        return data


def cached_item_counts(session: Session, bulletin: Bulletin) -> dict[int, ItemCounts]:
    return cached_for_bulletin(session, bulletin).counts
