"""Public bulletin pages: the list and one whole bulletin."""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, make_response, render_template, request

from feedback_app.bulletin.service import get_bulletin, list_bulletins, structure_of
from feedback_app.db import get_session
from feedback_app.outcomes.publication import page_version

bp = Blueprint("bulletin", __name__)


def _page_cache() -> dict[str, tuple[float, str, bytes]]:
    """Rendered bulletin pages by slug: (checked at, version — also the ETag —, HTML).

    A published bulletin's text never changes; the published comments and counts under its items
    do, so the version is checked again once ``page_cache_seconds`` have passed, and until then the
    page is served without touching the database.
    """
    return current_app.extensions.setdefault("bulletin_page_cache", {})


@bp.get("/")
def index():
    bulletins = list_bulletins(get_session())
    latest = bulletins[0] if bulletins else None
    return render_template("bulletin/index.html", latest=latest, bulletins=bulletins)


@bp.get("/bulletins/<slug>")
def show(slug: str):
    ttl = current_app.extensions["settings"].page_cache_seconds
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
    version = f"{bulletin.source_sha256[:16]}-{page_version(db, bulletin)}"
    if cached is not None and cached[1] == version:
        html = cached[2]
    else:
        html = render_template("bulletin/show.html", bulletin=bulletin, b=structure_of(bulletin)).encode()
    entry = (time.monotonic(), version, html)
    _page_cache()[slug] = entry
    return entry
