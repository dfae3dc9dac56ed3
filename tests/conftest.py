"""App, session and client fixtures; SQLite by default, PostgreSQL when FEEDBACK_DATABASE_URL says so."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from feedback_app.app import create_app
from feedback_app.core.config import Settings
from feedback_app.core.database import Base, make_engine
from feedback_app.migrations import upgrade

SEED = Path(__file__).resolve().parent.parent / "feedback_app" / "bulletin" / "seed" / "huangpu-2025-03-28.txt"
SEED_SLUG = "huangpu-2025-03-28"


class ClosingClient(FlaskClient):
    """A test client that closes each response, as a WSGI server does: what a request left for after its
    response (``after_response``, ``after_commit`` jobs) has run when the call returns."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


Flask.test_client_class = ClosingClient


def _postgres_worker_url(base: str, worker_id: str) -> str:
    """A database of this test worker's own, beside the one CI created."""
    url = make_url(base)
    name = f"{url.database}_{worker_id}"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                          "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite database to copy, whichever database the run is against."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return "sqlite", path


@pytest.fixture(scope="session")
def db_template(request, worker_id):
    base = os.environ.get("FEEDBACK_DATABASE_URL", "")
    if base.startswith("postgresql"):
        url = _postgres_worker_url(base, worker_id)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return "postgresql", url
    return request.getfixturevalue("sqlite_template")


@pytest.fixture
def database_url(db_template, tmp_path):
    return fresh_database(db_template, tmp_path)


def fresh_database(db_template, tmp_path: Path) -> str:
    """A migrated, empty database: a copy of the SQLite template, or the worker's PostgreSQL emptied."""
    kind, value = db_template
    if kind == "sqlite":
        dest = tmp_path / "feedback.db"
        shutil.copy(value, dest)
        return f"sqlite:///{dest}"
    engine = make_engine(value)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name != "audit_head")
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("UPDATE audit_head SET last_hash = :g, last_id = 0"), {"g": "0" * 64})
    engine.dispose()
    return value


def make_settings(database_url: str, tmp_path: Path, **overrides) -> Settings:
    values = dict(
        env="test",
        database_url=database_url,
        instance_path=tmp_path / "instance",
        secret_key="test-secret-key",
        ratelimit_enabled=False,
        min_fill_seconds=0,
        csrf_enabled=False,
        page_cache_seconds=0,
    )
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A session outside any request, for arranging and checking data."""
    s = app.extensions["db_sessionmaker"]()
    yield s
    s.close()


@pytest.fixture
def bulletin(app, session):
    from feedback_app.bulletin.service import import_bulletin

    result = import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
    session.commit()
    return result.bulletin


@pytest.fixture(params=["pending", "indexed"])
def search_texts(request, monkeypatch):
    """Runs a test twice on SQLite: each new text left waiting for the search indexes (read directly
    by a search), and each indexed as soon as its transaction has committed (``search_backlog``)."""
    from feedback_app.search import backlog as search_backlog

    monkeypatch.setattr(search_backlog, "BATCH", 1 if request.param == "indexed" else 10**9)
    return request.param
