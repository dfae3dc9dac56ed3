"""PreparedStatement statements store and read exactly what SQLAlchemy would, and fail as it does: if a release of
SQLAlchemy changes what its public compile and type APIs give, these tests fail."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import bindparam, exc, insert, select, text

from feedback_app.core.models import Deadline, Submission, SubmissionEvent
from feedback_app.core.prepared import PreparedStatement
from feedback_app.intake import reference
from feedback_app.intake.service import _EARLIER, _INSERT_SUBMISSION
from tests.factories import create_web_submission

AT = datetime(2026, 3, 28, 1, 2, 3, 456789, tzinfo=UTC)


def _stored(session, table, row_id) -> dict:
    """A row as the database holds it: each value with its storage type (SQLite) or as read (PostgreSQL)."""
    columns = [c.name for c in table.columns if c.name != "id"]
    if session.get_bind().dialect.name == "sqlite":
        listed = ", ".join(f"{c}, typeof({c})" for c in columns)
        values = session.execute(text(f"SELECT {listed} FROM {table.name} WHERE id = :id"), {"id": row_id}).one()
        return {c: (values[2 * i], values[2 * i + 1]) for i, c in enumerate(columns)}
    return dict(session.execute(select(*[table.c[c] for c in columns]).where(table.c.id == row_id)).one()._mapping)


def test_rows_are_stored_as_through_sqlalchemy(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    connection = session.connection()
    rows = {
        SubmissionEvent.__table__: {"submission_id": submission.id, "action": "received", "state_after": "received",
                                    "public": True, "at": AT},
        Deadline.__table__: {"submission_id": submission.id, "kind": "inform", "starts_on": date(2026, 3, 28),
                             "due_on": date(2026, 4, 3), "rule": "规则", "extension_days": 0, "created_at": AT},
    }
    rows[Submission.__table__] = {
        **{c.key: getattr(submission, c.key) for c in Submission.__table__.columns if c.key != "id"},
        "reference": "HP2026-900001", "seq": 900001, "form_token_hash": "f" * 64, "anonymous": True,
        "privacy_consent_at": AT, "next_due_on": date(2026, 4, 3), "name": None}
    for table, row in rows.items():
        prepared_id = PreparedStatement(insert(table)).insert(connection, row)
        if table is Submission.__table__:
            row = {**row, "reference": "HP2026-900002", "seq": 900002, "form_token_hash": "e" * 64}
        core_id = connection.execute(insert(table), row).inserted_primary_key[0]
        assert prepared_id != core_id
        prepared_row, core_row = _stored(session, table, prepared_id), _stored(session, table, core_id)
        for differs in ("reference", "seq", "form_token_hash"):
            prepared_row.pop(differs, None), core_row.pop(differs, None)
        assert prepared_row == core_row, table.name
    session.rollback()


def test_a_violated_constraint_is_sqlalchemys_integrity_error(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    row = {c.name: getattr(submission, c.key) for c in Submission.__table__.columns if c.name != "id"}
    with pytest.raises(exc.IntegrityError):  # the same reference and form token again
        _INSERT_SUBMISSION.insert(session.connection(), row)
    session.rollback()


def test_an_insert_without_a_column_that_has_a_python_default_is_refused(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    event = PreparedStatement(insert(SubmissionEvent.__table__))
    without_time = {"submission_id": submission.id, "action": "received", "state_after": "received", "public": True}
    if session.get_bind().dialect.name == "sqlite":
        with pytest.raises(exc.ArgumentError, match="at"):  # SQLAlchemy would have called utcnow(); the shortcut cannot
            event.insert(session.connection(), without_time)
    else:  # elsewhere the statement goes through SQLAlchemy, defaults and all
        new_id = event.insert(session.connection(), without_time)
        assert session.get(SubmissionEvent, new_id).at is not None
    session.rollback()


def test_one_returns_the_row_and_refuses_none(session):
    query = PreparedStatement(text("SELECT :a + 1 AS b WHERE :a > 0"))
    assert query.one(session.connection(), {"a": 1}) == (2,)
    with pytest.raises(exc.NoResultFound):
        query.one(session.connection(), {"a": 0})
    session.rollback()


def test_a_parameter_its_type_cannot_take_is_sqlalchemys_statement_error(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    event = PreparedStatement(insert(SubmissionEvent.__table__))
    naive = {"submission_id": submission.id, "action": "received", "state_after": "received", "public": True,
             "at": datetime(2026, 3, 28, 1, 2, 3)}  # UTCDateTime refuses a naive time
    with pytest.raises(exc.StatementError) as raised:
        event.insert(session.connection(), naive)
    assert isinstance(raised.value.orig, ValueError)
    session.rollback()


def test_a_select_binds_as_sqlalchemy_would(session, settings, bulletin):
    """The form-token check: the same answer compiled once as by SQLAlchemy, found and not found."""
    submission, _code = create_web_submission(session, settings, bulletin=bulletin, client="10.0.0.9",
                                              form_token="token-1")
    connection = session.connection()
    for token_hash in (submission.form_token_hash, "0" * 64):
        params = {"token_hash": token_hash}
        assert _EARLIER.one(connection, params) == tuple(connection.execute(_EARLIER.statement, params).one())
    assert _EARLIER.one(connection, {"token_hash": submission.form_token_hash}) == (submission.reference,)
    assert _EARLIER.one(connection, {"token_hash": "0" * 64}) == (None,)
    session.rollback()


def test_the_reference_counter_counts_per_year(session):
    connection = session.connection()
    assert [reference.next_sequence(connection, year) for year in (2031, 2031, 2032, 2031)] == [1, 2, 1, 3]
    session.rollback()


def test_a_select_compiled_once_takes_its_defaults_whatever_the_first_call_gave(session):
    """A parameter with a value of its own in the statement: a first call that overrides it must not
    leave later calls without it."""
    query = PreparedStatement(select(bindparam("a", 1) + bindparam("b", 10)))
    connection = session.connection()
    assert query.one(connection, {"a": 2, "b": 20}) == (22,)
    assert query.one(connection, {}) == (11,)
    assert query.one(connection, {"b": 5}) == (6,)
    session.rollback()
