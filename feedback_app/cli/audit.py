"""``feedback-app audit verify``: check the audit chain."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.audit.log import verify
from feedback_app.cli.common import needs

audit_group = click.Group("audit", help="审计日志")


@audit_group.command("verify")
@with_appcontext
@needs("audit.verify")
def audit_verify() -> None:
    """校验审计日志的哈希链；发现断点时指出第一条并以非零状态退出。"""
    session = current.sessions()()
    try:
        result = verify(session, current.settings())
    finally:
        session.close()
    if result.broken_id is not None:
        click.echo(f"审计日志校验失败：第 {result.broken_id} 条，{result.reason}（此前 {result.checked} 条完好）", err=True)
        sys.exit(1)
    click.echo(f"审计日志完好：共 {result.checked} 条")
