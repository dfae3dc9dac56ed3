"""The ledger (台账): CSV and XLSX exports on the web and the command line, with the queue's filters."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, quote

import openpyxl
import pytest
from sqlalchemy import event, func, select, update

from feedback_app.audit.log import verify
from feedback_app.auth.accounts import create_unit
from feedback_app.core.models import AuditEntry, Deadline, Reply, Submission
from feedback_app.core.states import TransitionRefused
from feedback_app.moderation.queue import Filters
from feedback_app.outcomes import ledger, spreadsheets
from tests.auth.helpers import client_as, create_staff
from tests.factories import create_web_submission

UTC = UTC
BOM = b"\xef\xbb\xbf"
HEADER = [
    "受理编号", "收到时间", "渠道", "整改事项", "类型", "状态", "责任单位",
    "告知办理情况期限", "告知办理情况是否按期", "告知受理情况期限", "告知受理情况是否按期",
    "办结期限", "办结是否按期", "反馈结果期限", "反馈结果是否按期", "答复日期", "满意度",
]
PERSONAL = ["姓名", "联系电话", "电子邮箱", "通信地址"]
SEARCH_WORD = "营商环境"


# ---------- the data ----------

def export(client, fmt: str, query: str = "", **kwargs):
    """The download form of the ledger page, sent with the filters in ``query``."""
    return client.post(f"/staff/ledger/export.{fmt}", data=dict(parse_qsl(query)), **kwargs)


@pytest.fixture
def world(app, session, settings, bulletin):
    unit_a = create_unit(session, "区发展和改革局")
    unit_b = create_unit(session, "区住房和城乡建设局")
    session.commit()
    people = {
        "admin": create_staff(session, username="guan.li", role="admin", totp=True),
        "reviewer": create_staff(session, username="shen.he", role="reviewer", totp=True),
        "clerk": create_staff(session, username="deng.ji", role="clerk"),
        "handler": create_staff(session, username="cheng.ban", role="handler", unit=unit_a),
    }

    def make(*, received, unit=None, state=None, rating=None, **fields):
        with app.app_context():  # an e-mail address gets an acknowledgement, rendered from a template
            submission, _ = create_web_submission(session, settings, bulletin=bulletin, received_at=received,
                                                  **fields)
        values = {k: v for k, v in (("unit_id", unit.id if unit else None), ("state", state), ("rating", rating))
                  if v is not None}
        if values:
            session.execute(update(Submission).where(Submission.id == submission.id).values(**values))
            session.commit()
        return submission

    def clock(submission, kind, **values):
        session.execute(update(Deadline).where(Deadline.submission_id == submission.id, Deadline.kind == kind)
                        .values(**values))

    # 1. answered on time and rated; two approved replies (the later one counts) and an open draft
    closed = make(received=datetime(2025, 3, 3, 2, 0, tzinfo=UTC), item=5, kind="suggestion", unit=unit_a,
                  state="closed", rating="satisfied", body=f"建议优化{SEARCH_WORD}，减少涉企检查。",
                  name="张三", phone="+8613800138000", email="zhang@example.com", address="广州市黄埔区大沙街1号")
    clock(closed, "inform", due_on=date(2025, 3, 18), met_at=datetime(2025, 3, 10, 3, 0, tzinfo=UTC))
    session.add_all([
        Reply(submission_id=closed.id, body="初步答复。", approved_at=datetime(2025, 3, 8, 2, tzinfo=UTC),
              delivered_at=datetime(2025, 3, 8, 2, tzinfo=UTC)),
        Reply(submission_id=closed.id, body="经核查，已整改。", approved_at=datetime(2025, 3, 9, 2, tzinfo=UTC),
              delivered_at=datetime(2025, 3, 9, 17, tzinfo=UTC)),  # 3月10日 01:00 in Shanghai
        Reply(submission_id=closed.id, body="尚未审核的答复稿。"),
    ])
    # 2. a real-name accusation of unit B: informed late (by the office's clock), acceptance overdue,
    #    conclusion still running, no feedback clock
    accusation = make(received=datetime(2025, 3, 5, 8, 30, tzinfo=UTC), item=0, kind="accusation", unit=unit_b,
                      state="accepted", name="李四", phone="+862082221234", email="li@example.com",
                      address="广州市黄埔区红山街2号")
    clock(accusation, "inform", due_on=date(2025, 3, 20), met_at=datetime(2025, 3, 20, 17, 0, tzinfo=UTC))
    clock(accusation, "acceptance_notice", due_on=date(2025, 3, 26))
    session.add(Deadline(submission_id=accusation.id, kind="conclude", starts_on=date(2025, 3, 6),
                         due_on=date(2099, 1, 1), rule="信访工作条例第34条"))
    for submission, earliest in ((closed, None), (accusation, date(2025, 3, 26))):  # the earliest unmet clock
        session.execute(update(Submission).where(Submission.id == submission.id).values(next_due_on=earliest))
    # 3. anonymous, just received, not routed
    recent = make(received=datetime.now(UTC) - timedelta(hours=2), item=14, kind="request", anonymous=True)
    session.commit()
    titles = {i.number: i.title for i in bulletin.items}
    return {"a": unit_a, "b": unit_b, **people, "closed": closed, "accusation": accusation, "recent": recent,
            "titles": titles}


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))


def read_xlsx(data: bytes):
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    return openpyxl.load_workbook(io.BytesIO(data))


def by_reference(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    header = rows[0]
    return {r[0]: dict(zip(header, r, strict=False)) for r in rows[1:]}


def audit_entries(session) -> list[AuditEntry]:
    session.rollback()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "ledger_exported")
                                .order_by(AuditEntry.id)))


# ---------- CSV ----------

def test_csv_one_row_per_submission_in_chinese(app, session, world):
    response = export(client_as(app, world["reviewer"]), "csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    data = response.get_data()
    assert data.startswith(BOM) and b"\r\n" in data
    rows = read_csv(data)
    assert rows[0] == HEADER
    assert [r[0] for r in rows[1:]] == [world[k].reference for k in ("closed", "accusation", "recent")]
    got = by_reference(rows)

    closed = got[world["closed"].reference]
    assert closed == {
        "受理编号": world["closed"].reference, "收到时间": "2025-03-03 10:00", "渠道": "网上",
        "整改事项": f"第5项：{world['titles'][5]}", "类型": "意见建议", "状态": "已办结",
        "责任单位": "区发展和改革局", "告知办理情况期限": "2025-03-18", "告知办理情况是否按期": "按期完成",
        "告知受理情况期限": "", "告知受理情况是否按期": "", "办结期限": "", "办结是否按期": "",
        "反馈结果期限": "", "反馈结果是否按期": "", "答复日期": "2025-03-10", "满意度": "满意",
    }
    accusation = got[world["accusation"].reference]
    assert accusation["收到时间"] == "2025-03-05 16:30"
    assert accusation["整改事项"] == "整改工作整体" and accusation["类型"] == "检举控告"
    assert accusation["状态"] == "已受理，正在办理" and accusation["责任单位"] == "区住房和城乡建设局"
    assert (accusation["告知办理情况期限"], accusation["告知办理情况是否按期"]) == ("2025-03-20", "超期完成")
    assert (accusation["告知受理情况期限"], accusation["告知受理情况是否按期"]) == ("2025-03-26", "已超期")
    assert (accusation["办结期限"], accusation["办结是否按期"]) == ("2099-01-01", "未到期")
    assert accusation["反馈结果期限"] == accusation["答复日期"] == accusation["满意度"] == ""
    recent = got[world["recent"].reference]
    assert recent["类型"] == "申诉求决" and recent["状态"] == "已收到，等待受理" and recent["责任单位"] == ""
    assert recent["告知办理情况是否按期"] == "未到期" and recent["告知办理情况期限"] > date.today().isoformat()


def test_download_name_carries_the_date(app, world, settings):
    response = export(client_as(app, world["clerk"]), "xlsx")
    today = datetime.now(settings.tz).strftime("%Y%m%d")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert f'filename="ledger-{today}.xlsx"' in disposition
    assert f"filename*=UTF-8''{quote(f'整改意见台账-{today}.xlsx')}" in disposition
    assert response.headers["Cache-Control"] == "no-store"


# ---------- XLSX ----------

def test_xlsx_has_the_same_rows_with_real_dates(app, world):
    response = export(client_as(app, world["admin"]), "xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == ledger.CONTENT_TYPES["xlsx"]
    book = read_xlsx(response.get_data())
    assert book.sheetnames == ["整改意见台账"]
    sheet = book.active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER + PERSONAL
    assert [r[0] for r in rows[1:]] == [world[k].reference for k in ("closed", "accusation", "recent")]
    closed = dict(zip(rows[0], rows[1], strict=False))
    assert closed["收到时间"] == datetime(2025, 3, 3, 10, 0)
    assert closed["告知办理情况期限"] == datetime(2025, 3, 18) and closed["答复日期"] == datetime(2025, 3, 10)
    assert closed["告知办理情况是否按期"] == "按期完成" and closed["满意度"] == "满意"
    assert closed["告知受理情况期限"] is None
    assert (closed["姓名"], closed["联系电话"], closed["电子邮箱"]) == ("张三", "138 0013 8000", "zhang@example.com")
    assert sheet["B2"].number_format == "yyyy-mm-dd hh:mm" and sheet["H2"].number_format == "yyyy-mm-dd"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:U4"


def test_xlsx_starts_a_new_sheet_when_one_is_full():
    cols = ledger.columns(False)
    row = ["HP2025-000001", datetime(2025, 3, 3, 10, 0), "网上", "整改工作整体", "咨询", "已办结", None,
           date(2025, 3, 18), "按期完成", None, None, None, None, None, None, None, None]
    chunks = [[row, row], [row, row, row]]
    book = read_xlsx(b"".join(spreadsheets.xlsx_stream(cols, chunks, title=ledger.TITLE, sheet_max_rows=2)))
    assert book.sheetnames == ["整改意见台账", "整改意见台账（2）", "整改意见台账（3）"]
    counts = [sheet.max_row for sheet in book.worksheets]
    assert counts == [3, 3, 2]
    assert all(sheet["A1"].value == "受理编号" and sheet["A2"].value == "HP2025-000001" for sheet in book.worksheets)


# ---------- formula injection ----------

DANGEROUS = ["=HYPERLINK(\"http://x.example\",\"点我\")", "+8613800138000", "-2+3", "@SUM(A1:A9)",
             "\t=1+1", "\r=1+1"]


def test_formula_cells_are_neutralised_in_csv_and_strings_in_xlsx(app, session, settings, world, bulletin):
    made = []
    for i, text in enumerate(DANGEROUS):
        with app.app_context():
            submission, _ = create_web_submission(
                session, settings, bulletin=bulletin, received_at=datetime(2024, 1, 1, i, tzinfo=UTC),
                body=text + "（意见正文）", name=text, email=text, address=text)
        made.append(submission.reference)
    evil_unit = create_unit(session, "=1+1单位")
    session.execute(update(Submission).where(Submission.reference == made[0]).values(unit_id=evil_unit.id))
    session.commit()
    admin = client_as(app, world["admin"])

    rows = by_reference(read_csv(export(admin, "csv").get_data()))
    for reference, text in zip(made, DANGEROUS, strict=False):
        row = rows[reference]
        assert row["姓名"] == row["电子邮箱"] == row["通信地址"] == "'" + text
    assert rows[made[0]]["责任单位"] == "'=1+1单位"
    assert rows[world["closed"].reference]["姓名"] == "张三"  # nothing else changes

    sheet = read_xlsx(export(admin, "xlsx").get_data()).active
    header = [c.value for c in sheet[1]]
    found = {}
    for cells in sheet.iter_rows(min_row=2):
        found[cells[0].value] = dict(zip(header, cells, strict=False))
    for reference, text in zip(made, DANGEROUS, strict=False):
        for column in ("姓名", "电子邮箱", "通信地址"):
            cell = found[reference][column]
            assert cell.data_type == "s" and cell.value == text
    assert found[made[0]]["责任单位"].data_type == "s" and found[made[0]]["责任单位"].value == "=1+1单位"


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("x=1", "x=1"), ("张三", "张三"), ("", ""), (None, ""),
])
def test_neutralise(text, expected):
    assert spreadsheets.neutralise(text) == expected


# ---------- who gets what ----------

def test_personal_details_only_for_admins(app, world):
    for role in ("reviewer", "clerk"):
        data = export(client_as(app, world[role]), "csv").get_data()
        assert read_csv(data)[0] == HEADER, role
        text = data.decode("utf-8")
        for secret in ("张三", "13800138000", "138 0013 8000", "zhang@example.com", "大沙街", "李四"):
            assert secret not in text, (role, secret)
        book = read_xlsx(export(client_as(app, world[role]), "xlsx").get_data())
        assert [c.value for c in book.active[1]] == HEADER
    rows = read_csv(export(client_as(app, world["admin"]), "csv").get_data())
    assert rows[0] == HEADER + PERSONAL
    closed = by_reference(rows)[world["closed"].reference]
    assert [closed[h] for h in PERSONAL] == ["张三", "138 0013 8000", "zhang@example.com", "广州市黄埔区大沙街1号"]
    accusation = by_reference(rows)[world["accusation"].reference]
    assert accusation["联系电话"] == "020 8222 1234"


def test_the_service_itself_refuses_personal_details_to_who_may_not_see_them(session, settings, world):
    """Whichever page or command calls it: an export with contacts for a role without ``ledger.contacts``
    is refused before anything is read or audited."""
    before = session.scalar(select(func.count()).select_from(AuditEntry))
    for role in ("reviewer", "clerk", "handler"):
        with pytest.raises(TransitionRefused):
            ledger.prepare(session, settings, world[role], Filters(), fmt="csv", personal=True, actor=role)
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert ledger.prepare(session, settings, world["admin"], Filters(), fmt="csv", personal=True,
                          actor="guan.li").personal
    session.rollback()


def test_a_handler_gets_only_their_units_rows(app, world):
    handler = client_as(app, world["handler"])
    rows = read_csv(export(handler, "csv").get_data())
    assert rows[0] == HEADER
    assert [r[0] for r in rows[1:]] == [world["closed"].reference]
    other = read_csv(export(handler, "csv", f"unit={world['b'].id}").get_data())
    assert other == [HEADER]


def test_anonymous_visitors_go_to_the_login_page(client, session, world):
    for response in (client.get("/staff/ledger"), export(client, "csv"), export(client, "xlsx")):
        assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert client.post("/staff/ledger/export.pdf").status_code == 404
    assert not audit_entries(session)


# ---------- the queue's filters ----------

@pytest.mark.parametrize(("query", "expected"), [
    ("state=closed", ["closed"]),
    ("kind=accusation", ["accusation"]),
    ("channel=web", ["closed", "accusation", "recent"]),
    ("channel=letter", []),
    ("item=0", ["accusation"]),
    ("item=14", ["recent"]),
    ("unit={a}", ["closed"]),
    ("from=2025-03-04&to=2025-03-05", ["accusation"]),
    ("to=2025-03-03", ["closed"]),
    ("due=overdue", ["accusation"]),
    ("state=closed&sort=deadline&after=bogus", ["closed"]),  # the queue's order and cursor do not apply
])
def test_filters_are_the_queues(app, world, query, expected):
    reviewer = client_as(app, world["reviewer"])
    rows = read_csv(export(reviewer, "csv", query.format(a=world["a"].id)).get_data())
    assert [r[0] for r in rows[1:]] == [world[k].reference for k in expected]
    sheet = read_xlsx(export(reviewer, "xlsx", query.format(a=world["a"].id)).get_data()).active
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == [world[k].reference for k in expected]


def test_search_words_come_from_the_queue_session(app, session, world):
    reviewer = client_as(app, world["reviewer"])
    assert reviewer.post("/staff/search", data={"q": SEARCH_WORD}).status_code == 303
    rows = read_csv(export(reviewer, "csv", "search=1").get_data())
    assert [r[0] for r in rows[1:]] == [world["closed"].reference]
    everything = read_csv(export(reviewer, "csv").get_data())  # without search=1
    assert len(everything) == 4
    assert json.loads(audit_entries(session)[0].details)["filters"] == {"q": SEARCH_WORD}


# ---------- the audit log ----------

def test_every_web_export_is_audited(app, session, settings, world):
    admin = client_as(app, world["admin"])
    export(admin, "csv", "state=closed&kind=suggestion")
    export(client_as(app, world["handler"]), "xlsx")
    first, second = audit_entries(session)
    assert (first.actor, first.actor_id) == ("guan.li", world["admin"].id)
    assert first.client == "127.0.0.1"
    assert json.loads(first.details) == {"format": "csv", "filters": {"state": "closed", "kind": "suggestion"},
                                         "rows": 1, "personal": True}
    assert (second.actor, second.actor_id) == ("cheng.ban", world["handler"].id)
    assert json.loads(second.details) == {"format": "xlsx", "filters": {}, "rows": 1, "personal": False}
    assert verify(session, settings).broken_id is None


def test_the_body_is_read_after_the_request_committed(app, session, world):
    """The response streams: the audit entry is stored although the body has not been read yet."""
    admin = client_as(app, world["admin"])
    response = export(admin, "csv", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert len(audit_entries(session)) == 1
    data = b"".join(response.response)
    response.close()
    assert len(read_csv(data)) == 4


# ---------- batches ----------

def test_rows_are_read_in_batches_not_one_query_each(app, settings, world):
    engine = app.extensions["db_engine"]
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    factory = app.extensions["db_sessionmaker"]
    with factory() as s:
        stmt = ledger.statement(s, settings, world["reviewer"], Filters(), personal=False)
        event.listen(engine, "before_cursor_execute", count)
        try:
            chunks = list(ledger.read_chunks(s, settings, stmt, personal=False, size=2))
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert [len(c) for c in chunks] == [2, 1]
    batch_queries = [q for q in seen if "FROM deadline" in q]
    assert len(batch_queries) == 2  # one per chunk, for its deadlines and replies together
    assert len(seen) <= 2 + 1 + len(batch_queries) + 2  # units, items, the rows, the batches (and BEGIN)


# ---------- the page ----------

def test_the_page_counts_and_links_with_the_same_filters(app, world):
    response = client_as(app, world["reviewer"]).get("/staff/ledger?state=closed&sort=deadline")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "共 <strong>1</strong> 件" in html
    for fmt in ("csv", "xlsx"):
        form = html[html.index(f'action="/staff/ledger/export.{fmt}"'):]
        form = form[:form.index("</form>")]
        assert '<input type="hidden" name="state" value="closed">' in form and 'name="sort"' not in form
    assert "不含群众个人信息" in html
    admin_html = client_as(app, world["admin"]).get("/staff/ledger").get_data(as_text=True)
    assert "共 <strong>3</strong> 件" in admin_html and "包含群众姓名" in admin_html


def test_the_queues_link(app, world):
    with app.test_request_context("/staff/?state=closed"):
        from flask import render_template

        html = render_template("ledger/_link.html", args={"state": "closed"})
    assert 'href="/staff/ledger?state=closed"' in html and "导出台账（CSV / Excel）" in html


# ---------- the command line ----------

def test_cli_exports_csv_and_xlsx_and_is_audited(app, session, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "export", "--format", "csv", "--state", "closed"])
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout_bytes)
    assert rows[0] == HEADER and [r[0] for r in rows[1:]] == [world["closed"].reference]
    assert "已导出 1 件" in result.stderr

    result = runner.invoke(args=["ledger", "export", "--format", "xlsx", "--personal", "--from", "2025-03-04"])
    assert result.exit_code == 0, result.output
    sheet = read_xlsx(result.stdout_bytes).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == HEADER + PERSONAL
    assert [r[0] for r in values[1:]] == [world["accusation"].reference, world["recent"].reference]
    assert values[1][len(HEADER)] == "李四"

    first, second = audit_entries(session)
    assert (first.actor, first.actor_id, first.client) == ("cli", None, None)
    assert json.loads(first.details) == {"format": "csv", "filters": {"state": "closed"}, "rows": 1,
                                         "personal": False}
    assert json.loads(second.details) == {"format": "xlsx", "filters": {"from": "2025-03-04"}, "rows": 2,
                                          "personal": True}


def test_cli_refuses_bad_options(app, session, world):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ledger", "export", "--format", "pdf"]).exit_code == 2
    assert runner.invoke(args=["ledger", "export", "--format", "csv", "--state", "done"]).exit_code == 2
    assert runner.invoke(args=["ledger", "export", "--format", "csv", "--from", "2025-13-01"]).exit_code == 2
    assert not audit_entries(session)
