"""What every command needs: the app's settings, and a session committed once the command succeeds."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.config import Settings


def settings() -> Settings:
    return current_app.extensions["settings"]


def sessions() -> sessionmaker[Session]:
    return current_app.extensions["db_sessionmaker"]


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one command: committed on success, rolled back on error."""
    session = sessions()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
