"""The submission page's action forms keep what the staff member typed when the request is refused (a
missing or expired CSRF token), when the database cannot save, and when the form itself is not valid:
the page comes back with the text in the text area it was typed in and the reason, and nothing acts.

The database that cannot save is a real one: on SQLite another connection holds the write lock
(``BEGIN IMMEDIATE``) past the site's busy timeout; on PostgreSQL (when ``FEEDBACK_DATABASE_URL`` says so)
another connection holds a lock every audited write needs (``audit_head``) past a ``lock_timeout`` the
site's connections are given in their URL, as an operator would set it. The SQLite case runs in both
passes, on a SQLite database of its own when the run is against PostgreSQL.
"""
from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from feedback_app.app import create_app
from feedback_app.audit.refusals import count_refusal
from feedback_app.auth import logins
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.clocks import deadlines_on_acceptance
from feedback_app.core.database import make_engine, utcnow
from feedback_app.core.models import InternalNote, Reply, Submission
from feedback_app.core.text import CONTROL_CHARACTERS
from feedback_app.web import transaction
from tests.auth.helpers import create_staff, csrf_of, login
from tests.conftest import SEED, SEED_SLUG, fresh_database, make_settings
from tests.dbstate import changes, snapshot
from tests.factories import create_reply, create_web_submission

pytestmark = pytest.mark.timeout(120, method="thread")

TYPED = "第一行：请承办单位核实<第5项>&“进度”\n第二行：已电话联系反映人"
OLD_DRAFT = "旧的答复稿：经核查，第五项整改已按要求完成。"
NOT_SAVED = "系统暂时无法保存"
MISSING = "页面已过期：提交的内容缺少安全校验信息"
EXPIRED = "页面已过期：页面打开的时间太长，安全校验已失效。"

# action → (what is sent besides the version and the token, the id of the text area the text is typed in)
ACTIONS = {
    "reject": ({"reason": "no_substance", "note": TYPED}, "reject-note"),
    "note": ({"note": TYPED}, "note-body"),
    "extend": ({"days": "10", "reason": TYPED}, "extend-reason"),
    "reveal": ({"reason": TYPED}, "reveal-reason"),
    "draft_reply": ({"body": TYPED}, "reply-body"),
}
PG = os.environ.get("FEEDBACK_DATABASE_URL", "").startswith("postgresql")
DATABASES = ["sqlite", *(["postgresql"] if PG else [])]  # the run's own PostgreSQL too, when it has one


class Case:
    """The site with CSRF on, a reviewer logged in, and a reopened request (every action above is on
    its page) that has a draft reply."""

    def __init__(self, database_url: str, tmp_path: Path, **overrides) -> None:
        self.app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True, **overrides))
        self.engine = self.app.extensions["db_engine"]
        with self.app.extensions["db_sessionmaker"]() as s:
            bulletin = import_bulletin(s, SEED.read_text(encoding="utf-8"), SEED_SLUG).bulletin
            s.commit()
            reviewer = create_staff(s, username="shen.he", role="reviewer", totp=True)
            submission, _ = create_web_submission(
                s, self.app.extensions["settings"], bulletin=bulletin, kind="request", reply_by="letter",
                name="王小明", phone="+8613800138000", address="广州市黄埔区某路1号",
                body="申请公开第五项整改的验收材料。")
            submission.state = "reopened"
            submission.accepted_at = utcnow()
            deadlines_on_acceptance(s, self.app.extensions["settings"], submission)  # a clock to extend
            s.commit()
            create_reply(s, submission=submission, body=OLD_DRAFT, approved=False)
            self.reference = submission.reference
        self.client = self.app.test_client()
        assert login(self.client, reviewer.username).status_code == 303

    @property
    def path(self) -> str:
        return f"/staff/submissions/{self.reference}"

    def page(self) -> str:
        response = self.client.get(self.path)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def version(self, html: str) -> str:
        return re.search(r'name="version" value="(\d+)"', html).group(1)

    def post(self, action: str, data: dict[str, str]):
        return self.client.post(f"{self.path}/{action}", data=data)

    def close(self) -> None:
        self.engine.dispose()


def textarea(html: str, id_: str) -> str:
    """What the text area ``id_`` of the page holds, as the browser reads it."""
    found = re.search(rf'<textarea id="{id_}"[^>]*>(.*?)</textarea>', html, re.S)
    assert found, f"no text area {id_} on the page"
    return unescape(found.group(1))


def field_error(html: str, id_: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{id_}-error">(.*?)</p>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else None


def done_nothing(case: Case) -> None:
    """Beyond the snapshot: the action's own rows, by name."""
    with case.app.extensions["db_sessionmaker"]() as s:
        submission = s.scalar(select(Submission).where(Submission.reference == case.reference))
        assert submission.state == "reopened"
        assert s.scalars(select(InternalNote.body)).all() == []
        assert s.scalars(select(Reply.body)).all() == [OLD_DRAFT]


@pytest.fixture
def jobs_kept(monkeypatch):
    """What requests leave for after their responses (a login's "last seen", a refusal's count), kept
    instead of run: the snapshot is of what the request itself did."""
    left: list = []
    monkeypatch.setattr(transaction, "run_jobs", lambda _factory, jobs: left.extend(jobs))
    yield left
    assert {getattr(job, "func", job) for job in left} <= {logins.seen, logins.lapse, count_refusal}


@pytest.fixture
def case(database_url, tmp_path):
    c = Case(database_url, tmp_path)
    yield c
    c.close()


# ---------- a refused token ----------

@contextmanager
def hours_ago(monkeypatch, hours: int) -> Iterator[None]:
    """Tokens signed while this is open are signed as if ``hours`` ago: a page left open that long."""
    with monkeypatch.context() as m:
        real = TimestampSigner.get_timestamp
        m.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - hours * 3600)
        yield


@pytest.mark.parametrize("token", ["missing", "expired"])
@pytest.mark.parametrize("action", ACTIONS)
def test_a_refused_token_gives_the_form_back_as_typed_and_does_nothing(case, action, token, monkeypatch,
                                                                      jobs_kept):
    sent, area = ACTIONS[action]
    if token == "expired":
        with hours_ago(monkeypatch, 5):  # past the site's csrf_time_limit (4 h)
            html = case.page()
        data = {**csrf_of(html), "version": case.version(html), **sent}
        assert data["csrf_token"]
    else:
        html = case.page()
        data = {"version": case.version(html), **sent}
    before = snapshot(case.engine)
    response = case.post(action, data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400, html[:2000]
    assert textarea(html, area) == TYPED
    assert (MISSING if token == "missing" else EXPIRED) in html
    assert changes(before, snapshot(case.engine)) == {}
    done_nothing(case)
    # every other text area of the page is as after a GET
    for other, (_sent, other_area) in ACTIONS.items():
        if other != action:
            assert textarea(html, other_area) == (OLD_DRAFT if other == "draft_reply" else "")
    # and the page that came back posts, with its fresh token
    again = case.post(action, {**csrf_of(html), "version": case.version(html), **sent})
    assert again.status_code == 303, again.get_data(as_text=True)[:2000]


# ---------- a database that cannot save ----------

class SqliteWriter:
    """Another program holding the SQLite database's write lock (a command, a backup) until let go."""

    def __init__(self, database_url: str) -> None:
        self.conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=0)
        self.conn.execute("BEGIN IMMEDIATE")

    def let_go(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


class PostgresWriter:
    """Another session holding a lock that every audited write waits for (the audit chain's head), as a
    long transaction of a command or a maintenance job would; reading is not held up."""

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)
        self.conn = self.engine.connect()
        self.conn.execute(text("LOCK TABLE audit_head IN EXCLUSIVE MODE"))

    def let_go(self) -> None:
        self.conn.rollback()
        self.conn.close()
        self.engine.dispose()


LOCK_TIMEOUT_MS = 300


@pytest.fixture
def unsaving(request, db_template, sqlite_template, tmp_path):
    """(the site, a function that starts another writer holding it up) on the database asked for."""
    if request.param == "sqlite":
        (tmp_path / "sqlite").mkdir()
        url = fresh_database(sqlite_template, tmp_path / "sqlite")
        case = Case(url, tmp_path, database_busy_seconds=0.3)
        holder = SqliteWriter
    else:
        assert db_template[0] == "postgresql"
        url = fresh_database(db_template, tmp_path)
        # the wait for a lock bounded, as an operator sets it for the site's connections
        bounded = make_url(url).update_query_dict({"options": f"-c lock_timeout={LOCK_TIMEOUT_MS}"})
        case = Case(bounded.render_as_string(hide_password=False), tmp_path)
        holder = PostgresWriter
    yield case, lambda: holder(url)
    case.close()


@pytest.mark.parametrize("unsaving", DATABASES, indirect=True)
@pytest.mark.parametrize("action", ACTIONS)
def test_when_the_database_cannot_save_the_form_comes_back_as_typed_with_503(unsaving, action, jobs_kept):
    case, hold = unsaving
    sent, area = ACTIONS[action]
    html = case.page()
    data = {**csrf_of(html), "version": case.version(html), **sent}
    assert data.get("csrf_token")
    before = snapshot(case.engine)
    writer = hold()
    timer = threading.Timer(20, writer.let_go)  # a site that waits where it should answer fails, not hangs
    try:
        response = case.post(action, data)
    finally:
        timer.cancel()
        writer.let_go()
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[:2000]
    assert NOT_SAVED in html
    assert textarea(html, area) == TYPED
    assert response.headers.get("Retry-After")
    assert changes(before, snapshot(case.engine)) == {}
    done_nothing(case)
    # the lock gone, the page as it came back posts
    again = case.post(action, {**csrf_of(html), "version": case.version(html), **sent})
    assert again.status_code == 303, again.get_data(as_text=True)[:2000]


# ---------- a form that is not valid ----------

def test_a_form_that_is_not_valid_keeps_the_text_and_says_what_is_wrong_next_to_the_field(case, jobs_kept):
    html = case.page()
    typed = "备注里有一个控制字符\x01在这里"
    before = snapshot(case.engine)
    response = case.post("note", {**csrf_of(html), "version": case.version(html), "note": typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert textarea(html, "note-body") == typed.replace("\x01", "\ufffd")  # shown, to be deleted
    assert field_error(html, "note-body") == CONTROL_CHARACTERS
    assert 'aria-describedby="note-body-error" aria-invalid="true"' in html
    assert changes(before, snapshot(case.engine)) == {}

    response = case.post("extend", {**csrf_of(html), "version": case.version(html), "days": "十天", "reason": TYPED})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert textarea(html, "extend-reason") == TYPED
    assert field_error(html, "extend-days") == "请填写1至30之间的整数"
    assert field_error(html, "extend-reason") is None
    assert "延长天数：请填写1至30之间的整数" in html  # and at the top of the page
    assert changes(before, snapshot(case.engine)) == {}
    done_nothing(case)


def test_a_refusal_by_the_service_keeps_the_text(case, jobs_kept):
    """Already so before: an action the service refuses (a reject without a reason) keeps the note."""
    html = case.page()
    response = case.post("reject", {**csrf_of(html), "version": case.version(html), "reason": "", "note": TYPED})
    assert response.status_code == 400
    assert textarea(response.get_data(as_text=True), "reject-note") == TYPED
    done_nothing(case)
