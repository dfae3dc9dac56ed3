"""CSRF protection of every POST, and the one answer to a refused one.

``CSRFProtect`` checks every POST's token before its view runs. When it refuses one, ``bad_token``
refuses the request (``web.refusal``) with the cause in Chinese: a view marked ``keeps_input`` shows its
form again as it was filled in, saying why, and can never act on it; nothing is committed. Any other
view does not run: the visitor gets an error page with the same explanation.

Its first hook answers a request that ``web.origin`` refused for coming from another site, and whose
view shows its form again (``refusal.refuse_later``): it runs after the hooks that say who is asking,
which that view needs, and before the token is checked or a rate limit counted.
"""
from __future__ import annotations

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from feedback_app.web.refusal import answer_refused, refuse

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
    app.before_request(answer_refused)  # a request from another site (web.origin), before its token
    csrf.init_app(app)
    app.register_error_handler(CSRFError, bad_token)


def bad_token(error: CSRFError) -> ResponseReturnValue:
    reason = PROBLEMS.get(error.description or "", FALLBACK)

    def page() -> ResponseReturnValue:
        return render_template("errors/error.html", code=400, title="请求未执行",
                               message=f"{reason}请返回上一页，刷新后重新提交。"), 400

    return refuse(reason, page)
