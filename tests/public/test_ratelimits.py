"""Per-client limits on the citizen's POSTs, counted in one place for all workers when Redis is configured."""
from __future__ import annotations

import ipaddress
import re
import secrets
from html import unescape

import pytest
import redis
from sqlalchemy import func, select

from feedback_app.app import create_app
from feedback_app.core.models import Submission
from tests.conftest import SEED_SLUG, make_settings
from tests.factories import FORM, form_fields, valid_data

TRACK = "/track"
REDIS_URL = "redis://127.0.0.1:6379/7"  # a database number of these tests' own


def make_app(database_url, tmp_path, **overrides):
    return create_app(make_settings(database_url, tmp_path, **overrides))


@pytest.fixture
def apps():
    """Apps made by a test, disposed after it."""
    made = []
    yield made
    for app in made:
        app.extensions["db_engine"].dispose()


def addresses(count: int) -> list[str]:
    """Client addresses no other run uses at the same time (the Redis count is shared by everyone)."""
    base = int(ipaddress.IPv4Address("10.0.0.0")) + secrets.randbelow(2**24 - 256) // 256 * 256
    return [str(ipaddress.IPv4Address(base + 1 + i)) for i in range(count)]


def post_feedback(client, body: str, addr: str):
    data = {**form_fields(client), **valid_data(body=body)}
    return client.post(FORM, data=data, content_type="multipart/form-data", environ_base={"REMOTE_ADDR": addr})


def post_track(client, addr: str, reference="HP2026-000001", code="0000-0000-0000-0000"):
    return client.post(TRACK, data={"reference": reference, "query_code": code}, environ_base={"REMOTE_ADDR": addr})


def text_of(html: str) -> str:
    main = re.search(r"<main\b[^>]*>(.*?)</main>", html, re.S).group(1)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", main)).split())


def count_submissions(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Submission))


def test_third_feedback_post_is_refused_and_keeps_what_was_typed(database_url, tmp_path, session, bulletin, apps):
    app = make_app(database_url, tmp_path, ratelimit_enabled=True, ratelimit_submit="2 per minute")
    apps.append(app)
    client = app.test_client()
    [addr, other] = addresses(2)
    bodies = [f"第{n}条意见：建议涉企会议提前三天通知企业，避免临时召集。" for n in (1, 2, 3)]

    assert post_feedback(client, bodies[0], addr).status_code == 303
    assert post_feedback(client, bodies[1], addr).status_code == 303
    response = post_feedback(client, bodies[2], addr)

    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "提交过于频繁，请稍后再提交。您填写的内容已保留。" in text_of(html)
    assert re.search(rf'<textarea id="body" name="body"[^>]*>{re.escape(bodies[2])}</textarea>', html)
    assert re.search(r'<option value="5" selected>', html)  # the chosen item is kept as well
    assert 'name="form_token" value="' in html and 'name="form_token" value=""' not in html
    assert response.headers["Cache-Control"] == "no-store"
    session.rollback()
    stored = session.scalars(select(Submission.body).order_by(Submission.id)).all()
    assert stored == bodies[:2]

    # Another client is counted on its own.
    assert post_feedback(client, bodies[2], other).status_code == 303
    assert count_submissions(session) == 3


def test_fourth_track_post_is_refused_in_chinese(database_url, tmp_path, session, bulletin, apps):
    from tests.factories import create_web_submission

    app = make_app(database_url, tmp_path, ratelimit_enabled=True, ratelimit_track="3 per minute")
    apps.append(app)
    submission, code = create_web_submission(session, app.extensions["settings"], bulletin=bulletin)
    client = app.test_client()
    [addr, other] = addresses(2)

    for _ in range(3):
        assert post_track(client, addr, submission.reference).status_code == 400
    response = post_track(client, addr, submission.reference, code)  # even the right code: no more guesses

    assert response.status_code == 429
    assert client.get("/track/status").status_code == 302
    # The form itself is still shown, and another address may still look up.
    assert client.get(TRACK, environ_base={"REMOTE_ADDR": addr}).status_code == 200
    assert post_track(client, other, submission.reference, code).status_code == 303
    # The refusal is the query form again (views._track_rate_limited), with its own message.
    html = response.get_data(as_text=True)
    assert "查询过于频繁，请稍后再试。" in text_of(html)
    assert 'id="query_code" name="query_code"' in html
    assert response.headers["Cache-Control"] == "no-store"


def test_disabled_limits_let_every_post_through(database_url, tmp_path, session, bulletin, apps):
    app = make_app(database_url, tmp_path, ratelimit_enabled=False, ratelimit_submit="2 per minute",
                   ratelimit_track="3 per minute")
    apps.append(app)
    client = app.test_client()
    [addr] = addresses(1)

    for n in range(10):
        response = post_feedback(client, f"第{n}条不同的意见：请核实涉企检查的频次。", addr)
        assert response.status_code == 303, n
    assert count_submissions(session) == 10
    assert [post_track(client, addr).status_code for _ in range(10)] == [400] * 10


@pytest.fixture
def shared_redis():
    """The Redis database the limits are kept in; the keys of this test's addresses removed after."""
    r = redis.Redis.from_url(REDIS_URL)
    r.ping()
    used: list[str] = []
    yield r, used
    for addr in used:
        for key in r.scan_iter(match=f"*{addr}*"):
            r.delete(key)
    r.close()


def test_two_workers_share_one_count_in_redis(database_url, tmp_path, session, bulletin, apps, shared_redis):
    r, used = shared_redis
    overrides = dict(ratelimit_enabled=True, ratelimit_storage_uri=REDIS_URL, ratelimit_track="3 per minute")
    worker1 = make_app(database_url, tmp_path, **overrides)
    worker2 = make_app(database_url, tmp_path, **overrides)
    apps += [worker1, worker2]
    one, two = worker1.test_client(), worker2.test_client()
    [addr, other] = addresses(2)
    used += [addr, other]
    assert not list(r.scan_iter(match=f"*{addr}*"))

    assert post_track(one, addr).status_code == 400
    assert post_track(two, addr).status_code == 400
    assert post_track(one, addr).status_code == 400
    assert list(r.scan_iter(match=f"*{addr}*")), "the count is not kept in Redis"
    # Three POSTs in all, spread over both workers: the fourth is refused by either.
    assert post_track(two, addr).status_code == 429
    assert post_track(one, addr).status_code == 429
    # A different address has a count of its own.
    assert post_track(one, other).status_code == 400
    assert post_track(two, other).status_code == 400



def test_a_client_over_the_limit_posting_to_no_bulletin_gets_not_found(database_url, tmp_path, bulletin, apps):
    app = make_app(database_url, tmp_path, ratelimit_enabled=True, ratelimit_submit="1 per minute")
    apps.append(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    [addr] = addresses(1)
    assert post_feedback(client, "建议涉企会议提前三天通知企业，避免临时召集。", addr).status_code == 303
    response = client.post(FORM.replace(SEED_SLUG, "no-such-bulletin"), data=valid_data(),
                           environ_base={"REMOTE_ADDR": addr})
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)
