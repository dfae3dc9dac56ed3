"""Staff login, second factor, enrolment, logout and password change."""
from __future__ import annotations

import math
from typing import Any

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    session as cookie,
)
from wtforms import Field, PasswordField, StringField
from wtforms.validators import DataRequired, ValidationError

from feedback_app.audit.log import record
from feedback_app.auth import totp
from feedback_app.auth.accounts import (
    AccountError,
    authenticate,
    normalize_username,
    set_password,
)
from feedback_app.auth.passwords import MIN_LENGTH, password_problem, verify_password
from feedback_app.core.config import Settings
from feedback_app.core.database import utcnow
from feedback_app.core.models import StaffUser
from feedback_app.current import settings
from feedback_app.web.access import (
    current_staff,
    end_session,
    needs_second_factor,
    public,
    require,
    safe_next,
    start_session,
)
from feedback_app.web.forms import Form
from feedback_app.web.limits import client_address
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.templating import staff_home
from feedback_app.web.transaction import after_response, get_session

bp = Blueprint("auth", __name__, url_prefix="/staff")

NEXT_KEY = "staff_next"  # where to go after the second factor, kept in the signed Flask session
WRONG_CREDENTIALS = "用户名或密码不正确"
WRONG_CODE = "验证码不正确或已使用过，请输入验证器中当前显示的 6 位数字"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(Form):
    username = StringField("用户名", filters=[_strip], validators=[DataRequired("请填写用户名")])
    password = PasswordField("密码", validators=[DataRequired("请填写密码")])


class CodeForm(Form):
    code = StringField("验证码", filters=[_strip], validators=[DataRequired("请填写验证码")])


class PasswordForm(Form):
    current_password = PasswordField("当前密码", validators=[DataRequired("请填写当前密码")])
    new_password = PasswordField("新密码")
    new_password_confirm = PasswordField("再次输入新密码")

    def __init__(self, *args: Any, username: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.username = username

    def validate_new_password(self, field: Field) -> None:
        weakness = password_problem(field.data or "", username=self.username)
        if weakness:
            raise ValidationError(weakness)
        if self.current_password.data and field.data == self.current_password.data:
            raise ValidationError("新密码不能与当前密码相同")

    def validate_new_password_confirm(self, field: Field) -> None:
        if not self.new_password.errors and field.data != self.new_password.data:
            raise ValidationError("两次输入的新密码不一致")


class LogoutForm(Form):
    pass



def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def _entry(action: str, user: StaffUser | None, details: dict[str, Any]) -> dict[str, Any]:
    """The audit entry of ``action`` by ``user`` (anonymous: a failed login), from this request."""
    return dict(
        action=action,
        actor=user.username if user is not None else "anonymous",
        actor_id=user.id if user is not None else None,
        target=f"staff_user:{user.id}" if user is not None else None,
        client=request.remote_addr,
        details=details or None,
    )


def _audit(action: str, user: StaffUser | None = None, **details) -> None:
    record(get_session(), settings(), **_entry(action, user, details))


def _failed(action: str, user: StaffUser | None = None, **details) -> None:
    """Record a failed attempt, in a transaction of its own after the response: the request's answer is
    an error, which rolls its own back."""
    g.auth_failed = True  # counted by the rate limits
    s, entry = settings(), _entry(action, user, details)
    after_response(lambda db: record(db, s, **entry))


def _after_login():
    target = safe_next(cookie.pop(NEXT_KEY, None))
    return redirect(target or staff_home(), code=303)


# login


def _render_login(form: LoginForm, next_target: str | None, notice: str | None = None, status: int = 200):
    form.password.data = ""  # never echo a password back into the page
    return _page("auth/login.html", status, form=form, next=next_target, notice=notice)


@bp.route("/login", methods=["GET", "POST"])
@public
@keeps_input
def login():
    next_target = safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(next_target or staff_home())
        return _render_login(LoginForm(formdata=None), next_target)

    form = LoginForm()
    valid = form.validate()
    if problem():
        return _render_login(form, next_target, f"{problem()}请重新输入密码登录。", 400)
    if not valid:
        return _render_login(form, next_target, "登录未成功，请按提示填写。", 400)

    db = get_session()
    user = authenticate(db, form.username.data, form.password.data)
    if user is None:
        _failed("login_failed", username=(form.username.data or "")[:64])
        return _render_login(form, next_target, WRONG_CREDENTIALS, 400)

    earlier = g.get("staff_session_row")
    if earlier is not None and earlier.ended_at is None:
        earlier.ended_at = utcnow()
    start_session(db, user)  # always a new session id
    pending = needs_second_factor(user)
    _audit("login", user, second_factor_pending=pending)
    cookie.pop(NEXT_KEY, None)
    if not pending:
        return redirect(next_target or staff_home(), code=303)
    if next_target:
        cookie[NEXT_KEY] = next_target
    if user.totp_confirmed_at is None:
        totp.begin_enrolment(db, user)  # the secret the enrolment page shows
        return redirect(url_for("auth.enrol"), code=303)
    return redirect(url_for("auth.second_factor"), code=303)


# second factor


def _pending_user() -> StaffUser | None:
    """The user who gave the right password in this session (whether or not the second factor is done)."""
    return g.get("staff")


@bp.route("/2fa", methods=["GET", "POST"])
@public
@keeps_input
def second_factor():
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    if current_staff() is not None:
        return _after_login()
    if user.totp_confirmed_at is None:
        return redirect(url_for("auth.enrol"), code=303)
    form = CodeForm()
    if request.method == "GET":
        return _page("auth/second_factor.html", form=CodeForm(formdata=None))
    valid = form.validate()
    if problem():
        return _page("auth/second_factor.html", 400, form=form, notice=f"{problem()}请重新提交。")
    if not valid:
        return _page("auth/second_factor.html", 400, form=form)
    db = get_session()
    if totp.accept_code(db, user, form.code.data):
        g.staff_session_row.second_factor_at = utcnow()
        _audit("second_factor", user)
        return _after_login()
    _failed("second_factor_failed", user)
    form.code.errors.append(WRONG_CODE)
    form.code.data = ""
    return _page("auth/second_factor.html", 400, form=form)


@bp.route("/2fa/enrol", methods=["GET", "POST"])
@public
@keeps_input
def enrol():
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    if not needs_second_factor(user):
        return _after_login()
    if user.totp_confirmed_at is not None:
        if current_staff() is not None:
            return _after_login()
        return redirect(url_for("auth.second_factor"), code=303)

    db = get_session()
    secret = user.totp_secret  # made at login (a GET writes nothing)
    if not secret:
        return redirect(url_for("auth.login"), code=303)
    uri = totp.provisioning_uri(secret, user.username)
    form = CodeForm()

    def page(status: int = 200, notice: str | None = None):
        return _page("auth/enrol.html", status, form=form, qr=totp.qr_svg(uri), secret=totp.grouped(secret),
                     issuer=totp.ISSUER, username=user.username, notice=notice)

    if request.method == "GET":
        form = CodeForm(formdata=None)
        return page()
    valid = form.validate()
    if problem():
        return page(400, f"{problem()}请重新提交。")
    if not valid:
        return page(400)
    if totp.confirm_enrolment(db, user, form.code.data):
        g.staff_session_row.second_factor_at = utcnow()
        _audit("totp_enrolled", user)
        flash("双重验证已启用。以后登录时，请在输入密码后输入验证器显示的验证码。")
        return _after_login()
    _failed("second_factor_failed", user, during="enrolment")
    form.code.errors.append(WRONG_CODE)
    form.code.data = ""
    return page(400)


# logout


@bp.route("/logout", methods=["GET", "POST"])
@public
@keeps_input
def logout():
    user = _pending_user()
    if user is None:  # nothing to end (or it has ended already)
        end_session(get_session())
        return redirect(url_for("auth.login"), code=303)
    form = LogoutForm()
    if request.method == "GET":
        return _page("auth/logout.html", form=LogoutForm(formdata=None))
    if not form.validate():
        return _page("auth/logout.html", 400, form=form, notice=f"{problem() or '页面已过期。'}请再次点击“退出登录”。")
    end_session(get_session())
    _audit("logout", user)
    cookie.pop(NEXT_KEY, None)
    flash("您已安全退出")
    return redirect(url_for("auth.login"), code=303)


# password


@bp.route("/password", methods=["GET", "POST"])
@require("password.change")
@keeps_input
def password():
    user = current_staff()
    assert user is not None  # behind require
    form = PasswordForm(username=user.username)

    def page(status: int = 200, notice: str | None = None):
        for field in (form.current_password, form.new_password, form.new_password_confirm):
            field.data = ""
        return _page("auth/password.html", status, form=form, notice=notice, min_length=MIN_LENGTH, me=user)

    if request.method == "GET":
        form = PasswordForm(formdata=None, username=user.username)
        return page()
    valid = form.validate()
    if problem():
        return page(400, f"{problem()}请重新提交。")
    if not valid:
        return page(400, "密码未修改，请按提示修改后再提交。")
    current, new = form.current_password.data, form.new_password.data
    if not verify_password(user.password_hash, current):
        _failed("password_change_failed", user)
        form.current_password.errors.append("当前密码不正确")
        return page(400, "密码未修改，请按提示修改后再提交。")

    db = get_session()
    second_factor_done = g.staff_session_row.second_factor_at is not None
    try:
        set_password(db, user, new)  # ends every session of the user, this one too
    except AccountError as exc:
        form.new_password.errors.append(exc.message)
        return page(400, "密码未修改，请按提示修改后再提交。")
    start_session(db, user, second_factor=second_factor_done)
    _audit("password_changed", user)
    flash("密码已修改。其他设备和浏览器上的登录已全部退出。")
    return redirect(staff_home(), code=303)


# rate limits on failed attempts


def _account_key() -> str:
    """Failed attempts on one account: the typed username at login, the logged-in user afterwards."""
    user = g.get("staff")
    if user is not None and request.endpoint != "auth.login":
        return "account:" + user.username
    return "account:" + normalize_username(request.form.get("username", ""))[:64]


def _client_key() -> str:
    return "client:" + client_address()


def _only_failures(_response) -> bool:
    return bool(g.get("auth_failed"))


def _throttled(limit) -> object:
    seconds = limit.limit.get_expiry()
    minutes = max(1, math.ceil(seconds / 60))
    notice = f"尝试次数过多，请 {minutes} 分钟后再试。"
    if request.endpoint == "auth.login":
        form = LoginForm()  # what was typed (the password is never shown again)
        return _render_login(form, safe_next(request.args.get("next")), notice, 429)
    if request.endpoint == "auth.password":
        user = current_staff()
        if user is None:  # the limits are checked before the page's own gate: answer as the gate does
            return redirect(url_for("auth.second_factor" if g.get("staff") is not None else "auth.login"))
        form = PasswordForm(formdata=None, username=user.username)
        return _page("auth/password.html", 429, form=form, notice=notice, min_length=MIN_LENGTH, me=user)
    form = CodeForm(formdata=None)
    if request.endpoint == "auth.enrol" and g.get("staff") is not None and g.staff.totp_secret:
        secret = g.staff.totp_secret
        uri = totp.provisioning_uri(secret, g.staff.username)
        return _page("auth/enrol.html", 429, form=form, qr=totp.qr_svg(uri), secret=totp.grouped(secret),
                     issuer=totp.ISSUER, username=g.staff.username, notice=notice)
    return _page("auth/second_factor.html", 429, form=form, notice=notice)


LIMITED = ("auth.login", "auth.second_factor", "auth.enrol", "auth.password")


def apply_limits(app: Flask, s: Settings) -> None:
    """Count failed logins, codes and password checks per account and per client, across these pages.

    Only failures count, so that colleagues behind one office address can all log in; a throttled
    account does not block the others until the per-client limit is reached.
    """
    limiter = app.extensions["feedback_limiter"]
    for endpoint in LIMITED:
        view = app.view_functions[endpoint]
        view = limiter.shared_limit(s.ratelimit_login_account, "staff-login-account", key_func=_account_key,
                                    methods=["POST"], deduct_when=_only_failures, on_breach=_throttled)(view)
        view = limiter.shared_limit(s.ratelimit_login_client, "staff-login-client", key_func=_client_key,
                                    methods=["POST"], deduct_when=_only_failures, on_breach=_throttled)(view)
        app.view_functions[endpoint] = view

