"""What the running app holds, for the code of its outer ring (pages and commands): the one accessor of each."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from feedback_app.core.config import Settings


def settings() -> Settings:
    """The app's settings (``create_app`` puts them there, read once from the environment)."""
    settings: Settings = current_app.extensions["settings"]
    return settings


def sessions() -> sessionmaker[Session]:
    """The app's session factory (a request uses ``web.transaction.get_session``, its own session)."""
    factory: sessionmaker[Session] = current_app.extensions["db_sessionmaker"]
    return factory


def engine() -> Engine:
    engine: Engine = current_app.extensions["db_engine"]
    return engine
