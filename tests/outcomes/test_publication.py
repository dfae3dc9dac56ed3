"""Publishing a comment and its reply under its item: consent, redaction, withdrawal, the pages."""
import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from feedback_app.audit.log import verify
from feedback_app.core.database import utcnow
from feedback_app.core.models import AuditEntry, Publication, Submission
from feedback_app.core.permissions import Actor
from feedback_app.outcomes import publication, published
from feedback_app.outcomes.redaction import digits_of
from tests.auth.helpers import client_as, create_team
from tests.conftest import SEED_SLUG
from tests.factories import create_reply, create_web_submission

BULLETIN = f"/bulletins/{SEED_SLUG}"
NAME, PHONE, EMAIL = "王小明", "+8613800138000", "xiaoming.wang@example.com"
ADDRESS = "广州市黄埔区丰乐北路38号3栋502房"
ID_NUMBER = "44010619900101123X"
BODY = (
    "我叫王小明，家住黄埔区丰乐北路38号3栋502房。第5项整改说要压减涉企会议，但上周我们企业又被通知参加三次会议，"
    "每次都只提前一天。请打我的手机 138 0013 8000 或 +86-138-0013-8000，也可打座机 020-8888 6666，"
    "邮箱 xiaoming.wang@example.com，身份证号 44010619900101123X，方便核实。"
)
REPLY = "王小明同志：经核查，区有关部门已将涉企会议压减三成，并要求至少提前三天通知。已致电13800138000回访。"
# Every spelling of a personal detail the submission holds or the body names.
LEAKS = ("王小明", "小明", "13800138000", "0013", "xiaoming", "丰乐北路", "3栋502", ID_NUMBER, "44010619900101123",
         "8888", "example.com")


def assert_no_leak(text: str) -> None:
    flat = re.sub(r"\s", "", text)
    for leak in LEAKS:
        assert leak not in flat, f"{leak!r} is still in {text!r}"
    assert "13800138000" not in digits_of(text)


@pytest.fixture
def team(app, session):
    return create_team(session)


def answered(app, session, settings, bulletin, *, consent=True, unit=None, body=BODY, reply=REPLY, item=5,
             state="answered"):
    """A submission with the citizen's details in its fields, its body and its approved reply."""
    with app.app_context():  # the acknowledgement e-mail is rendered from a template
        s, _ = create_web_submission(session, settings, bulletin=bulletin, body=body, item=item, name=NAME,
                                     phone=PHONE, email=EMAIL, address=ADDRESS, publish_consent=consent)
    s.state, s.accepted_at, s.concluded_at = state, utcnow(), utcnow()
    s.unit_id = unit.id if unit else None
    session.commit()
    if reply:
        create_reply(session, submission=s, body=reply)
    return s


def textarea(html: str, name: str) -> str:
    match = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, f"no textarea {name}"
    return unescape(match.group(1))


def published_row(session, submission):
    session.rollback()
    return session.scalar(select(Publication).where(Publication.submission_id == submission.id))


def audit_actions(session):
    session.rollback()
    return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


# ---------- consent and roles: the service ----------

def test_service_refuses_without_consent(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin, consent=False)
    with app.test_request_context(), pytest.raises(publication.PublicationRefused, match="未同意"):
        publication.publish(session, settings, Actor(team["reviewer"], None), s, text="经隐去的意见内容。",
                            reply_text="经隐去的答复内容。")
    session.rollback()
    assert published_row(session, s) is None


@pytest.mark.parametrize("role", ["clerk", "handler"])
def test_service_refuses_roles_that_do_not_decide(app, session, settings, bulletin, team, role):
    s = answered(app, session, settings, bulletin, unit=team["a"])
    with app.test_request_context(), pytest.raises(publication.PublicationRefused, match="审核员或管理员"):
        publication.publish(session, settings, Actor(team[role], None), s, text="意见。", reply_text="答复。")


def test_service_refuses_what_was_not_accepted(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin, state="received", reply=None)
    assert "未受理" in publication.refusal(s, "reviewer")
    s.state = "rejected"
    assert "未受理" in publication.refusal(s, "reviewer")


def test_service_refuses_text_that_still_holds_personal_details(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    with app.test_request_context(), pytest.raises(publication.RedactionIncomplete) as caught:
        publication.publish(session, settings, Actor(team["reviewer"], None), s, text=BODY, reply_text=REPLY)
    kinds = {p.kind for p in caught.value.comment}
    assert {"name", "phone", "email", "address", "id_card"} <= kinds
    assert {"name", "phone"} <= {p.kind for p in caught.value.reply}
    session.rollback()
    assert published_row(session, s) is None


def test_service_publishes_the_proposal_and_withdraws(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    proposal = publication.propose(session, s)
    assert_no_leak(proposal.text)
    assert_no_leak(proposal.reply_text)
    actor = Actor(team["admin"], None)
    with app.test_request_context():
        row = publication.publish(session, settings, actor, s, text=proposal.text, reply_text=proposal.reply_text)
        with pytest.raises(publication.PublicationRefused, match="已经公开"):
            publication.publish(session, settings, actor, s, text=proposal.text, reply_text=proposal.reply_text)
        publication.withdraw(session, settings, actor, s, reason="反映人要求")
        assert row.withdrawn_at is not None
        again = publication.publish(session, settings, actor, s, text="修改后的意见。", reply_text="修改后的答复。")
    session.commit()
    assert again.id == row.id and again.withdrawn_at is None and again.text == "修改后的意见。"
    assert audit_actions(session).count("published") == 2
    assert "publication_withdrawn" in audit_actions(session)


# ---------- the pages ----------

def test_page_refuses_without_consent(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin, consent=False)
    reviewer = client_as(app, team["reviewer"])
    page = reviewer.get(f"/staff/publication/{s.reference}")
    html = page.get_data(as_text=True)
    assert page.status_code == 403 and "未同意公开" in html and 'name="text"' not in html
    posted = reviewer.post(f"/staff/publication/{s.reference}", data={"text": "意见。", "reply_text": "答复。"})
    assert posted.status_code == 403 and "未同意公开" in posted.get_data(as_text=True)
    assert published_row(session, s) is None
    detail = reviewer.get(f"/staff/submissions/{s.reference}").get_data(as_text=True)
    assert "未同意</strong>公开" in detail and f"/staff/publication/{s.reference}" not in detail
    assert "published" not in audit_actions(session)


@pytest.mark.parametrize("role", ["clerk", "handler"])
def test_only_reviewers_and_admins_open_the_redaction_page(app, session, settings, bulletin, team, role):
    s = answered(app, session, settings, bulletin, unit=team["a"])
    c = client_as(app, team[role])
    assert c.get(f"/staff/publication/{s.reference}").status_code == 403
    assert c.post(f"/staff/publication/{s.reference}", data={"text": "x"}).status_code == 403
    assert f"/staff/publication/{s.reference}" not in c.get(f"/staff/submissions/{s.reference}").get_data(as_text=True)
    assert app.test_client().get(f"/staff/publication/{s.reference}").status_code == 302


def test_publishing_through_the_page_leaves_no_personal_detail(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    other = answered(app, session, settings, bulletin, consent=False,
                     body="另一条未同意公开的意见，内容不应出现在通报页面。")
    reviewer = client_as(app, team["reviewer"])
    detail = reviewer.get(f"/staff/submissions/{s.reference}").get_data(as_text=True)
    assert f"/staff/publication/{s.reference}" in detail

    page = reviewer.get(f"/staff/publication/{s.reference}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "原文（不公开）" in html and "拟公开文本（可修改）" in html
    assert "<mark" in html and "丰乐北路38号3栋502房" in html  # the original, its findings marked
    text, reply_text = textarea(html, "text"), textarea(html, "reply_text")
    assert_no_leak(text)
    assert_no_leak(reply_text)
    assert "涉企会议" in text and "压减三成" in reply_text

    response = reviewer.post(f"/staff/publication/{s.reference}", data={"text": text, "reply_text": reply_text})
    assert response.status_code == 303
    row = published_row(session, s)
    assert row.text == text.strip() and row.reply_text == reply_text.strip()
    assert row.published_by_id == team["reviewer"].id and row.withdrawn_at is None
    assert_no_leak(row.text)
    assert_no_leak(row.reply_text)

    for path in (BULLETIN, f"{BULLETIN}/items/5/comments"):
        public = app.test_client().get(path).get_data(as_text=True)
        assert "上周我们企业又被通知参加三次会议" in public and "压减三成" in public
        assert_no_leak(public)
        assert s.reference not in public and "另一条未同意公开的意见" not in public
    actions = audit_actions(session)
    assert "published" in actions
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "published"))
    assert entry.target == s.reference and entry.actor == "shen.he"
    assert verify(session, settings).broken_id is None
    assert other.reference  # unpublished


@pytest.mark.parametrize("edited", [
    "意见内容。联系电话一三八零零一三八零零零。",
    "意见内容，署名王 小 明。",
    "意见内容，邮箱 XIAOMING.WANG＠EXAMPLE.COM。",
    "意见内容，另一位群众的手机 139-1234-5678。",
    "意见内容，身份证 440106199001011234。",
    "意见内容，住丰乐北路38号3栋502房。",
])
def test_the_server_checks_the_edited_text_again(app, session, settings, bulletin, team, edited):
    s = answered(app, session, settings, bulletin)
    reviewer = client_as(app, team["reviewer"])
    reply_text = textarea(reviewer.get(f"/staff/publication/{s.reference}").get_data(as_text=True), "reply_text")
    response = reviewer.post(f"/staff/publication/{s.reference}", data={"text": edited, "reply_text": reply_text})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "仍有个人信息" in html and 'aria-invalid="true"' in html
    assert textarea(html, "text") == edited  # what the reviewer typed is kept
    assert published_row(session, s) is None


def test_an_edited_reply_is_checked_too(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    reviewer = client_as(app, team["reviewer"])
    response = reviewer.post(f"/staff/publication/{s.reference}",
                             data={"text": "干净的意见内容。", "reply_text": "王小明同志：已办理。"})
    assert response.status_code == 400 and "答复内容仍含反映人的姓名" in response.get_data(as_text=True)
    response = reviewer.post(f"/staff/publication/{s.reference}", data={"text": "干净的意见内容。", "reply_text": ""})
    assert response.status_code == 400 and "请填写要公开的答复内容" in response.get_data(as_text=True)
    assert published_row(session, s) is None


def test_withdrawing_takes_it_off_the_bulletin_page(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    admin = client_as(app, team["admin"])
    assert admin.post(f"/staff/publication/{s.reference}",
                      data={"text": "建议继续压减涉企会议。", "reply_text": "已压减三成。"}).status_code == 303
    assert "建议继续压减涉企会议" in app.test_client().get(BULLETIN).get_data(as_text=True)
    detail = admin.get(f"/staff/submissions/{s.reference}").get_data(as_text=True)
    assert "撤回公开" in detail
    refused = admin.post(f"/staff/publication/{s.reference}/withdraw", data={"reason": "反映人\x07要求撤回"})
    assert refused.status_code == 400  # the case page again, the reason as typed (the control shown as U+FFFD)
    assert "反映人\ufffd要求撤回" in refused.get_data(as_text=True)
    assert published_row(session, s).withdrawn_at is None
    assert admin.post(f"/staff/publication/{s.reference}/withdraw", data={"reason": "反映人要求撤回"}).status_code == 303
    assert published_row(session, s).withdrawn_at is not None
    assert "建议继续压减涉企会议" not in app.test_client().get(BULLETIN).get_data(as_text=True)
    assert "建议继续压减涉企会议" not in app.test_client().get(f"{BULLETIN}/items/5/comments").get_data(as_text=True)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "publication_withdrawn"))
    assert entry.target == s.reference and "反映人要求撤回" in entry.details
    again = admin.post(f"/staff/publication/{s.reference}/withdraw", data={})
    assert again.status_code == 303
    assert "当前没有公开" in admin.get(f"/staff/submissions/{s.reference}").get_data(as_text=True)
    clerk = client_as(app, team["clerk"])
    assert clerk.post(f"/staff/publication/{s.reference}/withdraw").status_code == 403


def test_bulletin_page_counts_and_is_rendered_again_when_they_change(app, session, settings, bulletin, team,
                                                                     monkeypatch):
    monkeypatch.setattr(published, "COUNTS_LAG_SECONDS", 0)
    _received, _ = create_web_submission(session, settings, bulletin=bulletin, item=3)
    accepted, _ = create_web_submission(session, settings, bulletin=bulletin, item=3)
    rejected, _ = create_web_submission(session, settings, bulletin=bulletin, item=3)
    accepted.state, rejected.state = "assigned", "rejected"
    session.commit()
    s = answered(app, session, settings, bulletin, item=3)
    client = app.test_client()
    first = client.get(BULLETIN)
    html = first.get_data(as_text=True)
    item3 = html[html.index('id="item-3"'):html.index('id="item-4"')]
    assert "本项共收到意见 4 件，已受理 2 件，已答复 1 件。" in item3
    assert "本项尚未收到意见。" in html[html.index('id="item-4"'):]
    assert client.get(BULLETIN, headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    reviewer = client_as(app, team["reviewer"])
    assert reviewer.post(f"/staff/publication/{s.reference}",
                         data={"text": "第三项的公开意见。", "reply_text": "第三项的公开答复。"}).status_code == 303
    second = client.get(BULLETIN, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert "第三项的公开意见。" in second.get_data(as_text=True)

    create_web_submission(session, settings, bulletin=bulletin, item=3)  # a new comment moves the count
    third = client.get(BULLETIN).get_data(as_text=True)
    assert "本项共收到意见 5 件" in third

    monkeypatch.setattr(published, "COUNTS_LAG_SECONDS", 3600)  # only older events move the counts
    assert "本项共收到意见 5 件" in client.get(BULLETIN).get_data(as_text=True)
    create_web_submission(session, settings, bulletin=bulletin, item=3)
    assert "本项共收到意见 5 件" in client.get(BULLETIN).get_data(as_text=True)
    assert reviewer.post(f"/staff/publication/{s.reference}/withdraw").status_code == 303
    fourth = client.get(BULLETIN).get_data(as_text=True)  # a withdrawal shows at once, with fresh counts
    assert "第三项的公开意见。" not in fourth and "本项共收到意见 6 件" in fourth


def test_public_item_page(app, session, settings, bulletin, team):
    client = app.test_client()
    empty = client.get(f"{BULLETIN}/items/7/comments")
    assert empty.status_code == 200 and "本项暂无公开的意见" in empty.get_data(as_text=True)
    assert client.get(f"{BULLETIN}/items/99/comments").status_code == 404
    assert client.get("/bulletins/no-such/items/1/comments").status_code == 404
    assert client.get(f"{BULLETIN}/items/7/comments?page=5").status_code == 404


# ---------- the item folder ----------

def test_item_folder_lists_everything_masked_and_follows_the_units(app, session, settings, bulletin, team):
    mine = answered(app, session, settings, bulletin, unit=team["a"])
    theirs = answered(app, session, settings, bulletin, unit=team["b"], body="住建局承办的一件意见，关于第5项。")
    elsewhere, _ = create_web_submission(session, settings, bulletin=bulletin, item=6, body="第六项的意见内容。")
    mine.next_due_on = (utcnow() - timedelta(days=2)).date()
    session.commit()

    reviewer = client_as(app, team["reviewer"])
    html = reviewer.get("/staff/items/5").get_data(as_text=True)
    assert mine.reference in html and theirs.reference in html and elsewhere.reference not in html
    assert "第5项：" in html and "办理经过" in html and "办理时限" in html and "答复" in html
    assert "王**" in html and "138****8000" in html and "x***@example.com" in html  # moderation.masking
    assert "压减三成" in html and "上周我们企业又被通知参加三次会议" in html
    assert_no_leak(html.replace("x***@example.com", ""))
    assert 'data-print' in html

    index = reviewer.get("/staff/items").get_data(as_text=True)
    assert "/staff/items/5" in index and "/staff/items/0" in index

    handler = client_as(app, team["handler"]).get("/staff/items/5").get_data(as_text=True)
    assert mine.reference in handler and theirs.reference not in handler
    assert client_as(app, team["clerk"]).get("/staff/items/5").status_code == 200
    assert client_as(app, team["other_handler"]).get("/staff/items/6").status_code == 200
    assert app.test_client().get("/staff/items/5").status_code == 302
    assert reviewer.get("/staff/items/99").status_code == 404


def test_print_stylesheet_has_rules_for_the_folder():
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "print.css").read_text(encoding="utf-8")
    tail = css[css.index("/staff/items/"):]
    assert ".folder-entry" in tail and "break-before: page" in tail


def test_staff_list_of_candidates_and_publications(app, session, settings, bulletin, team):
    s = answered(app, session, settings, bulletin)
    no_consent = answered(app, session, settings, bulletin, consent=False)
    reviewer = client_as(app, team["reviewer"])
    html = reviewer.get("/staff/publication").get_data(as_text=True)
    assert s.reference in html and no_consent.reference not in html
    reviewer.post(f"/staff/publication/{s.reference}", data={"text": "意见。", "reply_text": "答复。"})
    html = reviewer.get("/staff/publication").get_data(as_text=True)
    assert "公开中" in html
    assert client_as(app, team["clerk"]).get("/staff/publication").status_code == 403
    session.rollback()
    assert session.get(Submission, s.id).publish_consent is True
