"""CSRF protection of every POST, and the one answer to a refused one.

``CSRFProtect`` checks every POST's token before its view runs. When it refuses one, ``bad_token``
answers: a view marked ``keeps_input`` runs, and every form of the site fails for such a request
(``web.forms.Form``), so the page comes back as it was filled in, saying why (``problem()``), and the
view can never act on it; nothing is committed whatever the view answers. Any other view does not run:
the visitor gets an error page with the same explanation.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from feedback_app.web.transaction import refuse_writes

ViewFunc = Callable[..., ResponseReturnValue]

# what went wrong with the token, in words for the person who sent the form
PROBLEMS = {
    "The CSRF token has expired.": "页面已过期：页面打开的时间太长，安全校验已失效。",
    "The CSRF token is missing.": "页面已过期：提交的内容缺少安全校验信息，可能页面没有完整打开。",
    "The CSRF session token is missing.": "页面已过期：浏览器没有带回本站的安全校验信息，可能 Cookie 已被清除或被禁用。",
    "The CSRF token is invalid.": "页面已过期：安全校验信息无效，可能页面已在别处刷新。",
    "The CSRF tokens do not match.": "页面已过期：安全校验信息与当前会话不符，可能您已重新登录或在别处打开过本页。",
    "The referrer header is missing.": "无法确认提交来自本站页面（浏览器没有发送来源信息），操作未执行。",
    "The referrer does not match the host.": "无法确认提交来自本站页面，操作未执行。",
}
FALLBACK = "页面已过期：安全校验未通过。"

csrf = CSRFProtect()


def init_csrf(app: Flask) -> None:
    """After the hooks that say who is asking: a view that runs for a bad token needs them."""
    csrf.init_app(app)
    app.register_error_handler(CSRFError, bad_token)


def keeps_input(view: ViewFunc) -> ViewFunc:
    """Mark a view whose form shows itself again, as filled in, when its token is bad."""
    view.keeps_input = True  # type: ignore[attr-defined]
    return view


def problem() -> str | None:
    """Why this request's token was refused, in Chinese; None when it was not."""
    return g.get("csrf_problem")


def bad_token(error: CSRFError) -> ResponseReturnValue:
    g.csrf_problem = PROBLEMS.get(error.description or "", FALLBACK)
    refuse_writes()
    view: Any = current_app.view_functions.get(request.endpoint or "")
    if _keeps_input(view):
        try:
            return current_app.ensure_sync(view)(**(request.view_args or {}))
        except HTTPException as refused:  # the view's own refusal (403, 404, a redirect) stands
            return current_app.handle_http_exception(refused)
    html = render_template("errors/error.html", code=400, title="请求未执行",
                           message=f"{problem()}请返回上一页，刷新后重新提交。")
    return html, 400


def _keeps_input(view: Any) -> bool:
    while view is not None:
        if getattr(view, "keeps_input", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False
