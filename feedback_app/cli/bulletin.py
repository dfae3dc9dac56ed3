"""``feedback-app bulletin``: importing and listing bulletins."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from feedback_app.bulletin.parser import BulletinParseError
from feedback_app.bulletin.service import (
    BUNDLED,
    BulletinImportError,
    import_bulletin,
    list_bulletins,
)
from feedback_app.cli.common import needs, session_scope

bulletin_group = click.Group("bulletin", help="通报")


@bulletin_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--slug", help="网址中的标识，默认取文件名")
@with_appcontext
@needs("bulletins.manage")
def bulletin_import(path: Path | None, slug: str | None) -> None:
    """导入通报文本（不给 PATH 时导入随附的通报）。"""
    path = path or BUNDLED
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
@needs("bulletins.manage")
def bulletin_list() -> None:
    """列出已发布的通报。"""
    with session_scope() as session:
        for b in list_bulletins(session):
            click.echo(f"{b.slug}\t{b.published_on.isoformat()}\t{len(b.items)}项\t{b.title}")
