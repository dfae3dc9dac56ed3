"""The working-day calendar page: an administrator replaces the file the clocks count with."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf.file import FileField, FileRequired
from wtforms.validators import ValidationError

from feedback_app.audit.log import record
from feedback_app.core.calendar import (
    CalendarError,
    calendar_file,
    load_calendar,
    save_calendar,
    validate_calendar_text,
)
from feedback_app.core.clocks import recount_open
from feedback_app.current import settings
from feedback_app.web.access import actor, require
from feedback_app.web.forms import Form
from feedback_app.web.refusal import keeps_input, problem
from feedback_app.web.transaction import get_session

bp = Blueprint("calendar", __name__, url_prefix="/staff")


class CalendarForm(Form):
    calendar = FileField("新的日历文件（JSON）", validators=[FileRequired("请选择日历文件")])

    def validate_calendar(self, field: FileField) -> None:
        """The file must be a calendar the clocks can count with (``core.calendar``); kept read."""
        self.content: bytes = field.data.read()
        try:
            self.parsed = validate_calendar_text(self.content)
        except CalendarError as exc:
            raise ValidationError(str(exc)) from exc


@bp.route("/admin/calendar", methods=["GET", "POST"])
@require("calendar.replace")
@keeps_input
def page():
    form = CalendarForm()
    status = 200
    if request.method == "POST":
        if not form.validate():
            if problem():
                form.calendar.errors = [f"{problem()}请重新上传"]
            status = 400
        else:
            try:
                # the running clocks first, with the new calendar: one it cannot count is refused whole
                moved = recount_open(get_session(), settings(), form.parsed)
                path = save_calendar(settings(), form.content)
            except CalendarError as exc:
                form.calendar.errors = [str(exc)]
                status = 400
            else:
                who = actor()
                record(get_session(), settings(), action="calendar_replaced", actor=who.user.username,
                       actor_id=who.user.id, client=who.client,
                       details={"file": path.name, "deadlines_moved": moved})
                flash(f"工作日历已更新；尚未完成的时限已按新日历重新计算，{moved} 个到期日有变化。", "success")
                return redirect(url_for("calendar.page"), code=303)
    try:
        calendar, trouble = load_calendar(settings()), None
    except CalendarError as exc:
        calendar, trouble = None, str(exc)
    html = render_template("staff/calendar.html", form=form, calendar=calendar, problem=trouble,
                           file=calendar_file(settings()).name)
    return html, status
