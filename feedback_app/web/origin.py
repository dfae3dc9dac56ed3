"""A request that changes something must come from this site's own pages, as far as the browser says.

Browsers send ``Origin`` with a form's POST (and ``Referer`` within the site: ``Referrer-Policy:
same-origin``). When either is there it must name this site: the address the request came to (as seen
behind the proxy, ``FEEDBACK_PROXY_COUNT``) or ``FEEDBACK_PUBLIC_URL``. ``Origin: null`` (a sandboxed
frame, a page from a file, a redirect across sites) is refused. A request that sends neither passes:
the CSRF token stays the check, and some browsers and proxies leave both out.

Refused as every request is (``web.refusal``), so that what was typed is never lost (a host alias or a
proxy set up wrong, ``FEEDBACK_PUBLIC_URL`` or ``FEEDBACK_PROXY_COUNT``, would otherwise throw away every
comment): a POST to a view marked ``keeps_input`` gets its form back, as filled in, with the reason and
status 403, and nothing acts. That view needs the hooks that say who is asking, so this hook only records
the refusal (``refuse_later``: from then on every form fails and nothing is committed) and ``web.csrf``'s
hook answers after them, before the CSRF token is checked or a rate limit counted. Any other view gets
the 403 page at once, from the first of the before-request hooks: its request reads and writes nothing.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue

from feedback_app.core.config import Settings
from feedback_app.web.refusal import refuse_later, shows_form_again

CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
TITLE = "请求未执行"
REASON = "无法确认提交来自本站页面，操作未执行。"  # what a form shown again says, before its own advice
MESSAGE = f"{REASON}请返回本站页面重新提交。"  # the 403 page

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL, the default port filled in; None if it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def site_origins(settings: Settings) -> set[Origin]:
    """The origins this request may come from: its own address and the public URL."""
    own = {origin_of(f"{request.scheme}://{request.host}"), origin_of(settings.public_url)}
    return {o for o in own if o is not None}


def from_this_site(settings: Settings) -> bool | None:
    """True or False when the browser said where the request comes from; None when it said nothing."""
    sent = request.headers.get("Origin")
    if sent is None:
        sent = request.headers.get("Referer")
        if sent is None:
            return None
    source = origin_of(sent)  # "null" and anything else that is no http(s) origin give None
    return source is not None and source in site_origins(settings)


def refused_page() -> ResponseReturnValue:
    return render_template("errors/error.html", code=403, title=TITLE, message=MESSAGE), 403


def init_origin_check(app: Flask, settings: Settings) -> None:
    """Before the hooks that say who is asking, check CSRF or count a rate limit: a refused request
    reaches none of them, unless its view shows its form again (then it needs to know who is asking)."""

    @app.before_request
    def check_origin() -> ResponseReturnValue | None:
        if request.method not in CHANGING_METHODS or from_this_site(settings) is not False:
            return None
        if shows_form_again():
            refuse_later(REASON, refused_page, status=403)  # answered by web.csrf's hook
            return None
        return refused_page()
