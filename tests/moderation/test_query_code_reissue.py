"""补发查询码: a clerk or reviewer gives a checked citizen a new query code; the old one stops working.

The new code is shown once, on a no-store page, to the staff member who asked for it; it never
appears in a URL, a cookie, a flash message, a log line, a mail, the audit log or the timeline.
"""
from __future__ import annotations

import json
import logging
import re
from html import unescape

import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.audit.log import verify
from feedback_app.core import querycode
from feedback_app.core.models import AuditEntry, Channel, Kind, OutboxMessage, ReplyBy, Submission, SubmissionEvent
from feedback_app.core.permissions import Actor
from feedback_app.core.querycode import QUERY_CODE_KEY
from feedback_app.intake.service import Draft, create_submission
from feedback_app.moderation import actions, query_codes
from tests.auth.helpers import client_as, create_team, csrf_of
from tests.conftest import make_settings
from tests.factories import create_web_submission
from tests.public.test_no_leaks import Collector, decode_session_cookie, rendered, spellings

SHOWN = re.compile(r'id="query-code">([^<]+)<')
GROUPS_OF_FOUR = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){3}$")
CONTACT = dict(name="王小明", phone="+8613800138000", address="广州市黄埔区某路1号")


@pytest.fixture
def team(app, session):
    return create_team(session)


def submission_of(session, settings, bulletin, *, channel=Channel.web, unit=None, **fields):
    """A stored submission of unit ``unit`` (the code given at intake is returned too)."""
    if channel == Channel.web:
        submission, code = create_web_submission(session, settings, bulletin=bulletin, **fields)
    else:
        draft = Draft(bulletin_id=bulletin.id, item_number=5, channel=channel, kind=Kind.suggestion,
                      body="来信反映：第5项整改中提到的涉企检查计划至今没有在网站公开，请督促落实。",
                      reply_by=ReplyBy(fields.pop("reply_by", "letter")), **fields)
        receipt = create_submission(session, settings, draft)
        session.commit()
        submission, code = session.scalar(select(Submission).where(Submission.reference == receipt.reference)), None
    if unit is not None:
        submission.unit_id = unit.id
        session.commit()
    return submission, code


def fresh(session, reference) -> Submission:
    session.rollback()
    session.expire_all()
    return session.scalar(select(Submission).where(Submission.reference == reference))


def page_of(c, reference) -> str:
    response = c.get(f"/staff/submissions/{reference}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def reissue(c, reference, **data):
    """POST the form as the submission page gives it (its version and CSRF token), with ``data``."""
    html = page_of(c, reference)
    version = re.search(r'action="/staff/submissions/[^"]+/query-code">.*?name="version" value="(\d+)"', html, re.S)
    payload = {**csrf_of(html), "version": version.group(1) if version else "", **data}
    return c.post(f"/staff/submissions/{reference}/query-code", data=payload)


def tracks(app, reference, code) -> bool:
    citizen = app.test_client()
    response = citizen.post("/track", data={"reference": reference, "query_code": code})
    return response.status_code == 303


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def field_error(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">(.*?)</p>', html, re.S)
    assert match, f"no error next to {field_id}"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def audit_entries(session, reference):
    session.rollback()
    return session.scalars(select(AuditEntry).where(AuditEntry.target == reference,
                                                    AuditEntry.action == query_codes.ACTION)).all()


# ---------- the happy path ----------

@pytest.mark.parametrize("role", ["clerk", "reviewer"])
def test_a_new_code_replaces_the_old_one_and_is_shown_once(app, session, settings, bulletin, team, role):
    submission, old = submission_of(session, settings, bulletin, unit=team["a"], **CONTACT)
    reference, old_hash, old_version = submission.reference, submission.query_code_hash, submission.version
    assert tracks(app, reference, old)
    c = client_as(app, team[role])

    page = page_of(c, reference)
    assert "补发查询码" in page and 'id="qc-method-0"' in page and "来电号码与登记的电话号码一致" in page

    response = reissue(c, reference, method="phone", note="来电号码尾号8000，与登记一致")
    assert response.status_code == 303, text_of(response.get_data(as_text=True))[:300]
    assert response.headers["Location"] == f"/staff/submissions/{reference}/query-code"

    shown = c.get(response.headers["Location"])
    assert shown.status_code == 200
    assert shown.headers["Cache-Control"] == "no-store"
    html = shown.get_data(as_text=True)
    code = SHOWN.search(html).group(1)
    assert GROUPS_OF_FOUR.match(code), code
    words = text_of(html)
    assert "读给反映人" in words and "已经失效" in words and "只显示这一次" in words
    assert "逐个读出：" + querycode.spoken(code) in words

    # once: a second look (a refresh, the back button) shows nothing
    again = c.get(f"/staff/submissions/{reference}/query-code")
    assert again.status_code == 200 and again.headers["Cache-Control"] == "no-store"
    assert not [s for s in spellings(code.replace("-", "")) if s in again.get_data(as_text=True)]
    assert "没有可显示的查询码" in again.get_data(as_text=True)

    # the new code works on /track, the old one no longer does
    assert tracks(app, reference, code)
    assert tracks(app, reference, code.lower().replace("-", " "))
    assert not tracks(app, reference, old)
    stored = fresh(session, reference)
    assert stored.query_code_hash != old_hash
    assert querycode.matches(settings.subkey(QUERY_CODE_KEY), code, stored.query_code_hash)
    assert stored.version == old_version + 1  # a change like any other: an open stale form is a conflict
    assert stored.state == "received"


def test_the_audit_says_who_how_and_for_what_but_never_the_code(app, session, settings, bulletin, team):
    submission, _ = submission_of(session, settings, bulletin, **CONTACT)
    c = client_as(app, team["clerk"])
    reissue(c, submission.reference, method="id_document", note="来访，核验身份证后四位1234")
    code = SHOWN.search(c.get(f"/staff/submissions/{submission.reference}/query-code").get_data(as_text=True)).group(1)

    (entry,) = audit_entries(session, submission.reference)
    assert entry.actor == "deng.ji" and entry.actor_id == team["clerk"].id
    assert entry.client == "127.0.0.1"
    assert json.loads(entry.details) == {"method": "id_document", "note": "来访，核验身份证后四位1234"}
    row = " ".join(str(v) for v in (entry.actor, entry.action, entry.target, entry.client, entry.details,
                                     entry.prev_hash, entry.entry_hash))
    assert not [s for s in spellings(code.replace("-", "")) if s in row]
    assert verify(session, settings).broken_id is None

    # the staff timeline has an internal step; the citizen's does not
    event = session.scalar(select(SubmissionEvent).where(SubmissionEvent.submission_id == submission.id,
                                                         SubmissionEvent.action == query_codes.ACTION))
    assert event.public is False and event.text == "核验方式：来访时核验身份证件，与登记的姓名一致"
    timeline = text_of(page_of(c, submission.reference))
    assert "补发查询码（内部） 核验方式：来访时核验身份证件" in timeline
    citizen = app.test_client()
    citizen.post("/track", data={"reference": submission.reference, "query_code": code})
    status = citizen.get("/track/status").get_data(as_text=True)
    assert "已收到" in status and "补发" not in status and "核验方式" not in status


def test_a_letter_writer_who_never_saw_a_code_gets_one_with_the_written_reply(app, session, settings, bulletin,
                                                                              team):
    submission, _ = submission_of(session, settings, bulletin, channel=Channel.letter, name="李某",
                                  address="广州市黄埔区大沙地东路1号 510700")
    c = client_as(app, team["reviewer"])
    page = page_of(c, submission.reference)
    assert "随书面答复寄送到登记的通信地址" in page and "来电号码与登记的电话号码一致" not in page  # no phone on record
    response = reissue(c, submission.reference, method="letter")
    assert response.status_code == 303
    html = c.get(response.headers["Location"]).get_data(as_text=True)
    assert "抄写在寄给反映人的书面答复中" in text_of(html)
    assert tracks(app, submission.reference, SHOWN.search(html).group(1))


def test_an_email_sender_can_be_checked_on_the_phone(app, session, settings, bulletin, team):
    with app.app_context():  # the acknowledgement mail is rendered at intake
        submission, _ = submission_of(session, settings, bulletin, channel=Channel.email, email="cz@example.com",
                                      reply_by="email")
    c = client_as(app, team["clerk"])
    mails_before = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1))
    response = reissue(c, submission.reference, method="email_details", note="来电人说出邮箱并复述了反映内容")
    assert response.status_code == 303
    code = SHOWN.search(c.get(response.headers["Location"]).get_data(as_text=True)).group(1)
    assert tracks(app, submission.reference, code)
    session.rollback()
    # no mail goes out, and none carries the code
    assert session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)) == mails_before
    for mail in session.scalars(select(OutboxMessage)):
        assert not [s for s in spellings(code.replace("-", "")) if s in mail.subject + mail.body]


def test_the_service_flushes_and_never_commits(app, session, settings, bulletin, team):
    submission, old = submission_of(session, settings, bulletin, **CONTACT)
    actor = Actor(session.get(type(team["clerk"]), team["clerk"].id), "10.0.0.1")
    code = query_codes.reissue_query_code(session, settings, actor, submission, method="phone", note="")
    assert querycode.matches(settings.subkey(QUERY_CODE_KEY), code, submission.query_code_hash)
    assert session.scalar(select(AuditEntry.action).where(AuditEntry.target == submission.reference)) \
        == query_codes.ACTION  # flushed: visible in this transaction
    session.rollback()
    assert tracks(app, submission.reference, old) and not tracks(app, submission.reference, code)
    assert audit_entries(session, submission.reference) == []


def test_a_nonce_gives_the_same_code_and_random_codes_differ(app, session, settings, bulletin, team):
    submission, _ = submission_of(session, settings, bulletin, **CONTACT)
    actor = Actor(session.get(type(team["clerk"]), team["clerk"].id), None)
    derived = query_codes.reissue_query_code(session, settings, actor, submission, method="phone", nonce="n-1")
    assert derived == querycode.code_for_nonce(settings.subkey(QUERY_CODE_KEY), "n-1")
    assert derived != querycode.code_for_token(settings.subkey(QUERY_CODE_KEY), "n-1")
    first = query_codes.reissue_query_code(session, settings, actor, submission, method="phone")
    second = query_codes.reissue_query_code(session, settings, actor, submission, method="phone")
    assert len({derived, first, second}) == 3 and all(len(c) == querycode.LENGTH for c in (first, second))
    session.rollback()


# ---------- refusals ----------

@pytest.mark.parametrize("role", ["admin", "handler"])
def test_admins_and_handlers_are_refused_like_any_action_not_theirs(app, session, settings, bulletin, team, role):
    submission, old = submission_of(session, settings, bulletin, unit=team["a"], **CONTACT)
    c = client_as(app, team[role])
    assert "补发查询码" not in page_of(c, submission.reference)
    for response in (c.post(f"/staff/submissions/{submission.reference}/query-code",
                            data={"version": str(submission.version), "method": "phone"}),
                     c.get(f"/staff/submissions/{submission.reference}/query-code")):
        assert response.status_code == 403 and "无权访问" in response.get_data(as_text=True)
    assert tracks(app, submission.reference, old)
    assert audit_entries(session, submission.reference) == []


def test_a_handler_of_another_unit_learns_nothing(app, session, settings, bulletin, team):
    submission, old = submission_of(session, settings, bulletin, unit=team["a"], **CONTACT)
    c = client_as(app, team["other_handler"])
    for method in ("GET", "POST"):
        answers = []
        for reference in (submission.reference, "HP2099-999999"):
            path = f"/staff/submissions/{reference}/query-code"
            r = c.get(path) if method == "GET" else c.post(path, data={"version": "1", "method": "phone"})
            answers.append((r.status_code, r.headers.get("Content-Type"), r.get_data()))
        # handlers may not reissue codes at all: refused before the reference is looked up
        assert answers[0] == answers[1] and answers[0][0] == 403
    assert tracks(app, submission.reference, old)


def test_an_anonymous_submission_is_refused(app, session, settings, bulletin, team):
    submission, old = submission_of(session, settings, bulletin, anonymous=True)
    c = client_as(app, team["clerk"])
    page = page_of(c, submission.reference)
    assert "此件为匿名反映，无法核实来人就是反映人，不能补发查询码" in text_of(page)
    assert f'action="/staff/submissions/{submission.reference}/query-code"' not in page
    response = c.post(f"/staff/submissions/{submission.reference}/query-code",
                      data={"version": str(submission.version), "method": "phone"})
    assert response.status_code == 400
    assert "此件为匿名反映" in text_of(response.get_data(as_text=True))
    assert tracks(app, submission.reference, old)
    assert audit_entries(session, submission.reference) == []


def test_a_merged_submission_is_refused_and_points_to_where_it_went(app, session, settings, bulletin, team):
    earlier, _ = submission_of(session, settings, bulletin, **CONTACT)
    later, old = submission_of(session, settings, bulletin, body="同一事项的第二次反映，请一并核查处理。", **CONTACT)
    reviewer = Actor(session.get(type(team["reviewer"]), team["reviewer"].id), None)
    actions.merge(session, settings, reviewer, later, into_reference=earlier.reference,
                  expected_version=later.version)
    session.commit()
    c = client_as(app, team["reviewer"])
    page = page_of(c, later.reference)
    assert f'href="/staff/submissions/{earlier.reference}">{earlier.reference}</a> 办理，不再单独补发查询码' in page
    response = c.post(f"/staff/submissions/{later.reference}/query-code",
                      data={"version": str(fresh(session, later.reference).version), "method": "phone"})
    assert response.status_code == 400
    assert f"此件已合并到受理编号 {earlier.reference} 办理" in text_of(response.get_data(as_text=True))
    assert tracks(app, later.reference, old)
    assert audit_entries(session, later.reference) == []


def test_a_method_is_required_and_must_fit_the_record_and_nothing_typed_is_lost(app, session, settings, bulletin,
                                                                                 team):
    submission, old = submission_of(session, settings, bulletin, name="王小明")  # a name, no phone
    c = client_as(app, team["clerk"])
    note = "来人自称反映人，已请其出示证件"

    response = reissue(c, submission.reference, note=note)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(html, "qc-method") == "请选择核验反映人身份的方式"
    assert re.search(r'<fieldset class="field radios has-error"[^>]*aria-describedby="qc-method-error"', html)
    assert f">{note}</textarea>" in html and "查询码未补发" in text_of(html)

    response = reissue(c, submission.reference, method="phone", note=note)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(html, "qc-method") == "此件未登记电话号码，不能以来电号码核验，请选择其他方式"
    assert f">{note}</textarea>" in html

    response = reissue(c, submission.reference, method="id_document", note="长" * (query_codes.NOTE_MAX + 1))
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "补充说明不能超过" in field_error(html, "qc-note")
    assert re.search(r'<input type="radio" id="qc-method-\d" name="method" value="id_document" checked>', html)

    assert tracks(app, submission.reference, old)
    assert audit_entries(session, submission.reference) == []


def test_a_stale_form_is_a_conflict_and_keeps_what_was_typed(app, session, settings, bulletin, team):
    submission, _ = submission_of(session, settings, bulletin, **CONTACT)
    first, second = client_as(app, team["clerk"]), client_as(app, team["reviewer"])
    stale = page_of(second, submission.reference)
    assert reissue(first, submission.reference, method="phone").status_code == 303
    code = SHOWN.search(first.get(f"/staff/submissions/{submission.reference}/query-code")
                        .get_data(as_text=True)).group(1)
    version = re.search(r'/query-code">.*?name="version" value="(\d+)"', stale, re.S).group(1)
    response = second.post(f"/staff/submissions/{submission.reference}/query-code",
                           data={"version": version, "method": "phone", "note": "第二位工作人员的说明"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "可能已由他人补发查询码" in text_of(html)
    assert ">第二位工作人员的说明</textarea>" in html
    assert "补发查询码（内部）" in text_of(html)  # the page now shows what happened
    assert tracks(app, submission.reference, code)  # the first clerk's code still works
    assert len(audit_entries(session, submission.reference)) == 1


def test_the_code_is_for_the_staff_member_who_asked_and_a_replaced_one_is_not_shown(app, session, settings,
                                                                                   bulletin, team):
    submission, _ = submission_of(session, settings, bulletin, **CONTACT)
    clerk = client_as(app, team["clerk"])
    assert reissue(clerk, submission.reference, method="phone").status_code == 303
    # before the clerk looks, a reviewer reissues again: the clerk's code no longer works, so is not shown
    reviewer = client_as(app, team["reviewer"])
    assert reissue(reviewer, submission.reference, method="phone").status_code == 303
    html = clerk.get(f"/staff/submissions/{submission.reference}/query-code").get_data(as_text=True)
    assert SHOWN.search(html) is None and "没有可显示的查询码" in html
    assert SHOWN.search(reviewer.get(f"/staff/submissions/{submission.reference}/query-code")
                        .get_data(as_text=True))


def test_a_pending_code_waits_for_its_own_page(app, session, settings, bulletin, team):
    one, _ = submission_of(session, settings, bulletin, **CONTACT)
    two, _ = submission_of(session, settings, bulletin, body="另一件反映，内容与前一件不同，请核查。", **CONTACT)
    c = client_as(app, team["clerk"])
    assert reissue(c, one.reference, method="phone").status_code == 303
    assert SHOWN.search(c.get(f"/staff/submissions/{two.reference}/query-code").get_data(as_text=True)) is None
    assert SHOWN.search(c.get(f"/staff/submissions/{one.reference}/query-code").get_data(as_text=True))


# ---------- the code stays out of logs, URLs, cookies and flash messages ----------

@pytest.fixture
def debug_app(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, log_level="DEBUG"))
    yield app
    app.extensions["db_engine"].dispose()


def test_the_code_is_in_no_log_line_url_header_or_cookie(debug_app, session, settings, team, bulletin, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("feedback_app", "werkzeug", "flask_wtf"):
        caplog.set_level(logging.DEBUG, logger=name)
    own = Collector()
    debug_app.logger.addHandler(own)
    try:
        submission, _ = submission_of(session, settings, bulletin, **CONTACT)
        c = client_as(debug_app, team["clerk"])
        debug_app.logger.debug("reissue starts")
        responses = {"post": reissue(c, submission.reference, method="phone", note="核对来电号码")}
        cookie_after_post = c.get_cookie("fb_session").value
        responses["show"] = c.get(responses["post"].headers["Location"])
        code = SHOWN.search(responses["show"].get_data(as_text=True)).group(1).replace("-", "")
        responses["again"] = c.get(responses["post"].headers["Location"])
        responses["detail"] = c.get(f"/staff/submissions/{submission.reference}")
        cookie_after_show = c.get_cookie("fb_session").value
    finally:
        debug_app.logger.removeHandler(own)
    secrets = spellings(code)

    assert any(r.getMessage() == "reissue starts" for r in caplog.records)
    for record in caplog.records + own.records:
        assert not [s for s in secrets if s in rendered(record)], (record.name, rendered(record))
    for step, response in responses.items():
        for header, value in response.headers.items():
            assert not [s for s in secrets if s in value], (step, header)
        if step != "show":
            assert not [s for s in secrets if s in response.get_data(as_text=True)], step
    for value in (cookie_after_post, cookie_after_show):
        decoded = decode_session_cookie(value)
        assert not [s for s in secrets if s in decoded], decoded
        assert "_flashes" not in decoded or not [s for s in secrets if s in decoded]
    assert "reissued_query_code" in decode_session_cookie(cookie_after_post)
    assert "reissued_query_code" not in decode_session_cookie(cookie_after_show)


# ---------- CSRF ----------

def test_without_the_csrf_token_nothing_is_reissued_and_nothing_typed_is_lost(app, database_url, tmp_path, session,
                                                                             settings, bulletin, team):
    """The CSRF-on app posts; the suite's app (CSRF off, the same database) plays the citizen on /track."""
    csrf_app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    try:
        submission, old = submission_of(session, settings, bulletin, **CONTACT)
        c = client_as(csrf_app, team["clerk"])
        page = page_of(c, submission.reference)
        path = f"/staff/submissions/{submission.reference}/query-code"
        refused = c.post(path, data={"version": str(submission.version), "method": "phone", "note": "核对来电号码"})
        html = refused.get_data(as_text=True)
        assert refused.status_code == 400 and "查询码未补发" in text_of(html)
        assert "页面已过期：提交的内容缺少安全校验信息" in text_of(html)
        assert ">核对来电号码</textarea>" in html
        assert re.search(r'value="phone" checked>', html)
        assert tracks(app, submission.reference, old)
        done = c.post(path, data={**csrf_of(page), "version": str(submission.version), "method": "phone"})
        assert done.status_code == 303
        assert not tracks(app, submission.reference, old)
    finally:
        csrf_app.extensions["db_engine"].dispose()
