"""A full disk: the instance folder (database and attachments) on a small tmpfs filled to the last byte.

Whether the photo cannot even be written, or it can and the database's commit then finds no room, the
person sees 503 "系统暂时无法保存" with the office's phone and the form as typed, gets no receipt, and
nothing is left behind (no row, no file in ``partial/`` or in place). Once there is room again the same
form posts, and every submission acknowledged before is still there, whole.

The SQLite case runs on a SQLite database of its own whatever ``FEEDBACK_DATABASE_URL`` says; the other
keeps the run's database (PostgreSQL in CI's second pass) and fills only the attachment store.
"""
from __future__ import annotations

import io
import logging
import re

import pytest

from feedback_app.core.database import make_engine
from tests.dbstate import changes, snapshot
from tests.factories import form_fields, receipt_of
from tests.faults.conftest import (
    FORM_TOKEN_RE,
    OFFICE_PHONE,
    fill,
    free_bytes,
    leave_free,
    photo,
    rows,
    sha256,
    sqlite_copy,
    stored_files,
)
from tests.faults.test_database_faults import (
    BODY,
    LETTER,
    assert_no_citizen_receipt,
    assert_no_staff_receipt,
    assert_not_saved,
    citizen_post,
    start,
)
from tests.intake.test_staff_intake import PDF, hidden_fields, letter_data

pytestmark = pytest.mark.timeout(120, method="thread")  # fails, never hangs the run

PHOTO_BYTES = 256 * 1024


def failure_logged(caplog) -> str:
    """The kind of error the 503 answered, as the site logged it."""
    found = [r.getMessage() for r in caplog.records if r.name == "feedback_app.web.unavailable"]
    assert found, "no 503 logged"
    return re.search(r"unavailable \((\w+)\)", found[-1]).group(1)


def assert_kept(app, url, acknowledged: dict[str, tuple[str, bytes]]) -> None:
    """Every submission acknowledged so far: its row, its photo in place byte for byte, and its status
    page for the citizen with the reference and query code of the receipt."""
    attachments = app.extensions["settings"].attachments_path
    check = make_engine(url)
    try:
        found = rows(check, "SELECT s.reference, a.stored_name, a.sha256 FROM submission s "
                            "JOIN attachment a ON a.submission_id = s.id")
        total = rows(check, "SELECT count(*) FROM submission")[0][0]
    finally:
        check.dispose()
    assert total == len(acknowledged)
    assert {reference for reference, _, _ in found} == set(acknowledged)
    for reference, name, digest in found:
        _code, data = acknowledged[reference]
        assert digest == sha256(data) and (attachments / name[:2] / name).read_bytes() == data
    assert stored_files(attachments) == {f"{name[:2]}/{name}" for _, name, _ in found}  # and nothing else
    for reference, (code, _) in acknowledged.items():
        reader = app.test_client()
        assert reader.post("/track", data={"reference": reference, "query_code": code}).status_code == 303
        assert reference in reader.get("/track/status").get_data(as_text=True)


@pytest.mark.parametrize("room", ["none", "for the photo, not the commit"])
def test_a_full_instance_folder_saves_nothing_and_says_so(room, sqlite_template, tmp_path, mounts, caplog):
    instance = mounts.tmpfs(tmp_path / "instance", "4m")
    url = sqlite_copy(sqlite_template, instance)
    app, citizen, _clerk = start(url, tmp_path, office_phone=OFFICE_PHONE)
    settings = app.extensions["settings"]
    assert settings.attachments_path.is_relative_to(instance) and url.endswith(f"{instance}/feedback.db")
    acknowledged = {}
    for n in (1, 2):
        someone = app.test_client()
        assert citizen_post(someone, f"{BODY}（第{n}条）", photo(n, PHOTO_BYTES)).status_code == 303
        reference, code = receipt_of(someone)
        acknowledged[reference] = (code, photo(n, PHOTO_BYTES))
    files_before = stored_files(settings.attachments_path)
    fields = form_fields(citizen)

    filler = fill(instance)
    if room != "none":
        leave_free(filler, PHOTO_BYTES + 4096)
    caplog.set_level(logging.WARNING, "feedback_app.web.unavailable")
    response = citizen_post(citizen, attachment=photo(3, PHOTO_BYTES), fields=fields)
    html = assert_not_saved(response, BODY, OFFICE_PHONE)
    # which of the two the site met: the photo's write, or the database's commit
    assert failure_logged(caplog) == ("OSError" if room == "none" else "OperationalError")
    assert_no_citizen_receipt(citizen)
    assert stored_files(settings.attachments_path) == files_before  # partial/ included
    check = make_engine(url)
    before_freeing = snapshot(check)
    check.dispose()

    filler.unlink()
    assert free_bytes(instance) > 2 * PHOTO_BYTES
    check = make_engine(url)
    try:
        assert changes(before_freeing, snapshot(check)) == {}
        assert len(rows(check, "SELECT id FROM submission")) == 2
    finally:
        check.dispose()
    token = FORM_TOKEN_RE.search(html).group(1)
    again = citizen_post(citizen, attachment=photo(3, PHOTO_BYTES), fields={**fields, "form_token": token})
    assert again.status_code == 303
    reference, code = receipt_of(citizen)
    acknowledged[reference] = (code, photo(3, PHOTO_BYTES))
    assert_kept(app, url, acknowledged)
    app.extensions["db_engine"].dispose()


def test_a_full_attachment_store_saves_nothing_on_the_runs_database(database_url, tmp_path, mounts):
    store = mounts.tmpfs(tmp_path / "store", "2m")
    app, citizen, clerk = start(database_url, tmp_path, office_phone=OFFICE_PHONE, attachments_dir=store)
    settings = app.extensions["settings"]
    someone = app.test_client()
    assert citizen_post(someone, BODY + "（之前）", photo(1, PHOTO_BYTES)).status_code == 303
    reference, code = receipt_of(someone)
    acknowledged = {reference: (code, photo(1, PHOTO_BYTES))}
    fields = form_fields(citizen)
    letter_page = hidden_fields(clerk.get("/staff/intake/letter").get_data(as_text=True))
    engine = make_engine(database_url)
    before = snapshot(engine)

    filler = fill(store)
    leave_free(filler, 64 * 1024)  # room, but not for the photo
    files_before = stored_files(store)
    response = citizen_post(citizen, attachment=photo(2, PHOTO_BYTES), fields=fields)
    assert_not_saved(response, BODY, OFFICE_PHONE)
    assert_no_citizen_receipt(citizen)
    response = clerk.post("/staff/intake/letter", content_type="multipart/form-data", data={
        **letter_page, **letter_data(settings, body=LETTER),
        "scans": [(io.BytesIO(PDF + b"\0" * PHOTO_BYTES), "来信.pdf")]})
    assert_not_saved(response, LETTER, OFFICE_PHONE)
    assert_no_staff_receipt(clerk)
    assert stored_files(store) == files_before
    assert changes(before, snapshot(engine)) == {}
    engine.dispose()

    filler.unlink()
    assert citizen_post(citizen, attachment=photo(2, PHOTO_BYTES), fields=fields).status_code == 303
    reference, code = receipt_of(citizen)
    acknowledged[reference] = (code, photo(2, PHOTO_BYTES))
    assert len(stored_files(store)) == 2
    assert_kept(app, database_url, acknowledged)
    app.extensions["db_engine"].dispose()
