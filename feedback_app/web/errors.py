"""Domain exceptions and the one place that turns errors into pages."""
from __future__ import annotations

import secrets

from flask import Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from feedback_app.core.errors import NotFound

MESSAGES = {
    400: ("请求无效", "页面提交的内容无法处理，请返回上一页重试。"),
    403: ("无权访问", "您没有访问此页面的权限。"),
    404: ("页面不存在", "您访问的页面不存在或已被移除，请检查网址，或返回首页。"),
    405: ("请求方式不允许", "此页面不支持这种访问方式，请返回首页重新进入。"),
    413: ("提交内容过大", "提交的内容（含附件）超过了允许的大小。请返回上一页，删去或缩小附件后再提交。"),
    429: ("操作过于频繁", "您的操作过于频繁，请稍后再试。如情况紧急，请拨打通报中公布的联系电话。"),
    500: ("服务暂时出错", "系统暂时无法处理您的请求，请稍后再试。您此前已确认提交的内容不会丢失。"),
    503: ("服务暂不可用", "系统正在维护，请稍后再试。"),
}


def error_page(code: int, incident: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500])
    return render_template("errors/error.html", code=code, title=title, message=message, incident=incident), code


def incident_id() -> str:
    """A short random number that names one failure on the page and in the log, and nothing else."""
    return secrets.token_hex(4).upper()


def unexpected(exc: BaseException) -> ResponseReturnValue:
    """The 500 answer to a failure nobody expected: a new incident number, on the page and in the log line.

    Every 500 comes here, whatever raised it: an error no handler of its own answers (``register_error_pages``),
    one that ``web.unavailable`` does not count as the database or the disk failing, and one that Flask turns
    into ``InternalServerError`` itself (raised in an after-request hook, or by an error handler)."""
    incident = incident_id()
    # the citizen quotes the number; the log line names the failure and the route, never who asked
    current_app.logger.error("unhandled %s on %s %s (incident %s)", type(exc).__name__, request.method,
                             request.path, incident, exc_info=exc)
    return error_page(InternalServerError.code, incident)


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.response is not None:  # a view chose its own answer (e.g. a rate limit keeping the form)
            return exc.response
        if isinstance(exc, InternalServerError):
            return server_error(exc)
        response = error_page(exc.code or 500)
        if exc.code == 405 and isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            return response[0], exc.code, {"Allow": ", ".join(exc.valid_methods)}
        return response

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        """Flask's own 500 (an error raised where no handler catches it: an after-request hook, an error
        handler; Flask has logged it already) and ``abort(500)``: the failure behind it gets its number."""
        if exc.response is not None:
            return exc.response
        return unexpected(exc.original_exception or exc)

    @app.errorhandler(NotFound)
    def not_found(_exc):
        return error_page(404)

    @app.errorhandler(Exception)
    def any_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        return unexpected(exc)
