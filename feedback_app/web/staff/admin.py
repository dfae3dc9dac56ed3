"""Account and unit administration, for administrators only."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from wtforms import PasswordField, StringField

from feedback_app import current
from feedback_app.audit.log import record
from feedback_app.auth import totp
from feedback_app.auth.accounts import (
    HANDLER_NEEDS_UNIT,
    ONLY_HANDLERS_HAVE_UNIT,
    USERNAME_RE,
    USERNAME_RULE,
    AccountError,
    active_admins,
    create_unit,
    create_user,
    handler_counts,
    list_units,
    list_users,
    normalize_username,
    set_active,
)
from feedback_app.auth.logins import end_sessions_of
from feedback_app.auth.passwords import MIN_LENGTH, password_problem
from feedback_app.core.models import Role, StaffUser, Unit
from feedback_app.core.words import ROLE_LABELS
from feedback_app.web.access import current_staff, require
from feedback_app.web.forms import ChoiceField, Form
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.transaction import get_session

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")

NO_UNIT = 0


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class UserForm(Form):
    username = StringField("用户名", filters=[_strip])
    display_name = StringField("姓名", filters=[_strip])
    role = ChoiceField("角色", choices=[(r.value, ROLE_LABELS[r]) for r in Role], missing="请选择角色")
    unit = ChoiceField("责任单位", coerce=int, radio=False, default=NO_UNIT, missing="请选择责任单位")
    password = PasswordField("初始密码")

    def __init__(self, *args, units: list[Unit], **kwargs):
        super().__init__(*args, **kwargs)
        self.unit.choices = [(NO_UNIT, "不属于责任单位（承办人以外的角色）")] + [
            (u.id, u.name) for u in units if u.active
        ]

    def validate(self, extra_validators=None) -> bool:
        """Every problem at once (the service checks again, and also for names already taken)."""
        ok = super().validate(extra_validators)
        name = normalize_username(self.username.data)
        if not name:
            self.username.errors.append("请填写用户名")
        elif not USERNAME_RE.fullmatch(name):
            self.username.errors.append(USERNAME_RULE)
        problem = password_problem(self.password.data or "", username=name)
        if problem:
            self.password.errors.append(problem)
        if not self.unit.errors:
            if self.role.data == Role.handler.value and not self.unit.data:
                self.unit.errors.append(HANDLER_NEEDS_UNIT)
            elif self.role.data and self.role.data != Role.handler.value and self.unit.data:
                self.unit.errors.append(ONLY_HANDLERS_HAVE_UNIT)
        return ok and not any(field.errors for field in self)


class UnitForm(Form):
    name = StringField("单位名称", filters=[_strip])


class ActionForm(Form):
    """The buttons on the list: only the CSRF token."""


def _audit(action: str, *, target: str, **details) -> None:
    actor = current_staff()
    assert actor is not None  # behind require
    record(
        get_session(), current.settings(),
        action=action, actor=actor.username, actor_id=actor.id, target=target,
        client=request.remote_addr, details=details or None,
    )


def _page(template: str, status: int = 200, **context):
    context.setdefault("me", current_staff())
    return make_response(render_template(template, **context), status)


def _user_or_404(user_id: int) -> StaffUser:
    user = get_session().get(StaffUser, user_id)
    if user is None:
        abort(404)
    return user


# users


@bp.get("/users")
@require("accounts.manage")
def users():
    db = get_session()
    return _page("admin/users.html", users=list_users(db), action=ActionForm(formdata=None),
                 twofa_roles=current.settings().twofa_role_set)


@bp.route("/users/new", methods=["GET", "POST"])
@require("accounts.manage")
@keeps_input
def new_user():
    db = get_session()
    units = list_units(db)
    form = UserForm(units=units)

    def page(status: int = 200, notice: str | None = None):
        form.password.data = ""
        return _page("admin/user_new.html", status, form=form, notice=notice, has_units=bool(form.unit.choices[1:]),
                     username_rule=USERNAME_RULE, min_length=MIN_LENGTH)

    if request.method == "GET":
        form = UserForm(formdata=None, units=units)
        return page()
    valid = form.validate()
    if problem():
        return page(400, f"{problem()}请重新提交。")
    if not valid:
        return page(400, "账号未创建，请按提示修改后再提交。")
    unit = db.get(Unit, form.unit.data) if form.unit.data else None
    try:
        user = create_user(db, form.username.data or "", form.password.data or "", form.role.data,
                           unit=unit, display_name=form.display_name.data or "")
    except AccountError as exc:
        getattr(form, exc.field or "username").errors.append(exc.message)
        return page(400, "账号未创建，请按提示修改后再提交。")
    _audit("user_created", target=f"staff_user:{user.id}", username=user.username, role=user.role,
           unit=unit.name if unit else None)
    flash(f"已创建账号 {user.username}（{ROLE_LABELS[user.role_enum]}）。请通过安全的方式把初始密码告诉本人。")
    return redirect(url_for("admin.users"), code=303)


def _action(user_id: int):
    form = ActionForm()
    if not form.validate():
        flash(f"{problem() or '页面已过期。'}操作未执行，请重试。")
        return None, redirect(url_for("admin.users"), code=303)
    return _user_or_404(user_id), None


@bp.post("/users/<int:user_id>/disable")
@require("accounts.manage")
@keeps_input
def disable_user(user_id: int):
    user, response = _action(user_id)
    if response is not None:
        return response
    db = get_session()
    me = current_staff()
    assert me is not None  # behind require
    if user.id == me.id:
        flash("不能停用自己的账号。")
        return redirect(url_for("admin.users"), code=303)
    if user.role == Role.admin.value and user.active and active_admins(db) <= 1:
        flash("这是唯一启用的管理员账号，不能停用。")
        return redirect(url_for("admin.users"), code=303)
    if user.active:
        set_active(db, user, False)  # ends the user's sessions
        _audit("user_disabled", target=f"staff_user:{user.id}", username=user.username)
    flash(f"已停用账号 {user.username}，其所有登录已退出。")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/users/<int:user_id>/enable")
@require("accounts.manage")
@keeps_input
def enable_user(user_id: int):
    user, response = _action(user_id)
    if response is not None:
        return response
    if not user.active:
        set_active(get_session(), user, True)
        _audit("user_enabled", target=f"staff_user:{user.id}", username=user.username)
    flash(f"已启用账号 {user.username}。")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/users/<int:user_id>/reset-2fa")
@require("accounts.manage")
@keeps_input
def reset_totp(user_id: int):
    user, response = _action(user_id)
    if response is not None:
        return response
    db = get_session()
    totp.reset(db, user)
    end_sessions_of(db, user)
    _audit("totp_reset", target=f"staff_user:{user.id}", username=user.username)
    flash(f"已重置 {user.username} 的双重验证，其所有登录已退出。本人下次登录时需重新设置。")
    return redirect(url_for("admin.users"), code=303)


# units


@bp.route("/units", methods=["GET", "POST"])
@require("units.manage")
@keeps_input
def units():
    db = get_session()
    form = UnitForm()

    def page(status: int = 200, notice: str | None = None):
        return _page("admin/units.html", status, form=form, notice=notice, units=list_units(db),
                     counts=handler_counts(db))

    if request.method == "GET":
        form = UnitForm(formdata=None)
        return page()
    valid = form.validate()
    if problem():
        return page(400, f"{problem()}请重新提交。")
    try:
        if not valid:
            raise AccountError("请检查填写的内容", "name")
        unit = create_unit(db, form.name.data or "")
    except AccountError as exc:
        form.name.errors.append(exc.message)
        return page(400, "单位未添加，请按提示修改后再提交。")
    _audit("unit_created", target=f"unit:{unit.id}", name=unit.name)
    flash(f"已添加责任单位“{unit.name}”。")
    return redirect(url_for("admin.units"), code=303)
