"""``feedback-app ledger``: the ledger (台账) from the command line."""
from __future__ import annotations

import os
import sys

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.cli.common import needs, session_scope
from feedback_app.core.models import Channel, Kind, State
from feedback_app.core.states import TransitionRefused
from feedback_app.moderation.queue import Filters
from feedback_app.outcomes import ledger

ledger_group = click.Group("ledger", help="整改意见台账")

_DATE = click.DateTime(formats=["%Y-%m-%d"])


@ledger_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), required=True, help="文件格式")
@click.option("--state", type=click.Choice([s.value for s in State]), help="状态")
@click.option("--channel", type=click.Choice([c.value for c in Channel]), help="渠道")
@click.option("--item", type=click.IntRange(min=0), help="整改事项序号（0 为整改工作整体）")
@click.option("--kind", type=click.Choice([k.value for k in Kind]), help="类型")
@click.option("--unit", type=click.IntRange(min=1), help="责任单位编号")
@click.option("--due", type=click.Choice(["overdue", "soon"]), help="overdue 已超期；soon 3日内到期")
@click.option("--from", "date_from", type=_DATE, help="收到日期从（YYYY-MM-DD）")
@click.option("--to", "date_to", type=_DATE, help="收到日期至（YYYY-MM-DD，含当日）")
@click.option("--personal", is_flag=True, help="包含群众姓名、联系电话、电子邮箱和通信地址")
@with_appcontext
@needs("ledger.export")
def ledger_export(fmt, state, channel, item, kind, unit, due, date_from, date_to, personal) -> None:
    """导出整改意见台账到标准输出，例如 feedback-app ledger export --format xlsx > 台账.xlsx。

    每次导出记入审计日志（操作人 cli）。
    """

    sys.stdout.flush()
    out = sys.stdout.buffer
    if fmt == "xlsx" and out.isatty():
        click.echo("Excel 文件不能输出到终端，请重定向到文件：> 台账.xlsx", err=True)
        sys.exit(2)
    filters = Filters(state=state, channel=channel, item=item, kind=kind, unit=unit, due=due,
                      date_from=date_from.date() if date_from else None,
                      date_to=date_to.date() if date_to else None)
    settings = current.settings()
    try:
        with session_scope() as session:
            export = ledger.prepare(session, settings, ledger.system_viewer(), filters, fmt=fmt, personal=personal,
                                    actor="cli")
    except TransitionRefused as refused:
        raise click.ClickException(f"命令行不能执行此操作（{refused}）") from refused
    try:
        for chunk in ledger.stream(current.sessions(), settings, export):
            out.write(chunk)
        out.flush()
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); say nothing more on a closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        sys.exit(1)
    click.echo(f"已导出 {export.rows} 件（{fmt.upper()}{'，含个人信息' if personal else ''}）", err=True)
