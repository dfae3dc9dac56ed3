"""The ledger (台账): one row per submission the queue's filters select, as CSV or XLSX, streamed.

A row: reference, time received, channel, rectification item, kind, state, responsible unit, the due
day of each statutory clock and whether it was met, the reply date and the citizen's rating; with
``personal``, also name, phone, e-mail and address (admins only on the web; ``--personal`` on the
command line). Of several clocks of one kind (a reopened matter) the latest counts; the reply date is
the day the latest approved reply reached the citizen (its approval day until a call back or letter
is recorded). Times and days are the office's (``settings.timezone``).

Memory does not grow with the number of rows. The submissions come from one ordered query read
``CHUNK`` rows at a time (a server-side cursor on PostgreSQL, a stepped statement on SQLite); each
chunk's deadlines and approved replies come from one more query; the writer turns the chunk into
bytes before the next one is read. The XLSX package is written as a ZIP stream (entries with data
descriptors), so its first bytes leave before the last row is read, and nothing is kept on disk.

The files themselves are written by :mod:`feedback_app.outcomes.spreadsheets`.

The export is recorded in the audit log (``ledger_exported``) by :func:`prepare`, in the caller's
transaction, before any row is read; :func:`stream` then reads with a session of its own, because a
web response streams after the request's session has been committed and closed.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

import phonenumbers
from sqlalchemy import (
    Date,
    Select,
    String,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from feedback_app.audit.log import record
from feedback_app.core import clocks, states
from feedback_app.core.config import Settings
from feedback_app.core.models import (
    BulletinItem,
    Deadline,
    Reply,
    StaffUser,
    Submission,
    Unit,
)
from feedback_app.core.permissions import SYSTEM, may
from feedback_app.core.words import (
    CHANNEL_LABELS,
    DEADLINE_KIND_LABELS,
    KIND_LABELS,
    RATING_LABELS,
    STATE_WORDS,
)
from feedback_app.moderation import queue
from feedback_app.outcomes.spreadsheets import DATE, DATETIME, LABEL, TEXT, Column, csv_stream, xlsx_stream

log = logging.getLogger(__name__)

CHUNK = 1000  # submissions per read, and per query for their deadlines and replies
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ACTION = "ledger_exported"
TITLE = "整改意见台账"
FILENAME_ASCII = "ledger"

# what each clock's column says
MET_ON_TIME = "按期完成"
MET_LATE = "超期完成"
MISSED = "已超期"
RUNNING = "未到期"

def columns(personal: bool) -> tuple[Column, ...]:
    cols = [
        Column("受理编号", TEXT, 16),
        Column("收到时间", DATETIME, 17),
        Column("渠道", LABEL, 6),
        Column("整改事项", LABEL, 30),
        Column("类型", LABEL, 10),
        Column("状态", LABEL, 17),
        Column("责任单位", LABEL, 18),
    ]
    for kind in clocks.KINDS:
        label = DEADLINE_KIND_LABELS[kind]
        cols += [Column(f"{label}期限", DATE, 12), Column(f"{label}是否按期", LABEL, 10)]
    cols += [Column("答复日期", DATE, 12), Column("满意度", LABEL, 9)]
    if personal:
        cols += [Column("姓名", TEXT, 10), Column("联系电话", TEXT, 15), Column("电子邮箱", TEXT, 24),
                 Column("通信地址", TEXT, 36)]
    return tuple(cols)


def may_see_personal(viewer: StaffUser) -> bool:
    return may(viewer.role, "ledger.contacts")


def system_viewer() -> StaffUser:
    """The viewer of a command-line export: the operator, who sees every submission (never stored)."""
    return StaffUser(username="cli", role=SYSTEM)


# --- formula injection -------------------------------------------------------------------------

_COLUMNS = (Submission.id, Submission.reference, Submission.received_at, Submission.channel,
            Submission.bulletin_id, Submission.item_number, Submission.kind, Submission.state,
            Submission.unit_id, Submission.rating)
_PERSONAL = (Submission.name, Submission.phone, Submission.email, Submission.address)


def statement(session: Session, settings: Settings, viewer: StaffUser, filters: queue.Filters, *,
              personal: bool) -> Select:
    """The queue's selection for ``viewer`` under ``filters`` (sort and cursor ignored), oldest first."""
    stmt = queue.filtered_select(session, settings, viewer, filters)
    return stmt.with_only_columns(*_COLUMNS, *(_PERSONAL if personal else ())).order_by(
        Submission.received_at, Submission.id)


def count(session: Session, stmt: Select) -> int:
    found = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    assert found is not None  # a count is one row
    return found


def _clocks_and_replies(session: Session, ids: list[int]):
    """Every deadline and approved reply of these submissions, in one query."""
    deadlines = select(Deadline.submission_id, Deadline.kind, Deadline.due_on, Deadline.met_at, Deadline.id) \
        .where(Deadline.submission_id.in_(ids))
    replies = select(Reply.submission_id, literal_column("'reply'", String), cast(null(), Date),
                     func.coalesce(Reply.delivered_at, Reply.approved_at), Reply.id) \
        .where(Reply.submission_id.in_(ids), Reply.approved_at.is_not(None))
    return session.execute(union_all(deadlines, replies)).all()


class _Labels:
    """Chinese words for stored values, looked up once per export."""

    def __init__(self, session: Session):
        self.channel = {c.value: w for c, w in CHANNEL_LABELS.items()}
        self.kind = {k.value: w for k, w in KIND_LABELS.items()}
        self.state = {s.value: w for s, w in STATE_WORDS.items()}
        self.rating = {r.value: w for r, w in RATING_LABELS.items()}
        self.unit = dict(session.execute(select(Unit.id, Unit.name)).all())
        self.titles = {(b, n): t for b, n, t in session.execute(
            select(BulletinItem.bulletin_id, BulletinItem.number, BulletinItem.title)).all()}
        self._items: dict[tuple[int, int], str] = {}

    def item(self, bulletin_id: int, number: int) -> str:
        key = (bulletin_id, number)
        label = self._items.get(key)
        if label is None:
            title = self.titles.get(key)
            label = "整改工作整体" if number == 0 else f"第{number}项：{title}" if title else f"第{number}项"
            self._items[key] = label
        return label


_CN_MOBILE = re.compile(r"\+861\d{10}")


def phone_text(phone: str | None) -> str | None:
    """A stored E.164 number as people write it (mobile 138 0013 8000, landline 020 8888 6666)."""
    if not phone:
        return phone
    if _CN_MOBILE.fullmatch(phone):  # most numbers, without the cost of parsing
        return f"{phone[3:6]} {phone[6:10]} {phone[10:]}"
    try:
        number = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        return phone
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 86 \
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, fmt)


def read_chunks(session: Session, settings: Settings, stmt: Select, *, personal: bool,
                size: int = CHUNK) -> Iterator[list[list]]:
    """The ledger rows of ``stmt`` (see :func:`columns`) in lists of at most ``size``, as Python values.

    Dates and times are local to the office (naive); missing values are None.
    """
    tz = settings.tz
    today = clocks.local_today(settings)
    labels = _Labels(session)
    kinds = clocks.KINDS

    def clock_words(due_on: date, met_at: datetime | None) -> str:
        if met_at is not None:
            return MET_ON_TIME if met_at.astimezone(tz).date() <= due_on else MET_LATE
        return MISSED if due_on < today else RUNNING

    result = session.execute(stmt, execution_options={"yield_per": size, "stream_results": True})
    try:
        for part in result.partitions(size):
            ids = [r[0] for r in part]
            found_clocks: dict[int, dict[str, tuple]] = {}
            found_replies: dict[int, tuple] = {}
            for sid, kind, due_on, at, row_id in _clocks_and_replies(session, ids):
                if kind == "reply":
                    if sid not in found_replies or found_replies[sid][0] < row_id:
                        found_replies[sid] = (row_id, at)
                else:
                    per_kind = found_clocks.setdefault(sid, {})
                    if kind not in per_kind or per_kind[kind][0] < row_id:  # the latest clock of a kind
                        per_kind[kind] = (row_id, due_on, at)
            rows = []
            for r in part:
                sid = r[0]
                row = [
                    r[1],
                    r[2].astimezone(tz).replace(tzinfo=None),
                    labels.channel.get(r[3], r[3]),
                    labels.item(r[4], r[5]),
                    labels.kind.get(r[6], r[6]),
                    labels.state.get(r[7], r[7]),
                    labels.unit.get(r[8]) if r[8] is not None else None,
                ]
                mine = found_clocks.get(sid, {})
                for kind in kinds:
                    clock = mine.get(kind)
                    if clock is None:
                        row += (None, None)
                    else:
                        row += (clock[1], clock_words(clock[1], clock[2]))
                reply = found_replies.get(sid)
                row.append(reply[1].astimezone(tz).date() if reply and reply[1] else None)
                row.append(labels.rating.get(r[9], r[9]) if r[9] else None)
                if personal:
                    row += (r[10], phone_text(r[11]), r[12], r[13])
                rows.append(row)
            yield rows
    finally:
        result.close()


# --- CSV ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    """What :func:`prepare` decided and recorded; :func:`stream` writes it."""

    format: str
    personal: bool
    columns: tuple[Column, ...]
    statement: Select
    rows: int  # the rows matching when the export was recorded
    filename: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def content_disposition(self) -> str:
        """An attachment; ``filename*`` (RFC 5987) carries the Chinese name, ``filename`` an ASCII one."""
        ascii_name = FILENAME_ASCII + self.filename[len(TITLE):]
        return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(self.filename, safe='')}"


def describe(filters: queue.Filters) -> dict:
    """The filters that narrow the export, as the audit log records them."""
    values = {
        "state": filters.state, "channel": filters.channel, "item": filters.item, "kind": filters.kind,
        "unit": filters.unit, "due": filters.due,
        "from": filters.date_from.isoformat() if filters.date_from else None,
        "to": filters.date_to.isoformat() if filters.date_to else None,
        "q": filters.q,
    }
    return {k: v for k, v in values.items() if v is not None}


def prepare(session: Session, settings: Settings, viewer: StaffUser, filters: queue.Filters, *, fmt: str,
            personal: bool, actor: str, actor_id: int | None = None, client: str | None = None) -> Export:
    """Decide the export and record it in the audit log (flushed in ``session``'s transaction).

    The caller commits before the rows are streamed: an export that is not recorded does not happen.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format: {fmt}")
    if personal and not may_see_personal(viewer):
        raise states.TransitionRefused("ledger.contacts")
    stmt = statement(session, settings, viewer, filters, personal=personal)
    rows = count(session, stmt)
    record(session, settings, action=ACTION, actor=actor, actor_id=actor_id, client=client,
           details={"format": fmt, "filters": describe(filters), "rows": rows, "personal": personal})
    today = clocks.local_today(settings)
    return Export(fmt, personal, columns(personal), stmt, rows, f"{TITLE}-{today:%Y%m%d}.{fmt}")


def stream(session_factory: Callable[[], Session], settings: Settings, export: Export,
           chunk: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes, read with a session of its own that is closed when the stream ends or is dropped."""
    session = session_factory()
    try:
        if session.get_bind().dialect.name == "postgresql":  # one snapshot for the rows and their clocks
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        chunks = read_chunks(session, settings, export.statement, personal=export.personal, size=chunk)
        if export.format == "csv":
            yield from csv_stream(export.columns, chunks)
        else:
            yield from xlsx_stream(export.columns, chunks, title=TITLE)
    except GeneratorExit:
        raise
    except Exception:
        log.exception("ledger export failed after it had started (%s)", export.format)
        raise
    finally:
        session.close()
