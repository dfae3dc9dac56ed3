"""The comment form is drawn once per bulletin and item; each visitor still gets tokens of their own."""
import re

from sqlalchemy import update

from feedback_app.app import create_app
from feedback_app.core.models import Bulletin
from feedback_app.web.public.form_page import CSRF_MARK, TOKEN_MARK
from tests.conftest import make_settings
from tests.factories import FORM, form_fields, valid_data

SELECTED = re.compile(r'<option value="(\d+)" selected>')


def test_each_visit_gets_tokens_of_its_own(database_url, tmp_path, bulletin):
    app = create_app(make_settings(database_url, tmp_path, csrf_enabled=True))
    first, second = app.test_client(), app.test_client()
    mine, theirs = form_fields(first), form_fields(second)
    assert mine["csrf_token"] != theirs["csrf_token"] and mine["form_token"] != theirs["form_token"]
    html = first.get(FORM).get_data(as_text=True)
    assert CSRF_MARK not in html and TOKEN_MARK not in html  # the markers are always filled in
    stolen = second.post(FORM, data={**valid_data(), **mine}, content_type="multipart/form-data")
    assert stolen.status_code == 400 and "安全校验信息与当前会话不符" in stolen.get_data(as_text=True)
    own = first.post(FORM, data={**valid_data(), **mine}, content_type="multipart/form-data")
    assert own.status_code == 303


def test_each_item_is_preselected_on_its_own_page(client, bulletin):
    for item in ("5", "3", "5"):
        html = client.get(f"{FORM}?item={item}").get_data(as_text=True)
        assert SELECTED.findall(html) == [item]
    for other in ("99", "abc", ""):
        assert SELECTED.findall(client.get(f"{FORM}?item={other}").get_data(as_text=True)) == []


def test_a_changed_bulletin_shows_once_the_cache_time_has_passed(database_url, tmp_path, bulletin, session):
    cached = create_app(make_settings(database_url, tmp_path, page_cache_seconds=3600)).test_client()
    fresh = create_app(make_settings(database_url, tmp_path, page_cache_seconds=0)).test_client()
    for client in (cached, fresh):
        assert "黄埔区" in client.get(FORM).get_data(as_text=True)
    session.execute(update(Bulletin).where(Bulletin.id == bulletin.id)
                    .values(title="更正后的通报标题", source_sha256="0" * 64))
    session.commit()
    assert "更正后的通报标题" in fresh.get(FORM).get_data(as_text=True)
    assert "更正后的通报标题" not in cached.get(FORM).get_data(as_text=True)  # drawn from memory


def test_an_unknown_bulletin_is_404_for_get_and_post(client, bulletin):
    assert client.get("/bulletins/no-such/feedback").status_code == 404
    assert client.post("/bulletins/no-such/feedback", data=valid_data()).status_code == 404
