"""The working-day calendar page: an administrator replaces the file the clocks count with."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import FileField

from feedback_app.auth.sessions import current_staff, require_roles
from feedback_app.db import get_session
from feedback_app.moderation.actions import actor_for
from feedback_app.moderation.calendar import CalendarError, calendar_file, load_calendar, save_calendar
from feedback_app.moderation.views import bp, settings
from feedback_app.audit.log import record


class CalendarForm(FlaskForm):
    calendar = FileField("新的日历文件（JSON）")


@bp.route("/admin/calendar", methods=["GET", "POST"])
@require_roles("admin")
def calendar_page():
    form = CalendarForm()
    status = 200
    if request.method == "POST":
        upload = request.files.get("calendar")
        if not form.validate():
            form.calendar.errors = ["页面已过期，请重新上传"]
            status = 400
        elif upload is None or not upload.filename:
            form.calendar.errors = ["请选择日历文件"]
            status = 400
        else:
            try:
                path = save_calendar(settings(), upload.read())
            except CalendarError as exc:
                form.calendar.errors = [str(exc)]
                status = 400
            else:
                actor = actor_for(current_staff())
                record(get_session(), settings(), action="calendar_replaced", actor=actor.user.username,
                       actor_id=actor.user.id, client=actor.client, details={"file": path.name})
                flash("工作日历已更新；此后计算的时限按新日历执行，已有时限不变。", "success")
                return redirect(url_for("staff.calendar_page"), code=303)
    try:
        calendar, problem = load_calendar(settings()), None
    except CalendarError as exc:
        calendar, problem = None, str(exc)
    html = render_template("staff/calendar.html", form=form, calendar=calendar, problem=problem,
                           file=calendar_file(settings()).name)
    return html, status
