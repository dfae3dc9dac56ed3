"""``feedback-app audit verify``: check the audit chain; ``audit refusals``: the counts of refused requests.

There is no staff page that reads the audit log: the operator reads it here."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.audit.log import verify
from feedback_app.audit.refusals import recent_refusals
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


@audit_group.command("refusals")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="最多列出的行数")
@with_appcontext
@needs("audit.verify")  # reading the audit, as the operator: the same action as checking it
def audit_refusals(limit: int) -> None:
    """列出被拒绝的请求（403、409、429）：按分钟（UTC）、来源、状态码和路由计数，最近的在前。

    来源为员工账号，或以“client:”开头的访问者地址密钥哈希（不记录地址本身）。"""
    session = current.sessions()()
    try:
        rows = recent_refusals(session, limit)
    finally:
        session.close()
    if not rows:
        click.echo("没有被拒绝的请求记录")
        return
    for row in rows:
        click.echo(f"{row.minute:%Y-%m-%d %H:%M} UTC  {row.status}  {row.count:>6} 次"
                   f"（{row.first_at:%H:%M:%S}–{row.last_at:%H:%M:%S}）  {row.route}  {row.actor}")
