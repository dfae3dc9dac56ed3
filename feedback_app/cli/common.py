"""What every command needs: the app's settings, and a session committed once the command succeeds."""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from feedback_app import current
from feedback_app.core.permissions import SYSTEM, may, roles_for

F = TypeVar("F", bound=Callable[..., Any])




@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one command: committed on success, rolled back on error."""
    session = current.sessions()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def needs(action: str) -> Callable[[F], F]:
    """The command takes ``action`` as the operator (``permissions.SYSTEM``): the table must allow it."""
    roles_for(action)  # an action missing from the table fails here, when the module is imported

    def decorator(command: F) -> F:
        @functools.wraps(command)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not may(SYSTEM, action):
                raise click.ClickException(f"命令行不能执行此操作（{action}）")
            return command(*args, **kwargs)

        wrapped.permission = action  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator
