"""``feedback-app outbox``: deliver the queued mail once, or keep delivering it."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from feedback_app import current
from feedback_app.cli.common import needs
from feedback_app.outbox.delivery import SendReport, send_due

log = logging.getLogger("feedback_app.mail")

outbox_group = click.Group("outbox", help="邮件发送队列")


def _summary(report: SendReport) -> str:
    return f"已发送 {report.sent} 封，稍后重试 {report.retried} 封，失败 {report.failed} 封"


@outbox_group.command("send")
@click.option("--watch", is_flag=True, help="持续运行，每隔一段时间发送到期的邮件")
@click.option("--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="持续运行时两轮之间的秒数")
@with_appcontext
@needs("outbox.send")
def outbox_send(watch: bool, interval: float) -> None:
    """发送到期的待发邮件。"""
    factory = current.sessions()
    settings = current.settings()
    if not watch:
        click.echo(_summary(send_due(factory, settings)))
        return

    stop = threading.Event()
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: only KeyboardInterrupt stops the loop
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                report = send_due(factory, settings)
            except SQLAlchemyError as exc:
                log.warning("outbox: database error (%s); retrying later", type(exc).__name__)
            else:
                if report.sent or report.retried or report.failed:
                    click.echo(_summary(report))
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    click.echo("已停止")
