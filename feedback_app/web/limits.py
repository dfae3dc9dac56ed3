"""Per-client rate limits (Flask-Limiter); Redis storage lets several workers share one count."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

from flask import Flask, request
from flask.typing import RouteCallable
from flask_limiter import Limiter

from feedback_app.core.config import Settings, SettingsError


def client_address() -> str:
    return request.remote_addr or "unknown"


def init_limiter(app: Flask, settings: Settings) -> None:
    check_shared_counts(settings)
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


def check_shared_counts(settings: Settings) -> None:
    """Refuse to serve in production when each of several gunicorn workers would count on its own.

    ``memory://`` keeps the counts in the process: with N workers a client gets N times every limit, and
    nothing says so. The flask server of ``make run`` is one process; so is gunicorn with one worker."""
    if settings.is_development or not settings.ratelimit_enabled:
        return
    if not settings.ratelimit_storage_uri.startswith("memory://"):
        return
    workers = gunicorn_workers()
    if workers is not None and workers > 1:
        raise SettingsError(
            f"FEEDBACK_RATELIMIT_STORAGE_URI 为 {settings.ratelimit_storage_uri}（计数保存在各进程内存中），"
            f"而 gunicorn 将启动 {workers} 个工作进程：每个进程各自计数，所有频率限制都会被放宽 {workers} 倍。"
            "请将 FEEDBACK_RATELIMIT_STORAGE_URI 配置为 Redis（如 redis://127.0.0.1:6379/0），"
            "或只启动一个工作进程。服务未启动。"
        )


def gunicorn_workers() -> int | None:
    """How many workers the gunicorn command serving this process starts; None when it is not served so.

    gunicorn's own ``WSGIApplication`` reads the same command line, ``GUNICORN_CMD_ARGS``, config file
    and ``WEB_CONCURRENCY`` the master read, and its ``cfg.workers`` is the number the master started
    with (a worker is a fork of the master: same arguments, same environment, same directory)."""
    # set by gunicorn's arbiter before it loads the app, and inherited by its workers
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return None
    if not _is_gunicorn_command(sys.argv[0] if sys.argv else ""):
        return None  # gunicorn embedded by some other program: its command line is not gunicorn's
    from gunicorn.app.wsgiapp import WSGIApplication  # type: ignore[import-untyped]

    try:
        config = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg
    except SystemExit as exc:  # gunicorn has already said why on stderr
        raise SettingsError("无法读取 gunicorn 的配置，不能确认工作进程数。服务未启动。") from exc
    return int(config.workers)


def _is_gunicorn_command(argv0: str) -> bool:
    """``gunicorn …`` or ``python -m gunicorn …``."""
    path = Path(argv0)
    return path.name == "gunicorn" or (path.name == "__main__.py" and path.parent.name == "gunicorn")
