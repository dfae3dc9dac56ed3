"""The citizen's query page: look up with reference + query code, read the status, reply, rate, follow up."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.core import querycode, states
from feedback_app.core.models import State, Submission
from tests.conftest import make_settings
from tests.factories import create_reply, create_web_submission, submit

TRACK = "/track"
STATUS = "/track/status"
FOLLOW_UP = "/track/follow-up"
RATE = "/track/rate"
CSRF_INPUT = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]*(")')


def main_of(html: str) -> str:
    """The page's <main>, with the per-request CSRF tokens blanked."""
    match = re.search(r"<main\b[^>]*>(.*?)</main>", html, re.S)
    assert match, html
    return CSRF_INPUT.sub(r"\1\2", match.group(1))


def text_of(html: str) -> str:
    """The visible text of the page's <main>, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", main_of(html))).split())


def field_block(html: str, field_id: str) -> str:
    """The <div class="field ..."> that holds the input or textarea ``field_id``."""
    match = re.search(
        rf'<div class="field[^"]*">\s*<label for="{field_id}">.*?<(?:input|textarea)[^>]*id="{field_id}"[^>]*>',
        html,
        re.S,
    )
    assert match, f"no field {field_id}"
    return match.group(0)


def lookup(client, reference: str, code: str, **extra):
    return client.post(TRACK, data={"reference": reference, "query_code": code, **extra})


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


def reload(session, submission: Submission) -> Submission:
    """The submission as stored now (ending the session's transaction: SQLite reads from a snapshot)."""
    session.rollback()
    session.expire_all()
    return session.get(Submission, submission.id)


@pytest.fixture
def tracked(session, settings, bulletin):
    """A stored submission and its query code."""
    return create_web_submission(session, settings, bulletin=bulletin)


@pytest.fixture
def signed_in(client, tracked):
    """A client that has looked the submission up successfully."""
    submission, code = tracked
    response = lookup(client, submission.reference, code)
    assert response.status_code == 303
    return submission, code


def set_state(session, submission: Submission, state: State) -> None:
    submission = reload(session, submission)
    submission.state = state.value
    session.commit()


# --- the form ------------------------------------------------------------------------------------


def test_track_form_has_reference_and_query_code_fields(client):
    response = client.get(TRACK)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(r'<form method="post" action="/track"', html)
    assert re.search(r'<input type="text" id="reference" name="reference" value=""', html)
    assert re.search(r'<input type="text" id="query_code" name="query_code" value=""', html)
    assert '<label for="reference">受理编号' in html
    assert '<label for="query_code">查询码' in html
    assert response.headers["Cache-Control"] == "no-store"


# --- looking a submission up --------------------------------------------------------------------


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda c: c, id="as-issued"),
        pytest.param(lambda c: c.lower(), id="lower-case"),
        pytest.param(lambda c: querycode.display(c).lower(), id="lower-dashed"),
        pytest.param(lambda c: " ".join(querycode.display(c).split("-")).lower(), id="lower-spaced"),
        pytest.param(lambda c: fullwidth(querycode.display(c).lower()), id="full-width-dashed"),
        pytest.param(lambda c: fullwidth(" ".join(querycode.display(c).split("-"))), id="full-width-spaced"),
    ],
)
def test_correct_code_in_any_spelling_leads_to_the_status_page(client, tracked, spell):
    submission, code = tracked
    typed = spell(code)
    response = lookup(client, submission.reference, typed)
    assert response.status_code == 303
    assert response.headers["Location"] == STATUS
    status = client.get(STATUS)
    assert status.status_code == 200
    text = text_of(status.get_data(as_text=True))
    assert submission.reference in text
    assert "当前状态 已收到，等待受理" in text
    assert "已收到您的意见，等待审核受理" in text  # the first step of the history
    assert "意见建议" in text and "第5项" in text


def test_reference_typed_in_lower_case_with_spaces_is_found(client, tracked):
    submission, code = tracked
    typed = " " + submission.reference.lower().replace("-", " -") + " "
    assert lookup(client, typed, code).status_code == 303
    assert client.get(STATUS).status_code == 200


def test_history_lists_public_steps_in_order_and_hides_internal_ones(client, session, signed_in):
    submission, _ = signed_in
    submission = reload(session, submission)
    states.apply(session, submission, "accept", role="reviewer")
    states.apply(session, submission, "assign", role="reviewer", text="内部分办意见：请某某单位核查", public=False)
    session.commit()
    text = text_of(client.get(STATUS).get_data(as_text=True))
    assert "当前状态 已转交责任单位办理" in text
    start = text.index("办理经过")
    history = text[start: text.index("答复", start)]
    assert history.index("已收到您的意见，等待审核受理") < history.index("已受理，正在办理")
    assert "内部分办意见" not in text
    assert "已转交责任单位办理" not in history


def test_wrong_code_and_unknown_reference_get_the_same_answer(client, session, settings, bulletin, tracked):
    submission, code = tracked
    _other, other_code = create_web_submission(session, settings, bulletin=bulletin, body="另一条意见，内容不同于第一条。")
    assert other_code != code
    unknown = submission.reference[:-6] + "999999"
    assert session.scalar(select(Submission).where(Submission.reference == unknown)) is None

    wrong_code = lookup(client, submission.reference, other_code)
    unknown_ref = lookup(client, unknown, other_code)

    assert wrong_code.status_code == unknown_ref.status_code == 400
    a = main_of(wrong_code.get_data(as_text=True)).replace(submission.reference, "REF")
    b = main_of(unknown_ref.get_data(as_text=True)).replace(unknown, "REF")
    assert a == b
    assert "受理编号或查询码不正确，请核对后重新输入。" in a
    assert client.get(STATUS).status_code == 302  # neither answer granted access


def test_code_of_another_submission_does_not_open_this_one(client, session, settings, bulletin, tracked):
    submission, _code = tracked
    other, other_code = create_web_submission(session, settings, bulletin=bulletin, body="另一条意见，内容不同于第一条。")
    assert lookup(client, other.reference, other_code).status_code == 303
    assert other.reference in client.get(STATUS).get_data(as_text=True)
    # Looking up the first submission with the second code fails, and the grant stays on the second.
    response = lookup(client, submission.reference, other_code)
    assert response.status_code == 400
    assert other.reference not in response.get_data(as_text=True)
    page = client.get(STATUS).get_data(as_text=True)
    assert other.reference in page and submission.reference not in page


@pytest.mark.parametrize(
    "reference, code, errors",
    [
        pytest.param("", "", {"reference": "请填写受理编号", "query_code": "请填写查询码"}, id="both-empty"),
        pytest.param("HP2026-000001", "   ", {"query_code": "请填写查询码"}, id="code-blank"),
        pytest.param("\u3000 ", "ABCD-EFGH-JKMN-PQRS", {"reference": "请填写受理编号"}, id="reference-blank"),
    ],
)
def test_empty_fields_get_chinese_errors_next_to_the_field(client, reference, code, errors):
    response = lookup(client, reference, code)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    for field_id in ("reference", "query_code"):
        block = field_block(html, field_id)
        if field_id in errors:
            assert 'class="field has-error"' in block
            assert f'<p class="field-error" id="{field_id}-error"><span>{errors[field_id]}</span></p>' in block
            assert "aria-invalid=\"true\"" in block
            assert f"{field_id}-error" in re.search(r'aria-describedby="([^"]*)"', block).group(1)
        else:
            assert "field-error" not in block
    assert client.get(STATUS).status_code == 302


def test_status_without_a_lookup_redirects_to_the_form(client, tracked):
    response = client.get(STATUS)
    assert response.status_code == 302
    assert response.headers["Location"] == TRACK


@pytest.mark.parametrize("path", [FOLLOW_UP, RATE])
def test_posts_without_a_lookup_redirect_to_the_form(client, session, tracked, path):
    submission, _ = tracked
    response = client.post(path, data={"text": "没有查询就想追评的内容，应当被拒绝。", "rating": "satisfied"})
    assert response.status_code == 302
    assert response.headers["Location"] == TRACK
    assert [e.action for e in reload(session, submission).events] == ["received"]


def test_expired_grant_redirects_to_the_form(client, tracked):
    submission, _ = tracked
    with client.session_transaction() as cookie:
        cookie["tracking"] = {"id": submission.id, "until": 0}
    response = client.get(STATUS)
    assert response.status_code == 302
    assert response.headers["Location"] == TRACK


def test_grant_for_a_vanished_submission_redirects_to_the_form(client, tracked):
    with client.session_transaction() as cookie:
        cookie["tracking"] = {"id": 987654, "until": 4102444800}
    response = client.get(STATUS)
    assert response.status_code == 302
    assert response.headers["Location"] == TRACK


# --- the office's reply -----------------------------------------------------------------------------


def test_reply_is_shown_only_once_approved(client, session, signed_in):
    submission, _ = signed_in
    create_reply(session, submission=submission, body="草稿答复：尚待审核的内容。", approved=False)
    html = client.get(STATUS).get_data(as_text=True)
    assert "草稿答复" not in html
    assert "尚未答复" in text_of(html)

    create_reply(session, submission=submission, body="经核查，涉企会议已统一安排。\n相关部门已完成整改。", approved=True)
    text = text_of(client.get(STATUS).get_data(as_text=True))
    assert "经核查，涉企会议已统一安排。" in text and "相关部门已完成整改。" in text
    assert "草稿答复" not in text
    assert "尚未答复" not in text


# --- rating ------------------------------------------------------------------------------------


def test_rating_is_refused_before_a_reply(client, session, signed_in):
    submission, _ = signed_in
    set_state(session, submission, State.answered)  # the state allows rating; only the reply is missing
    create_reply(session, submission=submission, approved=False)

    html = client.get(STATUS).get_data(as_text=True)
    assert 'action="/track/rate"' not in html  # no rating form offered

    response = client.post(RATE, data={"rating": "satisfied"})
    assert response.status_code == 400
    assert "答复之后才能评价" in response.get_data(as_text=True)
    stored = reload(session, submission)
    assert stored.rating is None
    assert [e.action for e in stored.events] == ["received"]


@pytest.mark.parametrize(
    "value, label", [("satisfied", "满意"), ("fairly_satisfied", "基本满意"), ("dissatisfied", "不满意")]
)
def test_rating_after_an_approved_reply_is_stored_and_shown(client, session, signed_in, value, label):
    submission, _ = signed_in
    set_state(session, submission, State.answered)
    create_reply(session, submission=submission, approved=True)
    assert 'action="/track/rate"' in client.get(STATUS).get_data(as_text=True)

    response = client.post(RATE, data={"rating": value})
    assert response.status_code == 303
    assert response.headers["Location"] == STATUS
    stored = reload(session, submission)
    assert stored.rating == value
    assert stored.state == State.answered.value
    event = stored.events[-1]
    assert (event.action, event.public, event.text) == ("rate", True, label)

    html = client.get(STATUS).get_data(as_text=True)
    assert f"您的评价：<strong>{label}</strong>" in html
    assert "感谢您的评价。" in html


def test_rating_with_no_choice_gets_a_chinese_error(client, session, signed_in):
    submission, _ = signed_in
    set_state(session, submission, State.answered)
    create_reply(session, submission=submission, approved=True)
    response = client.post(RATE, data={"rating": "excellent"})
    assert response.status_code == 400
    assert "请选择一项评价" in response.get_data(as_text=True)
    assert reload(session, submission).rating is None


# --- follow-up (追评) --------------------------------------------------------------------------


def test_follow_up_on_an_answered_matter_reopens_it(client, session, signed_in):
    submission, _ = signed_in
    set_state(session, submission, State.answered)
    text = "答复中提到的整改措施尚未落实，会议仍然临时通知。"

    response = client.post(FOLLOW_UP, data={"text": text})
    assert response.status_code == 303
    assert response.headers["Location"] == STATUS
    stored = reload(session, submission)
    assert stored.state == State.reopened.value
    event = stored.events[-1]
    assert (event.action, event.public, event.text, event.state_after) == ("follow_up", True, text, "reopened")

    page = text_of(client.get(STATUS).get_data(as_text=True))
    assert "已收到您的追评，我们会继续办理。" in page
    assert "当前状态 重新办理中" in page
    assert "您补充了意见（追评） " + text in page


def test_follow_up_before_an_answer_is_recorded_without_changing_the_state(client, session, signed_in):
    submission, _ = signed_in
    text = "补充一点：通知一般只提前一天发出。"
    assert client.post(FOLLOW_UP, data={"text": "  " + text + "\r\n"}).status_code == 303
    stored = reload(session, submission)
    assert stored.state == State.received.value
    assert [(e.action, e.text, e.public) for e in stored.events] == [("received", None, True), ("follow_up", text, True)]


def test_short_follow_up_is_refused_in_chinese(client, session, settings, signed_in):
    submission, _ = signed_in
    set_state(session, submission, State.answered)
    short = "太慢了" * 3 + "！"
    short = short[: settings.body_min_chars - 1]
    response = client.post(FOLLOW_UP, data={"text": short})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    block = field_block(html, "text")
    assert (f"追评内容应为 {settings.body_min_chars} 至 {settings.body_max_chars} 个字，"
            f"目前 {len(short)} 个字") in block
    assert f">{short}</textarea>" in html  # what was typed is kept
    stored = reload(session, submission)
    assert stored.state == State.answered.value
    assert [e.action for e in stored.events] == ["received"]


# --- caching ------------------------------------------------------------------------------------


def test_status_page_and_receipt_are_not_cached(client, bulletin):
    assert submit(client).status_code == 303
    receipt = client.get("/receipt")
    assert receipt.status_code == 200
    assert receipt.headers["Cache-Control"] == "no-store"
    html = receipt.get_data(as_text=True)
    reference = re.search(r'id="reference">([^<]+)<', html).group(1)
    code = re.search(r'id="query-code">([^<]+)<', html).group(1)
    assert lookup(client, reference, code).status_code == 303
    status = client.get(STATUS)
    assert status.status_code == 200
    assert status.headers["Cache-Control"] == "no-store"
    assert client.post(FOLLOW_UP, data={"text": "短"}).headers["Cache-Control"] == "no-store"


# --- CSRF ----------------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    yield app.test_client()
    app.extensions["db_engine"].dispose()


def csrf_token_of(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_track_post_without_csrf_token_is_refused_in_chinese(csrf_client, tracked):
    submission, code = tracked
    csrf_client.get(TRACK)
    response = lookup(csrf_client, submission.reference, code)
    assert response.status_code == 400
    assert "页面已过期：提交的内容缺少安全校验信息，可能页面没有完整打开。请重新填写后查询。" in text_of(
        response.get_data(as_text=True))
    assert csrf_client.get(STATUS).status_code == 302


def test_track_post_with_the_token_from_the_form_works(csrf_client, tracked):
    submission, code = tracked
    token = csrf_token_of(csrf_client.get(TRACK).get_data(as_text=True))
    response = lookup(csrf_client, submission.reference, code, csrf_token=token)
    assert response.status_code == 303
    status = csrf_client.get(STATUS)
    assert status.status_code == 200
    # The follow-up form on the status page carries its own token, and it works too.
    token = csrf_token_of(status.get_data(as_text=True))
    assert csrf_client.post(FOLLOW_UP, data={"text": "没有令牌的追评不应被接受。"}).status_code == 400
    assert csrf_client.post(FOLLOW_UP, data={"text": "带令牌的追评应当被接受。", "csrf_token": token}).status_code == 303
