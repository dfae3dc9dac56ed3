"""SQLite: new comment texts wait in a short list, reach the search indexes in batches, and are found
all along; changes and deletes keep both indexes exact.

The backlog is SQLite's alone (PostgreSQL's indexes take each text as it is stored), so these tests
run on a SQLite database in the PostgreSQL pass too."""
from __future__ import annotations

import importlib
import logging
import random

import pytest
from sqlalchemy import delete, select, text, update

from feedback_app.core.models import Submission
from feedback_app.search import backlog as search_backlog
from feedback_app.search.backlog import PENDING, bigram_tokens, index_backlog
from feedback_app.search.match import LOOKUP, PROBE, WALK, fts_phrase, search_clause
from tests.conftest import fresh_database, make_settings
from tests.factories import create_web_submission, submit


@pytest.fixture
def database_url(sqlite_template, tmp_path):
    return fresh_database(sqlite_template, tmp_path)


@pytest.fixture
def sqlite(session):
    assert session.get_bind().dialect.name == "sqlite"


@pytest.fixture
def make(session, settings, bulletin):
    def make(body: str) -> int:
        return create_web_submission(session, settings, bulletin=bulletin, body=body)[0].id

    return make


def pending(session) -> set[int]:
    return set(session.scalars(text(f"SELECT id FROM {PENDING}")))


def in_index(session, q: str) -> set[int]:
    """What the index itself holds: the trigram index for three characters or more, else the pairs."""
    if len(q) >= 3:
        sql, param = "SELECT rowid FROM submission_fts WHERE submission_fts MATCH :q", fts_phrase(q)
    else:
        token = bigram_tokens(q).split()[0]  # the first pair: q itself
        sql, param = "SELECT rowid FROM submission_bigram WHERE submission_bigram MATCH :q", f'"{token}"'
    return set(session.scalars(text(sql), {"q": param}))


def found(session, q: str, plan: str) -> set[int]:
    return set(session.scalars(select(Submission.id).where(search_clause("sqlite", q, plan))))


def integrity_check(session) -> None:
    for fts in ("submission_fts", "submission_bigram"):
        session.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))


def _sql_pairs():
    return importlib.import_module("feedback_app.migrations.versions.0008_short_query_search").sqlite_bigrams


def test_the_pairs_computed_in_python_are_those_of_the_migrations_sql(sqlite, session):
    """The index is fed Python's tokens and emptied with SQL's: they must agree token for token."""
    rng = random.Random(20251128)
    pool = "营商环境整改ABCxyz019 ，。！?\n\tÀÉéＡａ😀𠀀-_%\"'"
    samples = ["", "a", "AB", "营", "营商环境", "Ab营C", "😀表情😀", "全角ＡＢＣ与ASCII", "x" * 256, "商" * 257, "前\0后",
               "".join(rng.choice(pool) for _ in range(600)), "".join(rng.choice(pool) for _ in range(1030))]
    sql = text(f"SELECT {_sql_pairs()(':t')}")
    for sample in samples:
        assert bigram_tokens(sample) == session.scalar(sql, {"t": sample}), sample[:40]


def test_a_new_text_is_found_while_pending_and_once_indexed(sqlite, session, make, monkeypatch):
    monkeypatch.setattr(search_backlog, "BATCH", 3)
    first = make("建议进一步优化营商环境，减少对企业经营的干扰。")
    second = make("营商环境还有改进空间，abc 与 ABC 同样。")
    assert pending(session) == {first, second}
    assert in_index(session, "营商环境") == set() and in_index(session, "营商") == set()
    for plan in (WALK, LOOKUP, PROBE):
        assert found(session, "营商环境", plan) == {first, second}
        assert found(session, "营商", plan) == {first, second}  # two characters: the pairs' side
        assert found(session, "扰", plan) == {first}
        assert found(session, "Abc", plan) == {second}  # Latin letters in either case, as indexed
        assert found(session, "营商环境好", plan) == set()

    third = make("第三条：营商环境。")  # the third id is a batch's: the factory runs its job, as a request does
    assert third % 3 == 0 and pending(session) == set()
    assert in_index(session, "营商环境") == {first, second, third}
    assert in_index(session, "营商") == {first, second, third}
    assert in_index(session, "ab") == {second}
    for plan in (WALK, LOOKUP, PROBE):
        assert found(session, "营商环境", plan) == {first, second, third}
    integrity_check(session)


def test_changes_and_deletes_keep_both_indexes_exact(sqlite, session, make, monkeypatch):
    monkeypatch.setattr(search_backlog, "BATCH", 10**9)
    indexed, waiting, doomed = make("原文提到了违规收费。"), make("尚未索引的乱摊派。"), make("将被删除的乱罚款。")
    index_backlog(session)
    session.commit()
    later = make("尚在等待的乱检查。")
    assert pending(session) == {later}

    session.execute(update(Submission).where(Submission.id == indexed).values(body="更正后的内容：乱收费。"))
    session.execute(update(Submission).where(Submission.id == later).values(body="更正后的等待：乱评比。"))
    session.execute(delete(Submission).where(Submission.id == doomed))
    session.commit()
    assert pending(session) == {indexed, later}  # a changed text waits to be indexed again
    assert in_index(session, "违规收费") == set() and in_index(session, "违规") == set()  # its old text is gone
    assert in_index(session, "乱罚款") == set() and in_index(session, "罚款") == set()
    assert in_index(session, "乱摊派") == {waiting}
    for plan in (WALK, LOOKUP, PROBE):
        assert found(session, "违规收费", plan) == set()
        assert found(session, "乱收费", plan) == {indexed}
        assert found(session, "乱检查", plan) == set() and found(session, "乱评比", plan) == {later}
        assert found(session, "罚款", plan) == set()

    session.execute(delete(Submission).where(Submission.id == later))
    session.commit()
    assert pending(session) == {indexed}
    assert index_backlog(session) == 1
    session.commit()
    assert in_index(session, "乱收费") == {indexed} and in_index(session, "评比") == set()
    integrity_check(session)


def test_every_batch_th_comment_indexes_the_backlog_once_its_response_has_gone(sqlite, client, session, bulletin,
                                                                               monkeypatch):
    monkeypatch.setattr(search_backlog, "BATCH", 2)
    first = submit(client, body="第一条：建议规范涉企检查的频次。")
    assert first.status_code == 303
    first.close()
    second = submit(client, body="第二条：建议规范涉企检查的时间。", buffered=False)
    assert second.status_code == 303
    assert len(pending(session)) == 2  # the job waits for the response to be sent (and closed)
    session.rollback()
    second.close()
    assert pending(session) == set()
    assert len(in_index(session, "规范涉企检查")) == 2
    integrity_check(session)


def test_a_failing_batch_loses_nothing_and_the_next_one_catches_up(sqlite, client, session, bulletin, monkeypatch,
                                                                   caplog):
    monkeypatch.setattr(search_backlog, "BATCH", 2)

    def broken(_session):
        raise RuntimeError("disk full")

    monkeypatch.setattr(search_backlog, "index_backlog", broken)
    for n in range(2):
        response = submit(client, body=f"第{n}条：建议公开整改台账。", buffered=False)
        assert response.status_code == 303
        with caplog.at_level(logging.ERROR, logger="feedback_app.core.database"):
            response.close()
    assert "a job after a commit failed" in caplog.text
    session.rollback()
    assert len(pending(session)) == 2
    assert len(found(session, "公开整改台账", WALK)) == 2  # found all the same

    monkeypatch.undo()
    monkeypatch.setattr(search_backlog, "BATCH", 2)
    for n in range(2, 4):
        submit(client, body=f"第{n}条：建议公开整改台账。").close()
    session.rollback()
    assert pending(session) == set()
    assert len(in_index(session, "公开整改台账")) == 4


def test_the_pending_texts_are_read_by_id_never_by_scanning_the_table(sqlite, session):
    from sqlalchemy.dialects import sqlite as dialect

    from feedback_app.search.match import pending_matches

    sql = str(pending_matches("营商环境").compile(dialect=dialect.dialect(), compile_kwargs={"literal_binds": True}))
    plan = " | ".join(row[3] for row in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "SCAN pending_text" not in plan and "SEARCH pending_text USING INTEGER PRIMARY KEY" in plan, plan


def test_the_command_line_mail_import_indexes_the_backlog_when_a_batch_is_due(sqlite, database_url, tmp_path,
                                                                               session, bulletin, monkeypatch):
    from feedback_app.app import create_app
    from feedback_app.mailbox.importer import import_paths
    from tests.mail.corpus import INGESTED, OVERSIZE_LIMIT, write_eml

    settings = make_settings(database_url, tmp_path, mail_max_bytes=OVERSIZE_LIMIT)
    app = create_app(settings)
    monkeypatch.setattr(search_backlog, "BATCH", 1)  # every submission's commit leaves the job
    with app.app_context():
        report = import_paths(app.extensions["db_sessionmaker"], settings, write_eml(tmp_path / "eml"))
    app.extensions["db_engine"].dispose()
    assert report.ingested == len(INGESTED)
    session.rollback()
    assert pending(session) == set()
    # the trigram index keeps one size row per text it holds: every submission's
    assert session.scalar(text("SELECT count(*) FROM submission_fts_docsize")) == len(INGESTED)
    integrity_check(session)


def test_one_job_indexes_at_most_its_share_oldest_first(sqlite, session, make, monkeypatch):
    monkeypatch.setattr(search_backlog, "BATCH", 10**9)
    ids = [make(f"第{n}条：关于整改台账的意见。") for n in range(5)]
    assert index_backlog(session, most=3) == 3
    session.commit()
    assert pending(session) == set(ids[3:])
    assert index_backlog(session) == 2
    session.commit()
    assert pending(session) == set()
    integrity_check(session)


def test_healthz_raises_an_alarm_when_the_batches_no_longer_keep_up(sqlite, client, session, make, monkeypatch):
    monkeypatch.setattr(search_backlog, "BATCH", 10**9)  # as if every batch failed
    for n in range(9):
        make(f"第{n}条：建议公开整改台账。")
    assert client.get("/healthz").get_json()["alarms"] == []
    monkeypatch.setattr(search_backlog, "BATCH", 2)  # 9 texts waiting: more than 4 batches' worth
    alarms = client.get("/healthz").get_json()["alarms"]
    assert len(alarms) == 1 and "9 条新意见尚未编入索引" in alarms[0]
    index_backlog(session)
    session.commit()
    assert client.get("/healthz").get_json()["alarms"] == []
