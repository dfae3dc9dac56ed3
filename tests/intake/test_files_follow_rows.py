"""A file beside the database follows its transaction: put in place when the outermost transaction
commits, removed when the transaction or the savepoint it was written in rolls back."""
from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from feedback_app.core.database import on_outcome
from feedback_app.intake import attachments as files

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def write(session: Session, store, label: str) -> str:
    written = files.store(store, files.IncomingFile(f"{label}.png", PNG + label.encode()))
    on_outcome(session, committed=partial(files.place, store, written.stored_name),
               rolled_back=partial(files.discard, store, written.stored_name))
    return written.stored_name


def where(store, name: str) -> str:
    if files.path_of(store, name).is_file():
        return "placed"
    return "partial" if files.partial_path(store, name).is_file() else "gone"


def test_a_released_savepoint_waits_for_the_outer_transaction(app, store):
    """The clerk's intake stores inside a savepoint: its release is not a commit. If the request's
    transaction then rolls back (the audit record or the commit fails), the file goes too."""
    with Session(app.extensions["db_engine"]) as session:
        session.execute(text("SELECT 1"))
        with session.begin_nested():
            name = write(session, store, "a")
        assert where(store, name) == "partial"
        session.rollback()
        assert where(store, name) == "gone"


def test_a_savepoint_rolled_back_removes_its_own_files_only(app, store):
    with Session(app.extensions["db_engine"]) as session:
        session.execute(text("SELECT 1"))
        outer = write(session, store, "outer")
        with pytest.raises(ValueError), session.begin_nested():
            inner = write(session, store, "inner")
            raise ValueError("the same form stored twice at once")
        assert (where(store, outer), where(store, inner)) == ("partial", "gone")
        with session.begin_nested():
            kept = write(session, store, "kept")
        session.commit()
        assert (where(store, outer), where(store, inner), where(store, kept)) == ("placed", "gone", "placed")
