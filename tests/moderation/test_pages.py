"""The staff pages: a working day from acceptance to the citizen reading the reply."""
import io
import re

import pytest
from sqlalchemy import select

from feedback_app.audit.log import verify
from feedback_app.core.models import AuditEntry, Deadline, OutboxMessage, Submission
from tests.auth.helpers import client_as, create_team
from tests.factories import create_web_submission, receipt_of, submit


@pytest.fixture
def team(app, session):
    return create_team(session)


def act(c, reference, action, **data):
    page = c.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', page)
    payload = {"version": version.group(1) if version else "", **data}
    return c.post(f"/staff/submissions/{reference}/{action}", data=payload)


def fresh(session, reference):
    session.rollback()
    return session.scalar(select(Submission).where(Submission.reference == reference))


def test_a_working_day(app, session, settings, bulletin, team):
    citizen = app.test_client()
    submit(citizen, body="建议第五项整改公开办理进度，方便群众监督。", reply_by="email", email="cz@example.com",
           name="陈某")
    reference, code = receipt_of(citizen)
    reviewer = client_as(app, team["reviewer"])
    queue = reviewer.get("/staff/").get_data(as_text=True)
    assert reference in queue and "已收到，等待受理" in queue

    assert act(reviewer, reference, "accept", kind="suggestion").status_code == 303
    assert act(reviewer, reference, "assign", unit=str(team["a"].id),
               handler=str(team["handler"].id)).status_code == 303
    assert fresh(session, reference).state == "assigned"

    handler = client_as(app, team["handler"])
    page = handler.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    assert "陈*" in page and "cz@example.com" not in page and "c***@example.com" in page
    assert act(handler, reference, "draft_reply", body="经核查，第五项整改进展已在区政府网站按月公开。").status_code == 303
    assert act(handler, reference, "approve_reply").status_code == 403  # handlers draft, reviewers approve

    assert act(reviewer, reference, "approve_reply").status_code == 303
    submission = fresh(session, reference)
    assert submission.state == "answered"
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    assert mail.recipient == "cz@example.com" and "按月公开" in mail.body and code not in mail.body

    citizen.post("/track", data={"reference": reference, "query_code": code})
    status = citizen.get("/track/status").get_data(as_text=True)
    assert "按月公开" in status and "已答复" in status

    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    for expected in ("login", "accept", "assign", "reply_drafted", "reply_approved"):
        assert expected in actions
    assert verify(session, settings).broken_id is None


def test_acceptance_starts_and_meets_clocks(app, session, settings, bulletin, team):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, kind="request")
    reviewer = client_as(app, team["reviewer"])
    act(reviewer, submission.reference, "accept", kind="request")
    session.rollback()
    kinds = {d.kind: d for d in session.scalars(select(Deadline).where(Deadline.submission_id == submission.id))}
    assert kinds["inform"].met_at is not None and kinds["conclude"].met_at is None
    assert "60" in kinds["conclude"].rule
    assert act(reviewer, submission.reference, "extend", days="20", reason="需要现场核查").status_code == 303
    session.rollback()
    conclude = session.get(Deadline, kinds["conclude"].id)
    assert conclude.extension_days == 20 and conclude.extension_reason == "需要现场核查"
    assert conclude.extension_approved_by_id == team["reviewer"].id
    again = act(reviewer, submission.reference, "extend", days="5", reason="再次延期")
    assert again.status_code == 400 and "延长" in again.get_data(as_text=True)
    session.rollback()
    assert session.get(Deadline, kinds["conclude"].id).extension_days == 20


def test_stale_form_gets_a_conflict_message(app, session, settings, bulletin, team):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    first, second = client_as(app, team["reviewer"]), client_as(app, team["admin"])
    stale = re.search(r'name="version" value="(\d+)"',
                      second.get(f"/staff/submissions/{submission.reference}").get_data(as_text=True)).group(1)
    assert act(first, submission.reference, "accept", kind="suggestion").status_code == 303
    response = second.post(f"/staff/submissions/{submission.reference}/reject",
                           data={"version": stale, "reason": "no_substance", "note": "内容不具体"})
    assert response.status_code == 409
    assert "已被他人处理" in response.get_data(as_text=True)
    assert fresh(session, submission.reference).state == "accepted"


def test_reject_needs_a_reason_from_the_list_and_tells_the_citizen(app, session, settings, bulletin, team):
    submission, code = create_web_submission(session, settings, bulletin=bulletin)
    reviewer = client_as(app, team["reviewer"])
    bad = act(reviewer, submission.reference, "reject", reason="because", note="x")
    assert bad.status_code == 400 and "请选择不予受理的理由" in bad.get_data(as_text=True)
    assert act(reviewer, submission.reference, "reject", reason="out_of_scope",
               note="请向区人民法院反映").status_code == 303
    citizen = app.test_client()
    citizen.post("/track", data={"reference": submission.reference, "query_code": code})
    assert "请向区人民法院反映" in citizen.get("/track/status").get_data(as_text=True)


def test_merge_into_an_earlier_submission(app, session, settings, bulletin, team):
    earlier, _ = create_web_submission(session, settings, bulletin=bulletin, body="第一次反映道路占道施工问题。")
    later, _ = create_web_submission(session, settings, bulletin=bulletin, body="再次反映道路占道施工问题。")
    reviewer = client_as(app, team["reviewer"])
    wrong = act(reviewer, earlier.reference, "merge", into=later.reference)
    assert wrong.status_code == 400 and "更早" in wrong.get_data(as_text=True)
    assert act(reviewer, later.reference, "merge", into=earlier.reference).status_code == 303
    merged = fresh(session, later.reference)
    assert merged.state == "merged" and merged.merged_into_id == earlier.id


def test_handler_sees_only_its_unit_and_masked_identity_until_revealed(app, session, settings, bulletin, team):
    mine, _ = create_web_submission(session, settings, bulletin=bulletin, name="王小明", phone="+8613800138000",
                                    reply_by="phone", body="反映某项目施工围蔽时间过长的问题。")
    theirs, _ = create_web_submission(session, settings, bulletin=bulletin, body="反映公交线路调整的问题。")
    mine.state, mine.unit_id = "assigned", team["a"].id
    theirs.state, theirs.unit_id = "assigned", team["b"].id
    session.commit()
    handler = client_as(app, team["handler"])
    queue = handler.get("/staff/").get_data(as_text=True)
    assert mine.reference in queue and theirs.reference not in queue
    assert handler.get(f"/staff/submissions/{theirs.reference}").status_code == 404
    assert handler.get("/staff/submissions/HP2099-999999").status_code == 404
    page = handler.get(f"/staff/submissions/{mine.reference}").get_data(as_text=True)
    assert "王**" in page and "138****8000" in page and "13800138000" not in page

    reviewer = client_as(app, team["reviewer"])
    refused = act(reviewer, mine.reference, "reveal", reason="")
    assert refused.status_code == 400
    assert act(reviewer, mine.reference, "reveal", reason="需要电话核实情况").status_code == 303
    page = handler.get(f"/staff/submissions/{mine.reference}").get_data(as_text=True)
    assert "王小明" in page and "+8613800138000" in page
    session.rollback()
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "identity_revealed"))
    assert entry.target == mine.reference and "需要电话核实情况" in entry.details
    assert act(handler, mine.reference, "reveal", reason="自己解除").status_code == 403


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_attachments_download_safely_and_are_audited(app, session, settings, bulletin, team):
    citizen = app.test_client()
    submit(citizen, attachments=[(io.BytesIO(PNG), "现场<照片>.png")])
    reference, _ = receipt_of(citizen)
    submission = fresh(session, reference)
    attachment = submission.attachments[0]
    url = f"/staff/submissions/{reference}/attachments/{attachment.id}"
    reviewer = client_as(app, team["reviewer"])
    assert reviewer.get(url).status_code == 405  # a recorded download is a POST
    response = reviewer.post(url)
    assert response.status_code == 200 and response.data == PNG
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    session.rollback()
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "attachment_downloaded")).target == reference
    handler_b = client_as(app, team["other_handler"])
    assert handler_b.post(url).status_code == 404
    assert app.test_client().post(url).status_code == 302  # anonymous: to the login page


def test_search_words_never_travel_in_a_url(app, session, settings, bulletin, team):
    create_web_submission(session, settings, bulletin=bulletin, body="反映城中村改造后员工宿舍不足的问题。")
    create_web_submission(session, settings, bulletin=bulletin, body="建议增加公交线路班次。")
    reviewer = client_as(app, team["reviewer"])
    response = reviewer.post("/staff/search", data={"q": "员工宿舍"})
    assert response.status_code == 303 and "宿舍" not in response.headers["Location"]
    page = reviewer.get(response.headers["Location"]).get_data(as_text=True)
    assert "城中村改造后员工宿舍" in page and "公交线路班次" not in page


def test_queue_filters_and_marks_overdue(app, session, settings, bulletin, team):
    from datetime import date, timedelta

    late, _ = create_web_submission(session, settings, bulletin=bulletin, body="超期未答复的一件意见内容。")
    late.next_due_on = date.today() - timedelta(days=2)
    session.commit()
    reviewer = client_as(app, team["reviewer"])
    page = reviewer.get("/staff/?due=overdue").get_data(as_text=True)
    assert late.reference in page and "已超期" in page
    assert late.reference not in reviewer.get("/staff/?due=soon").get_data(as_text=True)
    assert late.reference not in reviewer.get("/staff/?state=accepted").get_data(as_text=True)


def test_letter_reply_is_printed_and_its_posting_recorded(app, session, settings, bulletin, team):
    submission, _ = create_web_submission(session, settings, bulletin=bulletin, name="李四",
                                          address="广州市黄埔区某路1号", reply_by="letter")
    reviewer = client_as(app, team["reviewer"])
    act(reviewer, submission.reference, "accept", kind="suggestion")
    act(reviewer, submission.reference, "draft_reply", body="您反映的问题已转相关部门研究办理。")
    act(reviewer, submission.reference, "approve_reply")
    reply = fresh(session, submission.reference).replies[0]
    assert reply.approved_at is not None and reply.delivered_at is None
    letter = reviewer.get(f"/staff/submissions/{submission.reference}/replies/{reply.id}/letter")
    text = letter.get_data(as_text=True)
    assert "广州市黄埔区某路1号" in text and submission.reference in text and "转相关部门研究办理" in text
    assert act(reviewer, submission.reference, "record_delivery", reply=str(reply.id),
               note="2026年11月27日挂号寄出").status_code == 303
    assert fresh(session, submission.reference).replies[0].delivered_at is not None


def test_deadlines_report_lists_overdue(app, session, settings, bulletin):
    from datetime import date, timedelta

    submission, _ = create_web_submission(session, settings, bulletin=bulletin)
    result = app.test_cli_runner().invoke(
        args=["deadlines", "report", "--date", (date.today() + timedelta(days=40)).isoformat()])
    assert result.exit_code == 0 and submission.reference in result.output
