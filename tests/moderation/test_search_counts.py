"""A search's per-state counts give way when they would hold the queue page up; the page never does."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from feedback_app.app import create_app
from feedback_app.core.database import within_budget
from feedback_app.moderation import queue
from tests.auth.helpers import client_as, create_staff
from tests.conftest import make_settings
from tests.factories import create_web_submission

pytestmark = pytest.mark.timeout(60)

SLOW = {  # seconds of work for each database, were it not cut short
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) "
              "SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(20)",
}
NAV = re.compile(r'<nav aria-label="按状态".*?</nav>', re.S)


def tab_counts(page: str) -> list[str]:
    return re.findall(r"（(\d+)）", NAV.search(page).group(0))


def slow_statement(session) -> str:
    return SLOW[session.get_bind().dialect.name]


def test_a_quick_answer_is_returned(session):
    assert within_budget(session, 2000, lambda: session.scalar(text("SELECT 41 + 1"))) == 42


def test_a_slow_one_gives_way_and_the_transaction_goes_on(session):
    assert within_budget(session, 50, lambda: session.scalar(text(slow_statement(session)))) is None
    assert session.scalar(text("SELECT 7")) == 7  # the same transaction is still usable
    session.commit()
    # and the limit is gone once the budget is over: a statement after it may take its time
    assert session.scalar(text("SELECT count(*) FROM (SELECT 1 UNION ALL SELECT 2) AS t")) == 2


def test_other_errors_are_not_swallowed(session):
    with pytest.raises(SQLAlchemyError):
        within_budget(session, 2000, lambda: session.execute(text("SELECT no_such_column FROM bulletin")))


@pytest.fixture
def searched(database_url, tmp_path, session, bulletin):
    def client(**overrides):
        app = create_app(make_settings(database_url, tmp_path, **overrides))
        reviewer = client_as(app, create_staff(app.extensions["db_sessionmaker"](), username=f"shen{len(overrides)}",
                                               role="reviewer", totp=True))
        found = reviewer.post("/staff/search", data={"q": "宿舍"})
        return reviewer.get(found.headers["Location"]).get_data(as_text=True)

    for body in ("反映员工宿舍不足的问题，请尽快解决。", "员工宿舍周边道路照明不足。", "建议增加公交线路班次。"):
        create_web_submission(session, make_settings(database_url, tmp_path), bulletin=bulletin, body=body)
    return client


def test_a_search_shows_its_counts_when_they_come_quickly(searched):
    page = searched()
    assert tab_counts(page)[0] == "2" and 'id="counts-omitted"' not in page  # 全部（2）, then each state


def test_counts_that_would_hold_the_page_up_are_left_out_with_a_note(searched, monkeypatch):
    counted = queue.counts

    def slow_counts(session, *args):
        session.execute(text(slow_statement(session)))
        return counted(session, *args)

    monkeypatch.setattr(queue, "counts", slow_counts)
    page = searched(search_count_ms=100)
    assert 'id="counts-omitted"' in page and tab_counts(page) == []
    assert page.count("员工宿舍") == 2 and "公交线路" not in page  # the results are all there
    assert ">全部</a>" in NAV.search(page).group(0)  # the tabs still lead somewhere
