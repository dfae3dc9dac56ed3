"""The citizen's comment form: validation, nothing lost, one record per form, attachments."""
import io
import re
import time

import pytest
from sqlalchemy import func, select

from feedback_app.app import create_app
from feedback_app.core.models import Attachment, OutboxMessage, Submission
from feedback_app.intake.attachments import path_of
from feedback_app.moderation.duplicates import candidates
from tests.conftest import make_settings
from tests.factories import FORM, form_fields, receipt_of, submit, valid_data

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


def count(session, model=Submission):
    session.rollback()  # end the test's read transaction: see what the requests committed
    return session.scalar(select(func.count()).select_from(model))


def test_form_preselects_the_item_and_has_the_contract_fields(client, bulletin):
    html = client.get(FORM + "?item=5").get_data(as_text=True)
    assert re.search(r'<option value="5" selected>第5项：企业获得感下降的整改</option>', html)
    assert '<option value="0">整改工作整体</option>' in html
    for name in ("item", "kind", "body", "name", "phone", "email", "address", "reply_by", "anonymous",
                 "privacy_consent", "publish_consent", "attachments", "form_token"):
        assert f'name="{name}"' in html, name
    for value in ("suggestion", "accusation", "request", "enquiry", "online", "phone", "email", "letter"):
        assert f'value="{value}"' in html


def test_csrf_field_present_when_enabled(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    html = app.test_client().get(FORM).get_data(as_text=True)
    assert 'name="csrf_token"' in html


def test_form_shows_the_offline_channels(client, bulletin):
    html = client.get(FORM).get_data(as_text=True)
    assert 'href="tel:02082378781"' in html and 'href="mailto:yshjggj@gdd.gov.cn"' in html
    assert "黄埔区香雪三路1号区纪委监委" in html and "对黄埔区委巡察整改情况的意见建议" in html
    assert "个人信息处理说明" in html


def test_valid_comment_is_stored_and_redirected_to_receipt(client, session, bulletin, settings):
    response = submit(client, name="张三", phone="020-82378781", reply_by="phone", publish_consent="y")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/receipt")
    submission = session.scalar(select(Submission))
    assert submission.item_number == 5 and submission.kind == "suggestion" and submission.channel == "web"
    assert submission.phone == "+862082378781" and submission.name == "张三"
    assert submission.publish_consent is True and submission.privacy_consent_at is not None
    assert submission.state == "received" and [e.action for e in submission.events] == ["received"]
    reference, code = receipt_of(client)
    assert reference == submission.reference
    assert re.fullmatch(rf"{settings.reference_prefix}\d{{4}}-\d{{6}}", reference)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code)
    assert code.replace("-", "") not in submission.query_code_hash


def test_reference_numbers_are_sequential(client, session, bulletin):
    for n in range(3):
        submit(client, body=f"第{n}条意见：请尽快公开整改的具体进展情况。")
    refs = [s.reference for s in session.scalars(select(Submission).order_by(Submission.id))]
    assert [int(r[-6:]) for r in refs] == [1, 2, 3]


def test_receipt_is_not_cached(client, bulletin):
    submit(client)
    assert client.get("/receipt").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("overrides, field, message", [
    ({"body": ""}, "body", "请填写意见内容"),
    ({"body": "太短了"}, "body", "至少"),
    ({"body": "长" * 5001}, "body", "最多"),
    ({"privacy_consent": None}, "privacy_consent", "请阅读并勾选"),
    ({"item": "99"}, "item", "请选择通报中的整改事项"),
    ({"item": "abc"}, "item", "请选择通报中的整改事项"),
    ({"kind": "spam"}, "kind", "请选择反映类型"),
    ({"reply_by": "fax"}, "reply_by", "请选择答复方式"),
    ({"reply_by": "phone"}, "phone", "请填写联系电话"),
    ({"reply_by": "email"}, "email", "请填写电子邮箱"),
    ({"reply_by": "letter", "address": "黄埔区某路1号", "name": None}, "name", "收信人姓名"),
    ({"reply_by": "letter", "name": "张三", "address": None}, "address", "请填写通信地址"),
    ({"phone": "12345"}, "phone", "电话号码无效"),
    ({"phone": "138001380001"}, "phone", "电话号码无效"),
    ({"email": "not-an-email"}, "email", "电子邮箱格式不正确"),
    ({"email": "a@b"}, "email", "电子邮箱格式不正确"),
    ({"anonymous": "y", "reply_by": "email", "email": "a@example.com"}, "reply_by", "匿名反映只能"),
])
def test_invalid_input_is_explained_next_to_the_field_and_nothing_is_lost(
        client, session, bulletin, overrides, field, message):
    typed = {"name": "李四", "address": "黄埔区香雪三路", **overrides}
    response = submit(client, **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.S)
    assert error and message in error.group(1)
    assert 'aria-describedby="' in html and 'aria-invalid="true"' in html
    assert count(session) == 0
    body = typed.get("body", valid_data()["body"])
    if 0 < len(body) <= 5001:
        assert body in html  # the text the citizen wrote is still there
    for key in ("name", "address"):
        if typed.get(key):
            assert f'value="{typed[key]}"' in html


@pytest.mark.parametrize("typed, stored", [
    ("13800138000", "+8613800138000"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("0086 13800138000", "+8613800138000"),
    ("１３８００１３８０００", "+8613800138000"),
    ("020-82378781", "+862082378781"),
    ("(020) 8237 8781", "+862082378781"),
    ("+86 20 8237 8781", "+862082378781"),
])
def test_chinese_phone_numbers_are_stored_as_e164(client, session, bulletin, typed, stored):
    assert submit(client, phone=typed, reply_by="phone").status_code == 303
    assert session.scalar(select(Submission.phone)) == stored


def test_international_email_is_valid_and_gets_an_acknowledgement(client, session, bulletin):
    assert submit(client, email="用户@例子.中国", reply_by="email").status_code == 303
    submission = session.scalar(select(Submission))
    assert submission.email == "用户@例子.中国"
    mail = session.scalar(select(OutboxMessage))
    assert mail.recipient == "用户@例子.中国" and submission.reference in mail.subject


def test_contact_details_optional_for_online_reply(client, session, bulletin):
    assert submit(client).status_code == 303
    submission = session.scalar(select(Submission))
    assert (submission.name, submission.phone, submission.email, submission.address) == (None, None, None, None)
    assert count(session, OutboxMessage) == 0


def test_anonymous_keeps_no_personal_details(client, session, bulletin):
    response = submit(client, anonymous="y", name="王五", phone="13800138000", email="w@example.com",
                      address="某地")
    assert response.status_code == 303
    s = session.scalar(select(Submission))
    assert s.anonymous and (s.name, s.phone, s.email, s.address) == (None, None, None, None)
    assert count(session, OutboxMessage) == 0


def test_double_submit_gives_the_same_receipt_and_one_record(client, session, bulletin):
    data = {**form_fields(client), **valid_data()}
    first = client.post(FORM, data=data)
    first_receipt = receipt_of(client)
    second = client.post(FORM, data=data)  # a refresh, a double click, or back and submit again
    assert first.status_code == second.status_code == 303
    assert receipt_of(client) == first_receipt
    assert "这份意见已经提交成功" in client.get("/receipt").get_data(as_text=True)
    other_browser = client.application.test_client()
    assert other_browser.post(FORM, data=data).status_code == 303
    assert receipt_of(other_browser) == first_receipt  # the code is derived, not remembered
    assert count(session) == 1


def test_the_same_words_in_a_new_form_are_a_new_submission_proposed_as_a_duplicate(client, session, bulletin):
    """Only the form token decides "the same submission again": the same text sent again from the same
    address (or by a neighbour behind the same NAT), now with a photo and a phone number, is stored
    whole as its own submission, and staff see it proposed as a likely duplicate of the first."""
    submit(client)
    first = receipt_of(client)
    data = {**form_fields(client), **valid_data(reply_by="phone", name="张三", phone="13800138000"),
            "attachments": (io.BytesIO(PNG), "现场照片.png")}
    assert client.post(FORM, data=data, content_type="multipart/form-data").status_code == 303
    second = receipt_of(client)
    html = client.get("/receipt").get_data(as_text=True)
    assert second[0] != first[0] and second[1] and "提交成功" in html and "已经提交成功" not in html
    assert count(session) == 2
    later = session.scalar(select(Submission).where(Submission.reference == second[0]))
    assert later.phone == "+8613800138000" and [a.display_name for a in later.attachments] == ["现场照片.png"]
    assert [c.submission.reference for c in candidates(session, later)] == [first[0]]


def test_honeypot_stops_robots_and_keeps_nothing(client, session, bulletin):
    response = submit(client, website="http://spam.example")
    assert response.status_code == 400
    assert count(session) == 0


def test_minimum_fill_time_is_signed_and_enforced(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, min_fill_seconds=60))
    client = app.test_client()
    response = submit(client)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "提交过快" in html and valid_data()["body"] in html
    forged = {**valid_data(), "form_token": "forged-token"}
    response = client.post(FORM, data=forged)
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
    assert count(session) == 0


def test_csrf_missing_or_expired_keeps_what_was_typed(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True, csrf_time_limit=1))
    client = app.test_client()
    tokens = form_fields(client)
    no_csrf = {**valid_data(), "form_token": tokens["form_token"]}
    response = client.post(FORM, data=no_csrf)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and valid_data()["body"] in html
    assert "页面已过期：提交的内容缺少安全校验信息" in html and "您填写的内容已保留" in html
    time.sleep(2.1)  # let the CSRF token expire
    response = client.post(FORM, data={**valid_data(), **tokens})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and valid_data()["body"] in html
    assert "页面已过期：页面打开的时间太长，安全校验已失效。" in html and "您填写的内容已保留" in html
    assert count(session) == 0
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]*)"', html).group(1)
    response = client.post(FORM, data={**valid_data(), **tokens, "csrf_token": fresh})
    assert response.status_code == 303
    assert count(session) == 1


def test_a_valid_token_on_a_refused_request_saves_nothing_and_keeps_the_text(database_url, tmp_path, bulletin, session):
    """Over HTTPS with the referrer check on, a comment with every token right but no Referer is refused:
    the form comes back filled in, and nothing is saved."""
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    app.config["WTF_CSRF_SSL_STRICT"] = True
    client = app.test_client()
    tokens = form_fields(client, "https://localhost" + FORM)
    assert set(tokens) == {"csrf_token", "form_token"}
    response = client.post(FORM, data={**valid_data(), **tokens}, base_url="https://localhost")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "无法确认提交来自本站页面" in html and valid_data()["body"] in html
    assert count(session) == 0


def test_attachments_judged_by_content_and_stored_outside_static(client, session, bulletin, settings):
    files = [(io.BytesIO(PNG), "现场照片.png"), (io.BytesIO(JPEG), "photo.JPG"), (io.BytesIO(PDF), "举报材料.pdf")]
    assert submit(client, attachments=files).status_code == 303
    stored = session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [a.display_name for a in stored] == ["现场照片.png", "photo.JPG", "举报材料.pdf"]
    assert [a.content_type for a in stored] == ["image/png", "image/jpeg", "application/pdf"]
    for a, data in zip(stored, (PNG, JPEG, PDF), strict=False):
        path = path_of(settings.attachments_path, a.stored_name)
        assert path.read_bytes() == data
        import hashlib
        assert a.sha256 == hashlib.sha256(data).hexdigest() and a.size == len(data)
        assert "static" not in path.parts and a.stored_name not in a.display_name
        assert client.get(f"/static/{a.stored_name}").status_code == 404


@pytest.mark.parametrize("files, message", [
    ([(io.BytesIO(b"MZ\x90\x00 not an image"), "照片.png")], "不是 JPEG、PNG 或 PDF"),
    ([(io.BytesIO(b"<html><script>"), "x.pdf")], "不是 JPEG、PNG 或 PDF"),
    ([(io.BytesIO(PNG), f"{n}.png") for n in range(4)], "最多上传 3 个附件"),
    ([(io.BytesIO(PNG + b"\x00" * (2 * 1024 * 1024)), "big.png")], "超过 2 MB"),
])
def test_bad_attachments_are_refused_and_the_text_kept(database_url, tmp_path, bulletin, session, files, message):
    app = create_app(make_settings(database_url, tmp_path, attachment_max_bytes=2 * 1024 * 1024))
    client = app.test_client()
    response = submit(client, attachments=files, name="赵六")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in re.search(r'id="attachments-error">(.*?)</p>', html, re.S).group(1)
    assert valid_data()["body"] in html and 'value="赵六"' in html
    assert count(session) == 0 and count(session, Attachment) == 0


def test_total_attachment_size_is_limited(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, attachment_max_bytes=1024 * 1024,
                                   attachments_max_total_bytes=1536 * 1024))
    files = [(io.BytesIO(PNG + b"\x00" * 900 * 1024), f"{n}.png") for n in range(2)]
    response = submit(app.test_client(), attachments=files)
    assert response.status_code == 400 and "合计不能超过" in response.get_data(as_text=True)
    assert count(session) == 0


def test_request_over_the_body_limit_gets_a_chinese_413(database_url, tmp_path, bulletin, session):
    app = create_app(make_settings(database_url, tmp_path, max_request_bytes=64 * 1024))
    response = submit(app.test_client(), attachments=[(io.BytesIO(PNG + b"\x00" * 100 * 1024), "big.png")])
    assert response.status_code == 413 and "提交内容过大" in response.get_data(as_text=True)
    assert count(session) == 0


def test_submission_is_committed_before_the_redirect(client, bulletin, app):
    response = submit(client)
    assert response.status_code == 303
    fresh = app.extensions["db_sessionmaker"]()
    assert fresh.scalar(select(func.count()).select_from(Submission)) == 1
    fresh.close()


def test_escaping_of_what_citizens_type(client, bulletin):
    response = submit(client, body="<script>alert(1)</script>" + "长" * 3, name="<b>x</b>", reply_by="fax")
    html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html
