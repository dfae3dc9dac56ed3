"""Public bulletin pages: the list and one whole bulletin."""
from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, request

from feedback_app.bulletin.service import get_bulletin, list_bulletins, structure_of
from feedback_app.db import get_session

bp = Blueprint("bulletin", __name__)

# Rendered bulletin pages by source hash: a published bulletin never changes.
_page_cache: dict[tuple[str, str], str] = {}


@bp.get("/")
def index():
    bulletins = list_bulletins(get_session())
    latest = bulletins[0] if bulletins else None
    return render_template("bulletin/index.html", latest=latest, bulletins=bulletins)


@bp.get("/bulletins/<slug>")
def show(slug: str):
    bulletin = get_bulletin(get_session(), slug)
    if bulletin is None:
        abort(404)
    key = (bulletin.slug, bulletin.source_sha256)
    html = _page_cache.get(key)
    if html is None:
        html = render_template("bulletin/show.html", bulletin=bulletin, b=structure_of(bulletin))
        _page_cache[key] = html
    response = make_response(html)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.set_etag(bulletin.source_sha256)
    return response.make_conditional(request)
