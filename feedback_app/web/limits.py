"""Per-client rate limits (Flask-Limiter); Redis storage lets several workers share one count."""
from __future__ import annotations

from collections.abc import Callable
from typing import cast

from flask import Flask, request
from flask.typing import RouteCallable
from flask_limiter import Limiter

from feedback_app.core.config import Settings


def client_address() -> str:
    return request.remote_addr or "unknown"


def init_limiter(app: Flask, settings: Settings) -> None:
    limiter = Limiter(
        key_func=client_address,
        app=app,
        storage_uri=settings.ratelimit_storage_uri,
        strategy="moving-window",
        enabled=settings.ratelimit_enabled,
        headers_enabled=False,
        in_memory_fallback_enabled=True,  # a Redis outage must not stop citizens or staff
        key_prefix="feedback",
    )
    app.extensions["feedback_limiter"] = limiter


def limit_view(app: Flask, endpoint: str, limit: str, on_breach: Callable | None = None) -> None:
    """Put ``limit`` on the POSTs of ``endpoint``; ``on_breach`` may answer instead of a bare 429.

    With the limits switched off (load tests) the view is left as it is: a disabled limiter would still
    look its limits up on every request."""
    limiter: Limiter = app.extensions["feedback_limiter"]
    if not limiter.enabled:
        return
    # the decorator keeps the view's signature, but mypy cannot carry Flask's union of plain and async views
    # through its ParamSpec
    app.view_functions[endpoint] = cast(RouteCallable, limiter.limit(limit, methods=["POST"], on_breach=on_breach)(
        app.view_functions[endpoint]
    ))
