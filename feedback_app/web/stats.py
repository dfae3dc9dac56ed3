"""Statistics pages: the staff overview (/staff/stats) and the public monthly figures (/statistics)."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta

from flask import Blueprint, current_app, make_response, render_template, request

from feedback_app.bulletin.service import list_bulletins
from feedback_app.current import settings
from feedback_app.outcomes import charts, monthly, statistics
from feedback_app.web.access import current_staff, may_here, public, require
from feedback_app.web.transaction import get_session

bp = Blueprint("stats", __name__, url_prefix="")

DEFAULT_DAYS = 91  # thirteen weeks; a year of a million-row table takes seconds (see statistics.py)
PUBLIC_TTL = 600  # seconds a month's public figures are kept before they are counted again

_public_cache: dict[str, tuple[float, monthly.MonthlyStats]] = {}
_public_lock = threading.Lock()



def _today() -> date:
    return datetime.now(settings().tz).date()


def _as_date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _staff_period(today: date) -> tuple[statistics.Period, str | None]:
    start, last = _as_date("from"), _as_date("to")
    notice = None
    last = last or today
    start = start or (last - timedelta(days=DEFAULT_DAYS - 1))
    if start > last:
        start, last = last, start
    if (last - start).days > statistics.MAX_PERIOD_DAYS:
        start = last - timedelta(days=statistics.MAX_PERIOD_DAYS)
        notice = "统计区间最长三年，已从截止日期向前截取。"
    return statistics.Period(start, last + timedelta(days=1)), notice


@bp.get("/staff/stats")
@require("stats.view")
def staff_stats():
    db = get_session()
    today = _today()
    period, notice = _staff_period(today)
    bulletins = list_bulletins(db)
    slug = request.args.get("bulletin") or ""
    bulletin = next((b for b in bulletins if b.slug == slug), None)
    viewer = current_staff()
    assert viewer is not None  # behind require
    stats = statistics.staff_stats(db, settings(), viewer, period, bulletin_id=bulletin.id if bulletin else None,
                                   today=today)
    return render_template(
        "stats/staff.html", stats=stats, charts=charts, notice=notice, bulletins=bulletins, bulletin=bulletin,
        item_bars=[(f"第{r.number}项" if r.number else "整体", r.received) for r in stats.by_item],
        unit_bars=[(u.label, u.received) for u in stats.by_unit],
        handler_unit=viewer.unit.name if not may_here("submissions.all_units") and viewer.unit else None,
    )


def _monthly(month: date) -> monthly.MonthlyStats:
    key = f"{current_app.import_name}:{id(current_app)}:{month.isoformat()}"
    now = time.monotonic()
    with _public_lock:
        hit = _public_cache.get(key)
        if hit and now - hit[0] < PUBLIC_TTL:
            return hit[1]
    stats = monthly.monthly_stats(get_session(), settings(), month)
    with _public_lock:
        if len(_public_cache) > 256:
            _public_cache.clear()
        _public_cache[key] = (now, stats)
    return stats


@bp.get("/statistics")
@public
def public_stats():
    today = _today()
    latest = monthly.last_complete_month(today)
    error, status = None, 200
    try:
        month = monthly.parse_month(request.args.get("month"), today) or latest
    except ValueError:
        month, status = latest, 400
        error = (f"月份应写成“年-月”，如 {latest:%Y-%m}，且只能查看已结束的月份。"
                 f"下面是{latest.year}年{latest.month}月的情况。")
    if month > latest:
        month, status = latest, 400
        error = f"本月尚未结束，下面是{latest.year}年{latest.month}月的情况。"
    stats = _monthly(month)
    previous = monthly.last_complete_month(month)
    following = (month + timedelta(days=32)).replace(day=1)
    response = make_response(render_template(
        "stats/public.html", stats=stats, charts=charts, latest=latest,
        previous=previous, following=following if following <= latest else None, error=error,
    ), status)
    response.headers["Cache-Control"] = f"public, max-age={PUBLIC_TTL}" if status == 200 else "no-store"
    return response
