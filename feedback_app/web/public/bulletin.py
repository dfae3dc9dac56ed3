"""Public bulletin pages: the list, one whole bulletin, and the published comments of one item."""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, make_response, render_template, request

from feedback_app import current
from feedback_app.bulletin.service import (
    get_bulletin,
    item_title,
    list_bulletins,
    structure_of,
)
from feedback_app.outcomes import published
from feedback_app.web.access import public
from feedback_app.web.transaction import get_session

bp = Blueprint("bulletin", __name__)

COMMENTS_PAGE = 20  # published comments per page


def _page_cache() -> dict[str, tuple[float, str, bytes]]:
    """Rendered bulletin pages by slug: (checked at, version — also the ETag —, HTML).

    A published bulletin's text never changes; the published comments and counts under its items
    do, so the version is checked again once ``page_cache_seconds`` have passed, and until then the
    page is served without touching the database.
    """
    return current_app.extensions.setdefault("bulletin_page_cache", {})


@bp.get("/")
@public
def index():
    bulletins = list_bulletins(get_session())
    latest = bulletins[0] if bulletins else None
    return render_template("bulletin/index.html", latest=latest, bulletins=bulletins)


@bp.get("/bulletins/<slug>")
@public
def show(slug: str):
    ttl = current.settings().page_cache_seconds
    cached = _page_cache().get(slug)
    if cached is None or time.monotonic() - cached[0] >= ttl:
        cached = _render(slug, cached)
    _checked, version, html = cached
    response = make_response(html)
    response.headers["Cache-Control"] = f"public, max-age={ttl}"
    response.set_etag(version)
    return response.make_conditional(request)


def _render(slug: str, cached):
    db = get_session()
    bulletin = get_bulletin(db, slug)
    if bulletin is None:
        abort(404)
    version = f"{bulletin.source_sha256[:16]}-{published.page_version(db, bulletin)}"
    if cached is not None and cached[1] == version:
        html = cached[2]
    else:
        html = render_template("bulletin/show.html", bulletin=bulletin, b=structure_of(bulletin),
                               publications=published.cached_for_bulletin(db, bulletin)).encode()
    entry = (time.monotonic(), version, html)
    _page_cache()[slug] = entry
    return entry


@bp.get("/bulletins/<slug>/items/<int:number>/comments")
@public
def item_comments(slug: str, number: int):
    db = get_session()
    bulletin = get_bulletin(db, slug)
    if bulletin is None:
        abort(404)
    title = item_title(bulletin, number)
    if title is None:
        abort(404)
    asked = request.args.get("page", "1")
    page = int(asked) if asked.isdigit() and 0 < int(asked) < 10_000 else 1
    total = published.published_count(db, bulletin.id, number)
    comments = published.published(db, bulletin.id, number, limit=COMMENTS_PAGE,
                                     offset=(page - 1) * COMMENTS_PAGE)
    if page > 1 and not comments:
        abort(404)
    counts = published.cached_item_counts(db, bulletin).get(number, published.ItemCounts())
    response = make_response(render_template(
        "publication/item_comments.html", bulletin=bulletin, number=number, title=title, comments=comments,
        total=total, counts=counts, page=page, pages=max(1, -(-total // COMMENTS_PAGE)),
    ))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
