"""``feedback-app db``: the database schema."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.cli.common import needs
from feedback_app.migrations import upgrade

db_group = click.Group("db", help="数据库")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
@needs("database.upgrade")
def db_upgrade(revision: str) -> None:
    """迁移数据库到最新版本。"""
    upgrade(current.engine(), revision)
    click.echo("数据库已是最新版本")
