"""Failed logins are limited per account and per client; successful ones are not counted."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pyotp
import pytest
import redis

from feedback_app.app import create_app
from tests.auth.helpers import PASSWORD, create_staff, login
from tests.conftest import make_settings

REDIS = "redis://127.0.0.1:6379/0"


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def attempt(client, username: str, password: str, addr: str = "10.1.1.1"):
    return client.post("/staff/login", data={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": addr})


@pytest.fixture
def limited_app(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, ratelimit_enabled=True,
                             ratelimit_login_account="3 per 5 minutes", ratelimit_login_client="6 per 5 minutes")
    app = create_app(settings)
    yield app
    app.extensions["db_engine"].dispose()


def test_a_throttled_account_does_not_lock_out_colleagues(limited_app, session):
    create_staff(session, username="zhang.san", role="clerk")
    create_staff(session, username="li.si", role="clerk")
    client = limited_app.test_client()
    for _ in range(3):
        assert attempt(client, "zhang.san", "wrong password!!").status_code == 400
    throttled = attempt(client, "zhang.san", PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    html = throttled.get_data(as_text=True)
    assert "尝试次数过多，请 5 分钟后再试" in html
    assert 'name="username" value="zhang.san"' in html and PASSWORD not in html
    assert attempt(client, "ZHANG.SAN", PASSWORD).status_code == 429  # the same account in other case
    ok = attempt(client, "li.si", PASSWORD)  # a colleague behind the same address
    assert ok.status_code == 303 and path_of(ok) == "/staff/"


def test_unknown_accounts_are_throttled_like_known_ones(limited_app, session):
    client = limited_app.test_client()
    for _ in range(3):
        attempt(client, "no.such.user", "wrong password!!")
    assert attempt(client, "no.such.user", "wrong password!!").status_code == 429


def test_successful_logins_are_not_counted(limited_app, session):
    create_staff(session, username="li.si", role="clerk")
    for _ in range(8):
        response = attempt(limited_app.test_client(), "li.si", PASSWORD)
        assert response.status_code == 303


def test_the_per_client_limit_applies_across_accounts(limited_app, session):
    create_staff(session, username="li.si", role="clerk")
    client = limited_app.test_client()
    for name in ("a.one", "a.two", "a.three", "a.four", "a.five", "a.six"):
        assert attempt(client, name, "wrong password!!").status_code == 400
    blocked = attempt(client, "li.si", PASSWORD)
    assert blocked.status_code == 429 and "尝试次数过多" in blocked.get_data(as_text=True)
    other_office = attempt(limited_app.test_client(), "li.si", PASSWORD, addr="10.2.2.2")
    assert other_office.status_code == 303


def test_wrong_codes_count_against_the_account(limited_app, session):
    user = create_staff(session, username="li.shenhe", role="reviewer", totp=True)
    client = limited_app.test_client()
    assert path_of(attempt(client, "li.shenhe", PASSWORD)) == "/staff/2fa"
    right = pyotp.TOTP(user.totp_secret).now()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(3):
        r = client.post("/staff/2fa", data={"code": wrong}, environ_base={"REMOTE_ADDR": "10.1.1.1"})
        assert r.status_code == 400
    r = client.post("/staff/2fa", data={"code": right}, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert r.status_code == 429
    assert "尝试次数过多" in r.get_data(as_text=True)
    assert 'name="code"' in r.get_data(as_text=True)


def test_wrong_current_password_counts_on_the_password_page(limited_app, session):
    create_staff(session, username="zhang.san", role="clerk")
    client = limited_app.test_client()
    login(client, "zhang.san")
    data = {"current_password": "wrong password!!", "new_password": "a brand new password",
            "new_password_confirm": "a brand new password"}
    for _ in range(3):
        assert client.post("/staff/password", data=data).status_code == 400
    r = client.post("/staff/password", data={**data, "current_password": PASSWORD})
    assert r.status_code == 429 and "尝试次数过多" in r.get_data(as_text=True)


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_limits_are_shared_between_workers_through_redis(database_url, tmp_path, session):
    """Two app instances (as two gunicorn workers) count the same failures."""
    assert _redis_available(), "this test needs the Redis server at 127.0.0.1:6379"
    tag = uuid.uuid4().hex[:8]
    name, addr = f"shared.{tag}", f"10.9.{int(tag[:2], 16)}.{int(tag[2:4], 16)}"
    settings = make_settings(database_url, tmp_path, ratelimit_enabled=True, ratelimit_storage_uri=REDIS,
                             ratelimit_login_account="3 per 5 minutes", ratelimit_login_client="50 per 5 minutes")
    apps = [create_app(settings), create_app(settings)]
    try:
        create_staff(session, username=name, role="clerk")
        for i in range(3):
            assert attempt(apps[i % 2].test_client(), name, "wrong password!!", addr).status_code == 400
        assert attempt(apps[1].test_client(), name, PASSWORD, addr).status_code == 429
        assert attempt(apps[0].test_client(), name, PASSWORD, addr).status_code == 429
    finally:
        for app in apps:
            app.extensions["db_engine"].dispose()
        r = redis.Redis.from_url(REDIS)
        for key in r.scan_iter(f"*{tag}*"):
            r.delete(key)
        for key in r.scan_iter(f"*{addr}*"):
            r.delete(key)


def test_the_password_page_of_a_throttled_address_answers_a_visitor_without_resetting_the_limits(limited_app,
                                                                                                  session):
    """Limits are checked before a page's own gate: a visitor who is not logged in, posting to the password
    page from a throttled address, is sent to the login page, and the address stays throttled (an error
    there would make the limiter fall back to a fresh store and forget every count)."""
    create_staff(session, username="zhang.san", role="clerk")
    client = limited_app.test_client()
    for n in range(6):  # the per-client limit, spread over accounts
        attempt(client, f"no.such.{n}", "wrong password!!")
    assert attempt(client, "zhang.san", PASSWORD).status_code == 429
    visitor = client.post("/staff/password", data={"current_password": "x"}, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert visitor.status_code == 302 and path_of(visitor) == "/staff/login"
    assert attempt(client, "zhang.san", PASSWORD).status_code == 429  # still throttled
