"""The ``feedback-app`` command: the Flask CLI bound to this app, with a group per domain."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.orm import Session

SEED = Path(__file__).resolve().parent / "bulletin" / "seed" / "huangpu-2025-03-28.txt"


@contextmanager
def session_scope():
    """A session for one command: committed on success, rolled back on error."""
    session: Session = current_app.extensions["db_sessionmaker"]()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


db_group = click.Group("db", help="数据库")
bulletin_group = click.Group("bulletin", help="通报")


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """迁移数据库到最新版本。"""
    from feedback_app.migrate import upgrade

    upgrade(current_app.extensions["db_engine"], revision)
    click.echo("数据库已是最新版本")


@bulletin_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--slug", help="网址中的标识，默认取文件名")
@with_appcontext
def bulletin_import(path: Path | None, slug: str | None) -> None:
    """导入通报文本（不给 PATH 时导入随附的通报）。"""
    from feedback_app.bulletin.parser import BulletinParseError
    from feedback_app.bulletin.service import BulletinImportError, import_bulletin

    path = path or SEED
    text = path.read_bytes().decode("utf-8-sig")
    try:
        with session_scope() as session:
            result = import_bulletin(session, text, slug or path.stem.lower())
            slug_out, created = result.bulletin.slug, result.created
    except (BulletinParseError, BulletinImportError) as exc:
        click.echo(f"导入失败：{exc}", err=True)
        sys.exit(1)
    click.echo(f"已导入：{slug_out}" if created else f"未变化：{slug_out} 已存在且内容相同")


@bulletin_group.command("list")
@with_appcontext
def bulletin_list() -> None:
    """列出已发布的通报。"""
    from feedback_app.bulletin.service import list_bulletins

    with session_scope() as session:
        for b in list_bulletins(session):
            click.echo(f"{b.slug}\t{b.published_on.isoformat()}\t{len(b.items)}项\t{b.title}")


def register_commands(app: Flask) -> None:
    from feedback_app.audit.cli import audit_group
    from feedback_app.auth.cli import staff_group, unit_group
    from feedback_app.mail.cli import outbox_group
    from feedback_app.mail.inbound_cli import mail_group
    from feedback_app.outcomes.cli import ledger_group
    from feedback_app.moderation.cli import deadlines_group

    for group in (db_group, bulletin_group, outbox_group, staff_group, unit_group, deadlines_group, audit_group,
                  mail_group, ledger_group):
        app.cli.add_command(group)


def main() -> None:
    from feedback_app import create_app

    FlaskGroup(create_app=create_app, help="巡察整改监督意见受理服务").main()
