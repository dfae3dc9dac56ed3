"""Earlier submissions that may be the same matter: the same phone, the same email, nearly the same text.

``candidates`` looks only at submissions received before the one at hand, not merged, and visible to
the viewer. It finds them cheaply and then measures:

1. one query for the same phone (E.164), the same email (case-insensitive) or the same text
   (``body_hash``), over the whole table: each is read from its own index (migration 0007;
   ``exact_query``), newest first, at most ``4 * limit`` rows;
2. distinctive 5-character pieces of the text (shingles): taken across its length, avoiding common
   words and anything the bulletin itself says (comments quote it), and kept only when a probe of
   the full-text index finds them in another text but in fewer than ``PROBE``. Each of the
   ``SHINGLES`` rarest is looked up in that index (``piece_query``), over the whole table too; the
   rows hit by most pieces are compared with ``difflib.SequenceMatcher`` and kept at a ratio of
   ``SIMILAR`` or more.

No bound depends on the size of the table or on how far back a match lies (until migration 0007
every query was held to the 20,000 submissions stored before this one). The exact query reads every
row sharing a key before it keeps the newest: a handful, unless many texts are identical (short ones
such as 同上), and then a sort of those rows only. The bounds that remain hold the work per proposal:
at most ``CANDIDATE_PIECES`` probes that stop at ``PROBE`` rows;
``SHINGLES`` look-ups, each of a piece the probe found in fewer than ``PROBE`` texts (so each returns
fewer than that: no LIMIT, which would invite a plan that walks the primary key hoping to stop
early), of which the newest ``PER_SHINGLE`` count; and ``MAX_COMPARED`` comparisons of at most
``COMPARE_CHARS`` characters after a linear bigram-overlap check.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.orm import Session

from feedback_app.core.models import Bulletin, StaffUser, State, Submission
from feedback_app.moderation.queue import visible_to
from feedback_app.search.match import MIN_INDEXED_CHARS, body_matches

SIMILAR = 0.8
SHINGLES = 4
SHINGLE_CHARS = 5
CANDIDATE_PIECES = 12
PROBE = 100  # a piece found in this many texts or more tells nothing
PER_SHINGLE = 20  # the newest texts holding a piece that count as its hits
MAX_COMPARED = 10
COMPARE_CHARS = 1000
PREFILTER = 0.5  # bigram overlap below which SequenceMatcher is not run
EXCERPT_CHARS = 80

SAME_PHONE = "同一电话"
SAME_EMAIL = "同一邮箱"

# Characters and words nearly every comment on a rectification bulletin contains: a shingle made of
# them finds everything and tells nothing.
_STOP_CHARS = frozenset("的了是在和与及对等并将把被这那我你他她们有也都就还要会能可以一个不中为上之其或而着")
_COMMON_WORDS = ("整改", "建议", "意见", "问题", "工作", "企业", "部门", "情况", "落实", "反映", "进一步",
                 "相关", "加强", "希望", "群众", "领导", "单位", "政府", "巡察", "我们", "通报", "要求")
_RUN = re.compile(rf"\w{{{SHINGLE_CHARS},}}")


@dataclass(frozen=True)
class Candidate:
    submission: Submission
    reasons: tuple[str, ...]
    similarity: float | None = None  # 0..1, when the texts were compared
    hits: int = field(default=0, compare=False)

    @property
    def excerpt(self) -> str:
        words = " ".join(self.submission.body.split())
        return words if len(words) <= EXCERPT_CHARS else words[:EXCERPT_CHARS] + "…"


def similar_label(ratio: float) -> str:
    return f"内容相近 {int(ratio * 100)}%"


def canonical(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text or "").split())


def similarity(a: str, b: str) -> float:
    """How alike two texts are (0..1), spaces and character widths ignored; long texts by their start.

    Below ``SIMILAR`` the value may be a cheaper estimate rather than the exact ratio.
    """
    x, y = canonical(a)[:COMPARE_CHARS], canonical(b)[:COMPARE_CHARS]
    if not x or not y:
        return 0.0
    overlap = _bigram_dice(x, y)
    if overlap < PREFILTER:
        return overlap
    matcher = SequenceMatcher(None, x, y, autojunk=False)
    for bound in (matcher.real_quick_ratio, matcher.quick_ratio):
        value = bound()
        if value < SIMILAR:
            return value
    return matcher.ratio()


def _bigram_dice(x: str, y: str) -> float:
    a = Counter(x[i:i + 2] for i in range(len(x) - 1))
    b = Counter(y[i:i + 2] for i in range(len(y) - 1))
    total = sum(a.values()) + sum(b.values())
    return 2 * sum((a & b).values()) / total if total else float(x == y)


def _score(piece: str) -> int:
    stops = sum(ch in _STOP_CHARS for ch in piece)
    common = sum(word in piece for word in _COMMON_WORDS)
    return len(set(piece)) - 2 * stops - 3 * common


def shingles(body: str, count: int = CANDIDATE_PIECES, exclude: str = "") -> list[str]:
    """Up to ``count`` distinctive pieces of ``body`` as written, spread across it; none found in ``exclude``."""
    pieces: list[tuple[int, str]] = []
    for run in _RUN.finditer(body or ""):
        text = run.group()
        for i in range(len(text) - SHINGLE_CHARS + 1):
            piece = text[i:i + SHINGLE_CHARS]
            if _score(piece) > 0 and piece not in exclude:
                pieces.append((run.start() + i, piece))
    length = len(body or "")
    chosen: list[str] = []
    for segment in range(count):
        low, high = length * segment / count, length * (segment + 1) / count
        here = [p for at, p in pieces if low <= at < high and p not in chosen]
        if here:
            chosen.append(max(here, key=_score))
    return chosen


def _like_pattern(piece: str) -> str:
    return "%" + piece.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _probe(session: Session, dialect: str, piece: str) -> int:
    """In how many submission texts ``piece`` occurs, counted up to ``PROBE`` only (an index read that stops)."""
    if dialect == "sqlite" and len(piece) >= MIN_INDEXED_CHARS:
        found = body_matches(piece).limit(PROBE).subquery()
        return session.scalar(select(func.count()).select_from(found)) or 0
    matching = "SELECT 1 FROM submission WHERE body LIKE :q ESCAPE '\\' LIMIT :n"
    params = {"q": _like_pattern(piece), "n": PROBE}
    return session.scalar(text(f"SELECT count(*) FROM ({matching}) AS probe"), params) or 0


def distinctive(session: Session, pieces: list[str], count: int = SHINGLES) -> list[str]:
    """The ``count`` rarest of ``pieces`` that some other text holds too (the submission's own holds each)."""
    dialect = session.get_bind().dialect.name
    seen = [(n, i, piece) for i, piece in enumerate(pieces) if 1 < (n := _probe(session, dialect, piece)) < PROBE]
    return [piece for _n, _i, piece in sorted(seen)[:count]]


def _earlier(submission: Submission, viewer: StaffUser | None) -> list[ColumnElement[bool]]:
    conditions = [
        Submission.id != submission.id,
        or_(Submission.received_at < submission.received_at,
            and_(Submission.received_at == submission.received_at, Submission.id < submission.id)),
        Submission.state != State.merged.value,
        Submission.merged_into_id.is_(None),
    ]
    if viewer is not None:
        conditions.append(visible_to(viewer))
    # One term ``(...) IS true`` that no index can serve, so that the rare keys' indexes are the only way
    # in. Offered ``unit_id = ?`` or a range of received_at, SQLite (no statistics: the application runs
    # no ANALYZE) reads a handler's whole unit or every earlier row to test each against the keys, and
    # PostgreSQL does the same on a table not yet analysed.
    return [and_(*conditions).is_(True)]


def _keys(submission: Submission) -> list[ColumnElement[bool]]:
    """The exact matches, each written as its index (0007) is: the partial ones need ``IS NOT NULL``
    spelled out for SQLite to use them."""
    keys = [Submission.body_hash == submission.body_hash]
    if submission.phone:
        keys.append(and_(Submission.phone.is_not(None), Submission.phone == submission.phone))
    if submission.email:
        keys.append(and_(Submission.email.is_not(None), func.lower(Submission.email) == submission.email.lower()))
    return keys


def exact_query(submission: Submission, viewer: StaffUser | None, limit: int) -> Select:
    """Earlier submissions with the same phone, email or text, newest first: one index read per key."""
    return (select(Submission).where(*_earlier(submission, viewer), or_(*_keys(submission)))
            .order_by(Submission.id.desc()).limit(limit))


def _piece_clause(dialect: str, piece: str) -> ColumnElement[bool]:
    """Texts holding ``piece``, found as ``_probe`` counts them: in the texts only (a reply holding the
    piece says nothing of how alike its comment is)."""
    if dialect == "sqlite" and len(piece) >= MIN_INDEXED_CHARS:
        return Submission.id.in_(body_matches(piece))
    return Submission.body.like(_like_pattern(piece), escape="\\")


def piece_query(submission: Submission, viewer: StaffUser | None, dialect: str, piece: str) -> Select:
    """The ids of earlier texts holding a piece the probe found in fewer than ``PROBE`` texts: that few
    rows, through the full-text index, whatever the size of the table."""
    return select(Submission.id).where(*_earlier(submission, viewer), _piece_clause(dialect, piece))


def candidates(session: Session, submission: Submission, limit: int = 5, *,
               viewer: StaffUser | None = None) -> list[Candidate]:
    """Earlier, unmerged submissions (visible to ``viewer``) that may be the same matter, best first."""
    if submission.state == State.merged.value or limit <= 0:
        return []
    dialect = session.get_bind().dialect.name
    found: dict[int, tuple[Submission, set[str], float | None, int]] = {}

    for row in session.scalars(exact_query(submission, viewer, limit * 4)):
        reasons = set()
        if submission.phone and row.phone == submission.phone:
            reasons.add(SAME_PHONE)
        if submission.email and (row.email or "").lower() == submission.email.lower():
            reasons.add(SAME_EMAIL)
        ratio = None
        if row.body_hash == submission.body_hash:
            ratio = 1.0
        found[row.id] = (row, reasons, ratio, 0)

    bulletin = session.get(Bulletin, submission.bulletin_id)
    hits: Counter[int] = Counter()
    quoted = bulletin.source_text if bulletin else ""
    for piece in distinctive(session, shingles(submission.body, exclude=quoted)):
        holding = session.scalars(piece_query(submission, viewer, dialect, piece)).all()
        hits.update(sorted(holding, reverse=True)[:PER_SHINGLE])  # the newest, as ids are stored
    measured = {i for i, (_row, _reasons, ratio, _n) in found.items() if ratio is not None}
    to_compare = [i for i, _n in hits.most_common() if i not in measured][:MAX_COMPARED]
    if to_compare:
        for row in session.scalars(select(Submission).where(Submission.id.in_(to_compare))):
            ratio = similarity(submission.body, row.body)
            if row.id in found:
                kept, reasons, _r, _h = found[row.id]
                found[row.id] = (kept, reasons, ratio if ratio >= SIMILAR else None, hits[row.id])
            elif ratio >= SIMILAR:
                found[row.id] = (row, set(), ratio, hits[row.id])

    result = []
    for row, reasons, ratio, n in found.values():
        labels = [r for r in (SAME_PHONE, SAME_EMAIL) if r in reasons]
        if ratio is not None and ratio >= SIMILAR:
            labels.append(similar_label(ratio))
        if labels:
            result.append(Candidate(row, tuple(labels), ratio, n))
    result.sort(key=lambda c: (-len(c.reasons), -(c.similarity or 0), -c.submission.received_at.timestamp(),
                               -c.submission.id))
    return result[:limit]
