"""What every failure answers: each 500, whatever raised it, names one incident on the page and in its log
line; the 503 "系统暂时无法保存" gives a number to call from the first request after a start, or says
where else to turn when the site knows none."""
from __future__ import annotations

import errno
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import abort
from sqlalchemy import text

from feedback_app.app import create_app
from feedback_app.bulletin.service import import_bulletin
from feedback_app.web.transaction import get_session
from feedback_app.web.unavailable import NO_PHONE
from tests.auth.helpers import client_as, create_staff
from tests.conftest import SEED, SEED_SLUG, fresh_database, make_settings
from tests.intake.test_staff_intake import hidden_fields, phone_data

INCIDENT_RE = re.compile(r"事件编号：([0-9A-F]{8})（如需咨询，请告知此编号）")
LINE_RE = re.compile(r"unhandled (\w+) on (GET|POST) (\S+) \(incident ([0-9A-F]{8})\)")
OFFICE_PHONE = "020-82370000"
BULLETIN_PHONE = "020-82378781"  # the seed bulletin's
CALL = "来电反映：园区道路改造拖延，请督促整改。"
PHONE_INTAKE = "/staff/intake/phone"


# --- every 500 has its incident number -------------------------------------------------------------

def incident_of(response, caplog, method: str, path: str, error: str) -> str:
    """The 500 page's incident number, which the one log line naming the failure carries too."""
    html = response.get_data(as_text=True)
    assert response.status_code == 500, html[:2000]
    match = INCIDENT_RE.search(html)
    assert match, html
    lines = [m.groups() for r in caplog.records if r.name == "feedback_app" and (m := LINE_RE.fullmatch(r.getMessage()))]
    assert lines == [(error, method, path, match.group(1))]
    return match.group(1)


@pytest.fixture
def routes(app, caplog):
    """Routes that fail in the ways these tests need, registered before the app's first request."""

    def eacces():  # the attachment store not writable by the site: a fault of the set-up, not a full disk
        raise OSError(errno.EACCES, "Permission denied", "/srv/feedback/attachments/ab/partial")

    def write_in_get():  # a write in a reading request's read-only transaction: a fault of the code
        get_session().execute(text("UPDATE audit_head SET last_id = last_id"))
        return "written"

    def plain():
        raise Exception("13800138000 张三")

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device")

    def aborted():
        abort(500)

    def fine():
        return "fine"

    def break_after(response):
        if response.get_data(as_text=True) == "fine":
            raise RuntimeError("an after-request hook failed")
        return response

    for rule, view in (("/eacces", eacces), ("/write-in-get", write_in_get), ("/plain", plain),
                       ("/full-disk", full_disk), ("/aborted", aborted), ("/fine", fine)):
        app.add_url_rule(rule, rule.strip("/"), view, methods=["GET", "POST"])
    app.after_request(break_after)
    caplog.set_level(logging.ERROR, logger="feedback_app")
    return app.test_client()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_os_error_that_is_no_full_disk_is_a_500_with_its_incident(routes, caplog, method):
    response = routes.open("/eacces", method=method, data={"body": "意见"} if method == "POST" else None)
    incident_of(response, caplog, method, "/eacces", "PermissionError")


def test_a_database_error_of_the_code_in_a_get_is_a_500_with_its_incident(routes, caplog, settings):
    response = routes.get("/write-in-get")
    # SQLite refuses the write with an OperationalError, PostgreSQL's read-only transaction with an InternalError
    error = "OperationalError" if settings.database_url.startswith("sqlite") else "InternalError"
    incident_of(response, caplog, "GET", "/write-in-get", error)


def test_a_plain_exception_is_a_500_with_its_incident_each_time_a_new_one(routes, caplog):
    numbers = set()
    for _ in range(2):
        caplog.clear()
        numbers.add(incident_of(routes.post("/plain", data={}), caplog, "POST", "/plain", "Exception"))
    assert len(numbers) == 2


def test_an_after_request_hook_that_fails_is_a_500_with_its_incident(routes, caplog):
    response = routes.get("/fine")
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "fine" not in html
    incident = INCIDENT_RE.search(html).group(1)
    ours = [r for r in caplog.records if r.name == "feedback_app" and LINE_RE.fullmatch(r.getMessage())]
    assert [LINE_RE.fullmatch(r.getMessage()).groups() for r in ours] == [("RuntimeError", "GET", "/fine", incident)]
    record = ours[0]  # with its traceback (which the log's redaction has already written out, or not yet)
    trace = record.exc_text or (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
    assert "RuntimeError: an after-request hook failed" in trace


def test_abort_500_has_its_incident_too(routes, caplog):
    incident_of(routes.get("/aborted"), caplog, "GET", "/aborted", "InternalServerError")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_full_disk_is_still_503_without_an_incident(routes, caplog, method):
    response = routes.open("/full-disk", method=method, data={"body": "意见"} if method == "POST" else None)
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[:2000]
    assert ("系统暂时无法保存" if method == "POST" else "系统暂时无法访问") in html
    assert "事件编号" not in html
    assert not [r for r in caplog.records if r.name == "feedback_app"]


# --- the 503 page's number, from the first request after a start ----------------------------------

@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    """Another program holding the SQLite database's write lock."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
    finally:
        holder.close()  # and its transaction with it


def staff_post_after_a_restart(sqlite_template, tmp_path: Path, office_phone: str, bulletin_before_start: bool):
    """The site starts again (a new app on the database another worker of the site uses), and its first
    request is a clerk's POST of the phone form, while another program holds the write lock. The bulletin
    was imported before the start, or only after it (by the command line: the new app never read it)."""
    url = fresh_database(sqlite_template, tmp_path)  # SQLite whatever the run is against: its lock is held
    other = create_app(make_settings(url, tmp_path, office_phone=office_phone))  # the worker the clerk used
    sessions = other.extensions["db_sessionmaker"]

    def import_seed() -> None:
        with sessions() as session:
            import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
            session.commit()

    with sessions() as session:
        clerk = create_staff(session, username="deng.ji", role="clerk", display_name="邓记")
    if bulletin_before_start:
        import_seed()
    app = create_app(make_settings(url, tmp_path, office_phone=office_phone, database_busy_seconds=0.3))
    try:
        if not bulletin_before_start:
            import_seed()
        staff = client_as(other, clerk)
        form = staff.get(PHONE_INTAKE).get_data(as_text=True)
        taken_by = re.search(r'<select id="taken_by" name="taken_by"[^>]*>\s*<option value="(\d+)"', form).group(1)
        cookie = staff.get_cookie("staff_session", path="/staff")
        assert cookie is not None
        other.extensions["db_engine"].dispose()

        client = app.test_client()
        client.set_cookie("staff_session", cookie.value, path="/staff")
        data = {**hidden_fields(form), **phone_data(app.extensions["settings"], body=CALL, line=None),
                "taken_by": taken_by}
        with write_lock_held(url):
            response = client.post(PHONE_INTAKE, data=data, content_type="multipart/form-data")
    finally:
        app.extensions["db_engine"].dispose()
        other.extensions["db_engine"].dispose()
    html = response.get_data(as_text=True)
    assert response.status_code == 503, html[:2000]
    assert "系统暂时无法保存" in html and CALL in html  # the clerk's form, shown again as typed
    return html


@pytest.mark.parametrize(("setting", "expected", "not_given"), [("", BULLETIN_PHONE, OFFICE_PHONE),
                                                                 (OFFICE_PHONE, OFFICE_PHONE, BULLETIN_PHONE)])
def test_the_first_request_after_a_start_failing_gives_a_number_to_call(
        sqlite_template, tmp_path, setting, expected, not_given):
    html = staff_post_after_a_restart(sqlite_template, tmp_path, setting, bulletin_before_start=True)
    assert f"请拨打 {expected}" in html
    assert f"请拨打 {not_given}" not in html and NO_PHONE not in html


def test_with_no_number_known_the_503_says_where_else_to_turn(sqlite_template, tmp_path):
    html = staff_post_after_a_restart(sqlite_template, tmp_path, "", bulletin_before_start=False)
    assert NO_PHONE in html and "请拨打" not in html


def test_the_full_503_page_says_where_else_to_turn_when_no_number_is_known(app, caplog):
    app.add_url_rule("/full-disk", "full_disk", _full_disk, methods=["POST"])  # not a form that keeps its input
    response = app.test_client().post("/full-disk", data={"body": "意见"})
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and NO_PHONE in html and "请拨打" not in html


def _full_disk():
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_start_on_a_database_that_cannot_be_read_is_logged_and_goes_on(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="feedback_app")
    url = f"sqlite:///{tmp_path / 'empty.db'}"  # no tables: every read fails
    app = create_app(make_settings(url, tmp_path))
    try:
        assert "office_phone" not in app.extensions
        assert any(r.name == "feedback_app.web.unavailable" and "phone could not be read" in r.getMessage()
                   for r in caplog.records)
    finally:
        app.extensions["db_engine"].dispose()


def test_a_start_remembers_the_latest_bulletins_phone(database_url, tmp_path):
    first = create_app(make_settings(database_url, tmp_path))
    with first.extensions["db_sessionmaker"]() as session:
        import_bulletin(session, SEED.read_text(encoding="utf-8"), SEED_SLUG)
        session.commit()
    assert "office_phone" not in first.extensions  # no bulletin when it started
    first.extensions["db_engine"].dispose()
    app = create_app(make_settings(database_url, tmp_path))
    try:
        assert app.extensions["office_phone"] == BULLETIN_PHONE
    finally:
        app.extensions["db_engine"].dispose()
