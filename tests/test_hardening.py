"""Hardening: shared rate-limit counts under several workers, the origin of state-changing requests,
``__Host-`` cookies under https, the opener policy, and an incident number on the 500 page."""
from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select, update

from bench.server import HOST, free_port
from bench.wire import Client
from feedback_app.app import create_app
from feedback_app.auth.logins import SEEN_EVERY
from feedback_app.core.config import SettingsError
from feedback_app.core.models import StaffSession, Submission
from feedback_app.web import limits
from tests.auth.helpers import create_staff, csrf_of, login, logout
from tests.conftest import make_settings
from tests.dbstate import changes, snapshot
from tests.factories import FORM, form_fields, valid_data
from tests.intake.test_staff_intake import CALL_BODY, PHONE, hidden_fields, phone_data

ROOT = Path(__file__).resolve().parent.parent
APP = "feedback_app.app:create_app()"
REDIS = "redis://127.0.0.1:6379/7"
REASON = "无法确认提交来自本站页面，操作未执行。"  # what a form shown again says
REFUSED = REASON + "请返回本站页面重新提交。"  # the error page of a view that shows no form


# ---------- 1. several gunicorn workers need Redis for the rate limits ----------

def gunicorn_env(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FEEDBACK_", "GUNICORN_")) and k not in {"WEB_CONCURRENCY", "SERVER_SOFTWARE"}}
    env.update(FEEDBACK_ENV="production", FEEDBACK_SECRET_KEY=secrets.token_hex(32),
               FEEDBACK_INSTANCE_PATH=str(instance), FEEDBACK_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_gunicorn(args: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float = 40.0):
    """Start gunicorn and wait until it answers /healthz with 200 (returns True) or exits (returns False);
    it is stopped either way. The log holds everything it wrote."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}", *args, APP],
                                env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if Client(HOST, port, timeout=2).request("GET", "/healthz").status == 200:
                    return True
            except OSError:
                pass
            if proc.poll() is not None:
                return False
            time.sleep(0.1)
        raise AssertionError(f"gunicorn neither served nor stopped in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


REFUSALS = {
    "command line": (["--workers", "2"], {}, None),
    "GUNICORN_CMD_ARGS": ([], {"GUNICORN_CMD_ARGS": "--workers 2"}, None),
    "WEB_CONCURRENCY": ([], {"WEB_CONCURRENCY": "2"}, None),
    "config file": ([], {}, "workers = 2\n"),
    "preloaded": (["--workers", "2", "--preload"], {}, None),
}


@pytest.mark.parametrize("how", list(REFUSALS))
def test_several_workers_counting_in_memory_do_not_serve(how, database_url, tmp_path):
    args, extra, config = REFUSALS[how]
    cwd = tmp_path / "run"
    cwd.mkdir()
    if config is not None:  # gunicorn reads ./gunicorn.conf.py by itself
        (cwd / "gunicorn.conf.py").write_text(config)
    env = gunicorn_env(database_url, tmp_path / "instance", PYTHONPATH=str(ROOT), **extra)
    log = tmp_path / "gunicorn.log"
    served = run_gunicorn(args, env, cwd, log)
    output = log.read_text(errors="replace")
    assert not served, output[-3000:]
    assert "FEEDBACK_RATELIMIT_STORAGE_URI" in output and "Redis" in output, output[-3000:]
    assert "2 个工作进程" in output


@pytest.mark.parametrize("workers, storage", [(1, "memory://"), (2, REDIS)])
def test_one_worker_or_redis_serves(workers, storage, database_url, tmp_path):
    if storage.startswith("redis"):
        assert redis.Redis.from_url(storage, socket_connect_timeout=0.5).ping(), "needs Redis at 127.0.0.1:6379"
    env = gunicorn_env(database_url, tmp_path / "instance", FEEDBACK_RATELIMIT_STORAGE_URI=storage)
    log = tmp_path / "gunicorn.log"
    assert run_gunicorn(["--workers", str(workers)], env, ROOT, log), log.read_text(errors="replace")[-3000:]
    assert "FEEDBACK_RATELIMIT_STORAGE_URI" not in log.read_text(errors="replace")


def test_a_process_that_only_inherited_gunicorns_environment_is_not_gunicorn(database_url, tmp_path, monkeypatch):
    """A command started from a worker keeps SERVER_SOFTWARE; its command line is its own, not gunicorn's."""
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
    settings = make_settings(database_url, tmp_path, env="production", ratelimit_enabled=True)
    monkeypatch.setattr(sys, "argv", [str(ROOT / ".venv/bin/feedback-app"), "outbox", "send", "--workers", "2"])
    assert limits.gunicorn_workers() is None
    create_app(settings).extensions["db_engine"].dispose()
    # the same settings, as gunicorn's own command with two workers, are refused
    monkeypatch.setattr(sys, "argv", [str(ROOT / ".venv/bin/gunicorn"), "--workers", "2", APP])
    with pytest.raises(SettingsError, match="FEEDBACK_RATELIMIT_STORAGE_URI"):
        create_app(settings)


# ---------- 2. the origin of a state-changing request ----------

@pytest.fixture
def origin_app(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, public_url="https://jubao.example.gov.cn"))
    yield app
    app.extensions["db_engine"].dispose()


def comment(client, **headers):
    data = {**form_fields(client), **valid_data()}
    return client.post(FORM, data=data, content_type="multipart/form-data", headers=headers)


def submissions(app) -> int:
    with app.extensions["db_sessionmaker"]() as s:
        return s.scalar(select(func.count()).select_from(Submission))


@pytest.mark.parametrize("headers", [
    {},
    {"Origin": "http://localhost"},
    {"Origin": "http://LOCALHOST:80"},
    {"Origin": "https://jubao.example.gov.cn"},
    {"Referer": "http://localhost/bulletins/huangpu-2025-03-28/feedback?item=5"},
    {"Referer": "https://jubao.example.gov.cn/bulletins/x"},
], ids=["neither", "own", "own-default-port", "public-url", "own-referer", "public-url-referer"])
def test_a_comment_from_this_site_is_taken(origin_app, headers):
    response = comment(origin_app.test_client(), **headers)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert submissions(origin_app) == 1


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://localhost:8080"},
    {"Origin": "https://localhost"},
    {"Origin": "http://jubao.example.gov.cn"},
    {"Origin": "https://jubao.example.gov.cn.evil.example"},
    {"Origin": ""},
    {"Referer": "https://evil.example/page"},
    {"Referer": "about:blank"},
    {"Origin": "https://evil.example", "Referer": "http://localhost/"},
], ids=["other-site", "null", "other-port", "other-scheme", "public-host-other-scheme", "suffix", "empty",
        "other-referer", "referer-no-origin", "origin-wins"])
def test_a_comment_from_elsewhere_comes_back_as_typed_and_changes_nothing(origin_app, headers):
    """A host alias or a proxy set up wrong looks like another site: the comment is not taken, and not lost."""
    client = origin_app.test_client()
    data = {**form_fields(client), **valid_data(name="王先生")}
    before = snapshot(origin_app.extensions["db_engine"])
    response = client.post(FORM, data=data, content_type="multipart/form-data", headers=headers)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert REASON in html and REFUSED not in html  # the form's own notice, not the error page
    assert f'>{data["body"]}</textarea>' in html and 'value="王先生"' in html  # what was typed, in the form
    assert "Set-Cookie" not in response.headers  # not even the session moved
    assert submissions(origin_app) == 0
    assert set(changes(before, snapshot(origin_app.extensions["db_engine"]))) == {"refusal_count"}  # its count alone


def test_a_comment_refused_from_elsewhere_can_be_sent_from_the_site(origin_app):
    """The form shown again is a form of the site: sent from the site, with its tokens, it is taken."""
    client = origin_app.test_client()
    data = {**form_fields(client), **valid_data()}
    refused = client.post(FORM, data=data, content_type="multipart/form-data", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    again = client.post(FORM, data=data, content_type="multipart/form-data", headers={"Origin": "http://localhost"})
    assert again.status_code == 303 and submissions(origin_app) == 1


def test_a_staff_login_from_elsewhere_is_refused_before_anything_counts(database_url, tmp_path, bulletin, session):
    """The login form comes back with the name typed, never the password; no attempt is made, so none
    is audited or counted (the login limits count failed attempts alone)."""
    app = create_app(make_settings(database_url, tmp_path, ratelimit_enabled=True,
                                   ratelimit_login_account="1 per 5 minutes", ratelimit_login_client="1 per 5 minutes"))
    try:
        create_staff(session, username="deng.ji", role="clerk")
        client = app.test_client()
        page = client.get("/staff/login").get_data(as_text=True)
        before = snapshot(app.extensions["db_engine"])
        for password in ("wrong", "correct horse battery", "wrong again"):
            response = client.post("/staff/login", data={**csrf_of(page), "username": "deng.ji", "password": password},
                                   headers={"Origin": "https://evil.example"})
            html = response.get_data(as_text=True)
            assert response.status_code == 403 and REASON in html, html
            assert 'value="deng.ji"' in html and password not in html
        # no audit entry, no login: the refusals' count alone
        assert set(changes(before, snapshot(app.extensions["db_engine"]))) <= {"refusal_count"}
        assert login(client, "deng.ji").status_code in (302, 303)  # the same account, from the site, not throttled
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 1
    finally:
        app.extensions["db_engine"].dispose()


def test_a_clerks_intake_from_elsewhere_comes_back_as_typed_and_stores_nothing(origin_app, session):
    create_staff(session, username="deng.ji", role="clerk")
    client = origin_app.test_client()
    assert login(client, "deng.ji").status_code in (302, 303)
    html = client.get(PHONE).get_data(as_text=True)
    taken_by = re.search(r'<select id="taken_by" name="taken_by"[^>]*>\s*<option value="(\d+)"', html).group(1)
    data = {**hidden_fields(html), **phone_data(origin_app.extensions["settings"]), "taken_by": taken_by}
    before = snapshot(origin_app.extensions["db_engine"])
    response = client.post(PHONE, data=data, content_type="multipart/form-data",
                           headers={"Origin": "https://evil.example"})
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and REASON in html and REFUSED not in html
    assert f">{CALL_BODY}</textarea>" in html and 'value="138 0013 8000"' in html  # the clerk's form, as typed
    assert submissions(origin_app) == 0
    assert set(changes(before, snapshot(origin_app.extensions["db_engine"]))) <= {"refusal_count"}
    assert client.get("/staff/").status_code == 200  # still logged in


@pytest.fixture
def logged_in_with_csrf(database_url, tmp_path, bulletin, session):
    """A clerk logged in on an app with CSRF on, whose "last seen" is due to be written again."""
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        create_staff(session, username="deng.ji", role="clerk")
        client = app.test_client()
        assert login(client, "deng.ji").status_code in (302, 303)
        row = session.scalars(select(StaffSession)).one()
        session.execute(update(StaffSession).values(last_seen_at=row.last_seen_at - 2 * SEEN_EVERY))
        session.commit()
        yield app, client
    finally:
        app.extensions["db_engine"].dispose()


def test_a_refused_request_to_a_view_without_a_form_reaches_no_other_hook(logged_in_with_csrf):
    """A view that does not show its form again (an audited download) is answered by the first hook:
    before the CSRF token (its own answer is a 400) and before the staff login is read (which would record
    "last seen" after the response)."""
    app, client = logged_in_with_csrf
    before = snapshot(app.extensions["db_engine"])
    response = client.post("/staff/ledger/export.csv", data={}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and REFUSED in response.get_data(as_text=True)  # the error page
    assert set(changes(before, snapshot(app.extensions["db_engine"]))) <= {"refusal_count"}
    assert client.get("/staff/").status_code == 200  # still logged in


def test_a_refused_request_to_a_view_with_a_form_shows_it_and_acts_on_nothing(logged_in_with_csrf, session):
    """Logging out from elsewhere: the page comes back saying why (the origin, not the missing token),
    and the login stays. The page needs to know who is asking, so the login behind the cookie is read;
    its "last seen", when due, is what is written besides the refusal's count."""
    app, client = logged_in_with_csrf
    seen = session.scalars(select(StaffSession)).one().last_seen_at
    session.rollback()  # read again below, after the request
    before = snapshot(app.extensions["db_engine"])
    response = client.post("/staff/logout", data={}, headers={"Origin": "https://evil.example"})
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and REASON in html and REFUSED not in html and "页面已过期" not in html
    assert set(changes(before, snapshot(app.extensions["db_engine"]))) <= {"refusal_count", "staff_session"}
    row = session.scalars(select(StaffSession)).one()
    assert row.ended_at is None and row.last_seen_at > seen  # the login stays; "last seen" is written
    assert client.get("/staff/").status_code == 200  # still logged in


def test_every_state_changing_method_is_checked_and_reading_is_not(origin_app):
    client = origin_app.test_client()
    evil = {"Origin": "https://evil.example"}
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.open("/track", method=method).status_code == 405  # no such route: routing answers
        assert client.open("/track", method=method, headers=evil).status_code == 403
    assert client.get("/track", headers=evil).status_code == 200


def test_behind_the_proxy_the_forwarded_address_is_this_site(database_url, tmp_path, bulletin):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "xunzha.example.cn",
                 "X-Forwarded-For": "203.0.113.9"}
    for proxies, expected in ((1, 303), (0, 403)):  # without ProxyFix the request came to http://localhost
        app = create_app(make_settings(database_url, tmp_path, proxy_count=proxies))
        try:
            client = app.test_client()
            response = comment(client, Origin="https://xunzha.example.cn", **forwarded)
            assert response.status_code == expected
        finally:
            app.extensions["db_engine"].dispose()


# ---------- 3. __Host- cookies under https ----------

def record_set_cookies(app) -> list[str]:
    """Every Set-Cookie header the app sends, whichever hook set it."""
    seen: list[str] = []
    inner = app.wsgi_app

    def wsgi(environ, start_response):
        def start(status, headers, exc_info=None):
            seen.extend(value for name, value in headers if name.lower() == "set-cookie")
            return start_response(status, headers, exc_info)
        return inner(environ, start)

    app.wsgi_app = wsgi
    return seen


def parse_cookie(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = (part.strip() for part in header.split(";"))
    attrs = {}
    for part in rest:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return first.partition("=")[0], attrs


def cookie_journey(app, session) -> list[tuple[str, dict[str, str]]]:
    """A comment, a look-up, and a staff login and logout; every cookie set on the way."""
    seen = record_set_cookies(app)
    create_staff(session, username="deng.ji", role="clerk")
    client = app.test_client()
    assert comment(client).status_code == 303
    html = client.get("/receipt").get_data(as_text=True)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    code = re.search(r'id="query-code">([^<]+)<', html).group(1)
    page = client.get("/track").get_data(as_text=True)
    assert client.post("/track", data={**csrf_of(page), "reference": reference, "query_code": code}).status_code == 303
    assert login(client, "deng.ji").status_code in (302, 303)
    assert client.get("/staff/").status_code == 200  # the staff cookie comes back under its name
    assert logout(client).status_code in (302, 303)
    assert client.get("/staff/").status_code == 302  # and is gone
    return [parse_cookie(h) for h in seen]


def test_under_https_every_cookie_is_a_host_cookie(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, public_url="https://jubao.example.gov.cn",
                                   csrf_enabled=True))
    app.config["PREFERRED_URL_SCHEME"] = "https"  # the test client's requests come in over https
    try:
        cookies = cookie_journey(app, session)
    finally:
        app.extensions["db_engine"].dispose()
    assert {name for name, _ in cookies} == {"__Host-fb_session", "__Host-staff_session"}
    for name, attrs in cookies:
        assert "secure" in attrs and attrs.get("path") == "/" and "domain" not in attrs, (name, attrs)


def test_under_http_the_cookies_keep_their_names(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        cookies = cookie_journey(app, session)
    finally:
        app.extensions["db_engine"].dispose()
    assert {name for name, _ in cookies} == {"fb_session", "staff_session"}
    assert {attrs.get("path") for name, attrs in cookies if name == "staff_session"} == {"/staff"}
    assert all("secure" not in attrs for _, attrs in cookies)


# ---------- 4. the opener policy ----------

def test_every_response_isolates_its_window(client, bulletin):
    for response in (client.get("/"), client.get("/no-such-page"), client.get("/static/css/site.css"),
                     client.post("/track", data={}), client.get("/staff/")):
        assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", response


# ---------- 5. an incident number on the 500 page and in its log line ----------

def test_an_unexpected_error_names_one_incident_on_the_page_and_in_the_log(app, caplog):
    def boom():
        raise RuntimeError("13800138000 张三")

    app.add_url_rule("/boom", "boom", boom, methods=["GET", "POST"])
    client = app.test_client()
    caplog.set_level(logging.ERROR, logger="feedback_app")
    numbers = []
    for _ in range(2):
        caplog.clear()
        response = client.post("/boom?phone=13800138000", data={"name": "张三"})
        assert response.status_code == 500
        html = response.get_data(as_text=True)
        match = re.search(r"事件编号：([0-9A-F]{8})（如需咨询，请告知此编号）", html)
        assert match, html
        lines = [r.getMessage() for r in caplog.records if r.name == "feedback_app"]
        assert lines == [f"unhandled RuntimeError on POST /boom (incident {match.group(1)})"]
        numbers.append(match.group(1))
    assert numbers[0] != numbers[1]


def test_other_error_pages_carry_no_incident_number(client):
    assert "事件编号" not in client.get("/no-such-page").get_data(as_text=True)
