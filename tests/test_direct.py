"""Statements run straight on the DBAPI cursor store exactly what SQLAlchemy would, and fail as it does."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import exc, insert, select, text

from feedback_app.core.direct import Direct
from feedback_app.core.models import Submission, SubmissionEvent
from feedback_app.intake.service import _INSERT_SUBMISSION
from feedback_app.core.models import Deadline
from tests.factories import create_web_submission

AT = datetime(2026, 3, 28, 1, 2, 3, 456789, tzinfo=timezone.utc)


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
    for table, row in rows.items():
        direct_id = Direct(insert(table)).insert(connection, row)
        core_id = connection.execute(insert(table), row).inserted_primary_key[0]
        assert direct_id != core_id
        assert _stored(session, table, direct_id) == _stored(session, table, core_id), table.name
    session.rollback()


def test_a_violated_constraint_is_sqlalchemys_integrity_error(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    row = {c.name: getattr(submission, c.key) for c in Submission.__table__.columns if c.name != "id"}
    with pytest.raises(exc.IntegrityError):  # the same reference and form token again
        _INSERT_SUBMISSION.insert(session.connection(), row)
    session.rollback()


def test_an_insert_without_a_column_that_has_a_python_default_is_refused(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    event = Direct(insert(SubmissionEvent.__table__))
    without_time = {"submission_id": submission.id, "action": "received", "state_after": "received", "public": True}
    if session.get_bind().dialect.name == "sqlite":
        with pytest.raises(exc.ArgumentError, match="at"):  # SQLAlchemy would have called utcnow(); the shortcut cannot
            event.insert(session.connection(), without_time)
    else:  # elsewhere the statement goes through SQLAlchemy, defaults and all
        new_id = event.insert(session.connection(), without_time)
        assert session.get(SubmissionEvent, new_id).at is not None
    session.rollback()


def test_one_returns_the_row_and_refuses_none(session):
    query = Direct(text("SELECT :a + 1 AS b WHERE :a > 0"))
    assert query.one(session.connection(), {"a": 1}) == (2,)
    with pytest.raises(exc.NoResultFound):
        query.one(session.connection(), {"a": 0})
    session.rollback()


def test_a_parameter_its_type_cannot_take_is_sqlalchemys_statement_error(session, settings, bulletin):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin)
    event = Direct(insert(SubmissionEvent.__table__))
    naive = {"submission_id": submission.id, "action": "received", "state_after": "received", "public": True,
             "at": datetime(2026, 3, 28, 1, 2, 3)}  # UTCDateTime refuses a naive time
    with pytest.raises(exc.StatementError) as raised:
        event.insert(session.connection(), naive)
    assert isinstance(raised.value.orig, ValueError)
    session.rollback()
