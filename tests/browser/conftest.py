"""Browser fixtures: Debian's Chromium driven by pytest-playwright, and the app served on a random port.

The app under test runs with CSRF protection on (the real thing), no minimum fill time and no rate
limits, on the same database fixtures as the rest of the suite (SQLite, or PostgreSQL when
FEEDBACK_DATABASE_URL says so), with the seed bulletin imported.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import make_settings

HERE = Path(__file__).resolve().parent

# Debian's Chromium; never `playwright install` (see shared/design/RECIPES.md).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]

# A mid-size phone: the citizens mostly come from a link shared on WeChat.
PHONE = dict(
    viewport={"width": 390, "height": 844},
    device_scale_factor=2,
    is_mobile=True,
    has_touch=True,
    locale="zh-CN",
    timezone_id="Asia/Shanghai",
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group for --dist loadgroup
def pytest_collection_modifyitems(config, items):
    """Every test in this folder shares one xdist worker (and so one Chromium)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, **PHONE}


@pytest.fixture
def settings(database_url, tmp_path):
    """Overrides tests/conftest.py's: CSRF on, as in production; the `app` and `bulletin` fixtures use it."""
    return make_settings(database_url, tmp_path, csrf_enabled=True, min_fill_seconds=0, ratelimit_enabled=False)


@pytest.fixture
def live_server(app, bulletin):
    """The app with the seed bulletin, served on 127.0.0.1:<random port>; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def context(new_context):
    ctx = new_context()
    ctx.set_default_timeout(10_000)
    return ctx
