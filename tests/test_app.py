"""The app factory, settings, error pages (the health check: tests/test_health.py)."""
import dataclasses
from pathlib import Path

import itsdangerous
import pytest
from sqlalchemy import text

from feedback_app.core.config import Settings, SettingsError


def test_secret_key_required_outside_development(tmp_path):
    with pytest.raises(SettingsError):
        Settings.from_env({"FEEDBACK_INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(SettingsError):
        Settings.from_env({"FEEDBACK_ENV": "production", "FEEDBACK_INSTANCE_PATH": str(tmp_path)})


def test_development_key_is_generated_once_and_kept(tmp_path):
    env = {"FEEDBACK_ENV": "development", "FEEDBACK_INSTANCE_PATH": str(tmp_path)}
    first = Settings.from_env(env)
    assert len(first.secret_key) >= 32
    assert Settings.from_env(env).secret_key == first.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_settings_from_environment(tmp_path):
    s = Settings.from_env({
        "FEEDBACK_ENV": "development", "FEEDBACK_INSTANCE_PATH": str(tmp_path),
        "FEEDBACK_RATELIMIT_ENABLED": "0", "FEEDBACK_MIN_FILL_SECONDS": "0",
        "FEEDBACK_BODY_MAX_CHARS": "800",
    })
    assert s.database_url == f"sqlite:///{tmp_path / 'feedback.db'}"
    assert s.ratelimit_enabled is False and s.min_fill_seconds == 0 and s.body_max_chars == 800
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.body_max_chars = 1  # frozen
    with pytest.raises(SettingsError):
        Settings.from_env({"FEEDBACK_ENV": "development", "FEEDBACK_INSTANCE_PATH": str(tmp_path),
                           "FEEDBACK_BODY_MAX_CHARS": "many"})
    assert "secret" not in repr(s).lower() or s.secret_key not in repr(s)


def test_error_pages_are_chinese_and_leak_nothing(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("SELECT secret FROM table WHERE phone='13800138000'")

    for path, method, code, words in [
        ("/nothing-here", "GET", 404, "页面不存在"),
        ("/healthz", "POST", 405, "请求方式不允许"),
        ("/boom", "GET", 500, "服务暂时出错"),
    ]:
        response = client.open(path, method=method)
        body = response.get_data(as_text=True)
        assert response.status_code == code and words in body
        assert '<html lang="zh-CN">' in body
        assert "Traceback" not in body and "SELECT" not in body and "13800138000" not in body


def test_request_body_limit_gives_chinese_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/track", data={"reference": "x" * 5000})
    assert response.status_code == 413
    assert "提交内容过大" in response.get_data(as_text=True)


def test_database_connection_settings(app, settings):
    with app.extensions["db_engine"].connect() as conn:
        if settings.is_sqlite:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 8000
            assert conn.execute(text("PRAGMA temp_store")).scalar() == 2  # MEMORY
        else:
            ctype = conn.execute(text("SHOW lc_ctype")).scalar().lower().replace("-", "")
            assert ctype.endswith("utf8")
            assert conn.execute(text("SHOW server_encoding")).scalar() == "UTF8"


def test_templates_and_static_are_found_from_the_repository_root(app):
    root = Path(__file__).resolve().parent.parent
    assert Path(app.template_folder) == root / "templates"
    assert Path(app.static_folder) == root / "static"


def test_two_factor_roles_setting_name(tmp_path):
    base = {"FEEDBACK_ENV": "development", "FEEDBACK_INSTANCE_PATH": str(tmp_path)}
    assert Settings.from_env(base).twofa_role_set == {"reviewer", "admin"}
    assert Settings.from_env({**base, "FEEDBACK_2FA_ROLES": ""}).twofa_role_set == frozenset()
    assert Settings.from_env({**base, "FEEDBACK_2FA_ROLES": "admin, clerk"}).twofa_role_set == {"admin", "clerk"}


def test_the_cookie_session_serializer_is_made_once_per_key_and_follows_a_key_change(app):
    sessions = app.session_interface
    first = sessions.get_signing_serializer(app)
    assert sessions.get_signing_serializer(app) is first
    cookie = first.dumps({"receipt": "R-1"})

    old_key = app.secret_key
    app.secret_key = "another-key-" + "x" * 32
    assert sessions.get_signing_serializer(app) is not first
    with pytest.raises(itsdangerous.BadSignature):  # signed with a key no longer in force
        sessions.get_signing_serializer(app).loads(cookie)
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]  # a key being rotated out is still accepted
    assert sessions.get_signing_serializer(app).loads(cookie) == {"receipt": "R-1"}


def test_session_cookies_are_those_stock_flask_signs_and_reads(app):
    from flask.sessions import SecureCookieSessionInterface

    ours, stock = app.session_interface.get_signing_serializer(app), \
        SecureCookieSessionInterface().get_signing_serializer(app)
    data = {"csrf_token": "a" * 40, "receipt": {"reference": "R-1", "code": None}}
    assert stock.loads(ours.dumps(data)) == data and ours.loads(stock.dumps(data)) == data
