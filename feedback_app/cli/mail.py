"""``feedback-app mail``: fetch the mailbox, import mail files, show the mailboxes' health."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

import click
from flask.cli import with_appcontext

from feedback_app import current
from feedback_app.cli.common import needs
from feedback_app.mailbox.health import alarms, mailbox_health
from feedback_app.mailbox.imap import FetchReport, fetch_once
from feedback_app.mailbox.importer import import_paths

mail_group = click.Group("mail", help="电子邮件受理")


def _summary(report) -> str:
    parts = [f"登记 {report.ingested} 封", f"隔离 {report.quarantined} 封"]
    if report.already_known:
        parts.append(f"此前已处理 {report.already_known} 封")
    if report.resumed:
        parts.append(f"其中续办上次中断的 {report.resumed} 封")
    return "，".join(parts)


def _fetch_line(report: FetchReport) -> str:
    if report.error:
        done = report.ingested + report.quarantined + report.already_known
        return f"收取失败：{report.error}" + (f"（失败前已处理：{_summary(report)}）" if done else "")
    return f"收取 {report.fetched} 封新邮件：{_summary(report)}"


@mail_group.command("fetch")
@click.option("--watch", is_flag=True, help="持续运行，定时收取（间隔见 FEEDBACK_IMAP_POLL_SECONDS）")
@click.option("--interval", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="持续运行时两次收取之间的秒数（默认取 FEEDBACK_IMAP_POLL_SECONDS）")
@with_appcontext
@needs("mailbox.fetch")
def mail_fetch(watch: bool, interval: float | None) -> None:
    """从配置的 IMAP 邮箱收取新邮件并登记。"""
    factory = current.sessions()
    settings = current.settings()
    if not watch:
        report = fetch_once(factory, settings)
        click.echo(_fetch_line(report), err=bool(report.error))
        sys.exit(1 if report.error else 0)

    stop = threading.Event()
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: only KeyboardInterrupt stops the loop
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            report = fetch_once(factory, settings)
            if report.error or report.fetched or report.resumed:
                click.echo(_fetch_line(report), err=bool(report.error))
            stop.wait(interval or settings.imap_poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    click.echo("已停止")


@mail_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@with_appcontext
@needs("mailbox.fetch")
def mail_import(paths: tuple[Path, ...]) -> None:
    """导入 .eml 文件、mbox 文件或 Maildir 文件夹中的邮件并登记。"""
    factory = current.sessions()
    settings = current.settings()
    report = import_paths(factory, settings, list(paths))
    for error in report.errors:
        click.echo(error, err=True)
    click.echo(f"读取 {report.read} 封邮件：{_summary(report)}")
    sys.exit(1 if report.errors else 0)


@mail_group.command("health")
@with_appcontext
@needs("mailbox.fetch")
def mail_health() -> None:
    """显示各邮箱的收取状态和隔离区邮件数。"""
    settings = current.settings()
    tz = settings.tz

    def when(value) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else "—"

    with current.sessions()() as session:
        rows = mailbox_health(session, settings)
        lines = alarms(session, settings)
    for h in rows:
        alarm = "\t告警" if h.alarm else ""
        click.echo(f"{h.mailbox}\t最近成功 {when(h.last_success_at)}\t失败始于 {when(h.failing_since)}\t"
                   f"隔离 {h.quarantined} 封{alarm}")
    for line in lines:
        click.echo(line, err=True)
    sys.exit(1 if lines else 0)
