"""``feedback-app deadlines``: the statutory clocks, for operators."""
from __future__ import annotations

import sys
from datetime import datetime

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.cli.common import needs, session_scope
from feedback_app.core.calendar import (
    BUNDLED_CALENDAR,
    CalendarError,
    calendar_file,
    load_calendar,
)
from feedback_app.core.clocks import local_today, overdue
from feedback_app.core.words import DEADLINE_KIND_LABELS

deadlines_group = click.Group("deadlines", help="办理时限")


@deadlines_group.command("report")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="按这一天统计（默认今天）")
@with_appcontext
@needs("deadlines.report")
def deadlines_report(on: datetime | None) -> None:
    """列出已超期且尚未完成的办理时限。"""

    settings = current.settings()
    today = on.date() if on else local_today(settings)
    with session_scope() as session:
        lines = [
            "\t".join((
                submission.reference,
                DEADLINE_KIND_LABELS.get(deadline.kind, deadline.kind),
                f"应于 {deadline.due_on.isoformat()} 前",
                f"超期 {(today - deadline.due_on).days} 天",
                deadline.rule,
            ))
            for submission, deadline in overdue(session, today)
        ]
    click.echo(f"超期未完成的办理时限（截至 {today.isoformat()}）")
    for line in lines:
        click.echo(line)
    click.echo(f"合计：{len(lines)} 项超期" if lines else "合计：0 项，没有超期的办理时限")


@deadlines_group.command("calendar")
@click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="按这一天检查（默认今天）")
@with_appcontext
@needs("deadlines.report")
def deadlines_calendar(on: datetime | None) -> None:
    """显示正在使用的工作日历，并检查它是否覆盖今年和明年。"""

    settings = current.settings()
    today = on.date() if on else local_today(settings)
    path = calendar_file(settings)
    click.echo(f"工作日历：{'随附日历' if path == BUNDLED_CALENDAR else '管理员更新的日历'}（{path}）")
    try:
        calendar = load_calendar(settings)
    except CalendarError as exc:
        click.echo(f"错误：{exc}", err=True)
        sys.exit(1)
    years = "、".join(
        f"{y}（暂定）" if y in calendar.provisional_years else str(y) for y in sorted(calendar.years)
    )
    click.echo(f"覆盖年份：{years}")
    click.echo(f"“日”的计算：{calendar.plain_days_rule}")
    if calendar.note:
        click.echo(f"说明：{calendar.note}")
    if today.year not in calendar.years:
        click.echo(f"错误：工作日历未覆盖 {today.year} 年，无法计算办理时限，请管理员立即更新日历", err=True)
        sys.exit(1)
    if today.year + 1 not in calendar.years:
        click.echo(f"注意：工作日历尚未覆盖 {today.year + 1} 年，年底前收到的事项将无法计算时限，请管理员及时更新")
    elif today.year + 1 in calendar.provisional_years:
        click.echo(f"注意：{today.year + 1} 年节假日为暂定安排，国务院办公厅通知发布后请管理员更新")
