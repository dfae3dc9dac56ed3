"""Statistics on a known dataset, the SVG charts, and the staff and public pages."""
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from itertools import count

import pytest

from feedback_app.auth.accounts import create_unit
from feedback_app.core.models import Reply, Submission
from feedback_app.outcomes import charts, monthly, statistics
from feedback_app.outcomes.statistics import Period
from tests.auth.helpers import create_staff, login

CST = timezone(timedelta(hours=8))
MARCH = Period(date(2025, 3, 1), date(2025, 4, 1))
_seq = count(1)


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, 0, tzinfo=CST)


def make(session, bulletin, *, received, channel="web", kind="suggestion", item=5, state="received", unit=None,
         accepted=None, concluded=None, rating=None, due=None, name="赵六", replied=None):
    n = next(_seq)
    s = Submission(reference=f"HP2025-{n:06d}", year=2025, seq=n, bulletin_id=bulletin.id, item_number=item,
                   channel=channel, kind=kind, body="统计测试用的意见内容。", name=name, phone="+8613700001111",
                   reply_by="online", state=state, rating=rating, query_code_hash="0" * 64, body_hash="0" * 64,
                   received_at=received, created_at=received, unit_id=unit.id if unit else None,
                   accepted_at=accepted, concluded_at=concluded, next_due_on=due)
    session.add(s)
    session.flush()
    if replied:
        session.add(Reply(submission_id=s.id, body="答复内容。", created_at=replied, approved_at=replied))
    return s


@pytest.fixture
def dataset(app, session, bulletin):
    """Seven submissions in March 2025 (local time), one in February, and two units."""
    a, b = create_unit(session, "区发展和改革局"), create_unit(session, "区住房和城乡建设局")
    yesterday = date.today() - timedelta(days=1)
    # S1: closed and satisfied; accepted after 2 days, concluded after 10, replied after 11.
    make(session, bulletin, received=at(3), channel="web", kind="suggestion", item=5, state="closed", unit=a,
         accepted=at(5), concluded=at(13), rating="satisfied", replied=at(14))
    # S2: phone accusation, accepted after 4 days, overdue.
    make(session, bulletin, received=at(4), channel="phone", kind="accusation", item=5, state="assigned", unit=a,
         accepted=at(8), due=yesterday)
    # S3: Monday 07:00 in Guangzhou is still Sunday in UTC: the week of 10 March, not 3 March.
    make(session, bulletin, received=at(10, hour=7), channel="web", kind="request", item=1, state="received",
         due=date.today() + timedelta(days=10))
    # S4: letter, accepted after 1 day, concluded after 20 (31 March), replied on 2 April; dissatisfied.
    make(session, bulletin, received=at(11), channel="letter", kind="suggestion", item=0, state="answered", unit=b,
         accepted=at(12), concluded=at(31), rating="dissatisfied", replied=at(2, month=4))
    # S5: e-mail enquiry, rejected.
    make(session, bulletin, received=at(20), channel="email", kind="enquiry", item=1, state="rejected")
    # S6: 06:00 on 1 March in Guangzhou is 28 February in UTC: it belongs to March.
    make(session, bulletin, received=at(1, hour=6), channel="web", kind="suggestion", item=2, state="received")
    # S7: 23:30 on 31 March in Guangzhou: still March.
    make(session, bulletin, received=datetime(2025, 3, 31, 23, 30, tzinfo=CST), channel="visit", kind="request",
         item=2, state="received")
    # Outside: February.
    make(session, bulletin, received=at(27, month=2), channel="web", kind="suggestion", item=5, state="closed",
         accepted=at(28, month=2), concluded=at(3), rating="satisfied", replied=at(3))
    session.commit()
    return {"a": a, "b": b}


def values(rows):
    return {r.key: r.value for r in rows}


def test_staff_statistics_on_a_known_dataset(app, session, settings, bulletin, dataset):
    reviewer = create_staff(session, username="shen.he", role="reviewer", totp=True)
    stats = statistics.staff_stats(session, settings, reviewer, MARCH)
    assert (stats.total, stats.accepted, stats.answered, stats.overdue) == (7, 3, 2, 1)
    assert values(stats.by_channel) == {"web": 3, "phone": 1, "email": 1, "letter": 1, "visit": 1}
    assert values(stats.by_kind) == {"suggestion": 3, "accusation": 1, "request": 2, "enquiry": 1}
    assert values(stats.by_state) == {"received": 3, "accepted": 0, "assigned": 1, "answered": 1, "closed": 1,
                                      "rejected": 1, "merged": 0, "reopened": 0}
    items = {r.number: (r.received, r.accepted, r.answered, r.overdue) for r in stats.by_item}
    assert items[5] == (2, 2, 1, 1) and items[1] == (2, 0, 0, 0) and items[0] == (1, 1, 1, 0)
    assert items[2] == (2, 0, 0, 0) and items[14] == (0, 0, 0, 0) and len(items) == 15
    units = {u.label: (u.received, u.answered, u.overdue) for u in stats.by_unit}
    assert units == {"区发展和改革局": (2, 1, 1), "区住房和城乡建设局": (1, 1, 0), "未转交": (4, 0, 0)}
    assert [(w.key, w.value) for w in stats.weekly] == [
        ("2025-02-24", 1), ("2025-03-03", 2), ("2025-03-10", 2), ("2025-03-17", 1), ("2025-03-24", 0),
        ("2025-03-31", 1)]
    assert stats.median_days_to_acceptance == pytest.approx(2.0)  # of 2, 4 and 1 days
    assert stats.median_days_to_conclusion == pytest.approx(15.0)  # of 10 and 20 days: the mean of the two
    assert values(stats.satisfaction.counts) == {"satisfied": 1, "fairly_satisfied": 0, "dissatisfied": 1}
    assert stats.satisfaction.rate == pytest.approx(0.5)


def test_a_handler_counts_only_their_unit(app, session, settings, bulletin, dataset):
    handler = create_staff(session, username="cheng.ban", role="handler", unit=dataset["a"])
    stats = statistics.staff_stats(session, settings, handler, MARCH)
    assert (stats.total, stats.overdue) == (2, 1)
    assert [u.label for u in stats.by_unit] == ["区发展和改革局"]


def test_empty_period(app, session, settings, bulletin, dataset):
    reviewer = create_staff(session, username="shen.he", role="reviewer", totp=True)
    stats = statistics.staff_stats(session, settings, reviewer, Period(date(2024, 1, 1), date(2024, 1, 8)))
    assert stats.total == 0 and stats.median_days_to_acceptance is None and stats.satisfaction.rate is None
    assert [w.key for w in stats.weekly] == ["2024-01-01"]


def test_monthly_figures_on_a_known_dataset(app, session, settings, bulletin, dataset):
    march = monthly.monthly_stats(session, settings, date(2025, 3, 1))
    assert march.received == 7 and march.accepted == 3 and march.rejected == 1
    assert values(march.by_channel) == {"web": 3, "phone": 1, "email": 1, "letter": 1, "visit": 1}
    assert values(march.by_kind) == {"suggestion": 3, "accusation": 1, "request": 2, "enquiry": 1}
    assert march.concluded == 3  # S1, S4, and February's concluded on 3 March
    assert march.replied == 2 and march.average_days_to_reply == pytest.approx((11 + 4) / 2)
    assert values(march.satisfaction.counts) == {"satisfied": 2, "fairly_satisfied": 0, "dissatisfied": 1}
    april = monthly.monthly_stats(session, settings, date(2025, 4, 1))
    assert april.received == 0 and april.replied == 1 and april.average_days_to_reply == pytest.approx(22)
    assert april.satisfaction.rate is None


def test_month_parsing():
    today = date(2025, 4, 15)
    assert monthly.last_complete_month(today) == date(2025, 3, 1)
    assert monthly.last_complete_month(date(2025, 1, 1)) == date(2024, 12, 1)
    assert monthly.parse_month("2025-02", today) == date(2025, 2, 1)
    assert monthly.parse_month(None, today) is None
    for bad in ("2025-13", "2025-2", "abc", "2025-05", "1999-12"):
        with pytest.raises(ValueError):
            monthly.parse_month(bad, today)


# ---------- the charts ----------

SVG = "{http://www.w3.org/2000/svg}"


def test_bar_chart_is_an_image_with_a_title_and_a_description():
    svg = charts.bar_chart([("网上", 3), ("来电", 1), ("<来信>", 0)], chart_id="c1", title="按渠道")
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.get("id") == "c1-title" and title.text == "按渠道"
    assert desc.get("id") == "c1-desc" and "合计 4件" in desc.text and "“网上”，3件" in desc.text
    assert len(root.findall(f"{SVG}rect")) == 2  # a zero draws no bar
    assert "<来信>" not in str(svg) and "&lt;来信&gt;" in str(svg)
    assert "style" not in str(svg) and "<script" not in str(svg)


def test_column_chart_draws_every_week():
    data = [(f"第{i}周", i % 3) for i in range(20)]
    root = ET.fromstring(str(charts.column_chart(data, chart_id="w", title="每周")))
    assert root.get("role") == "img" and root.find(f"{SVG}title").text == "每周"
    assert len(root.findall(f"{SVG}rect")) == sum(1 for _, v in data if v)
    empty = ET.fromstring(str(charts.column_chart([], chart_id="e", title="无")))
    assert empty.find(f"{SVG}desc").text == "没有数据。"


# ---------- the pages ----------

def test_staff_statistics_page(app, session, settings, bulletin, dataset):
    create_staff(session, username="shen.he", role="reviewer", totp=True)
    create_staff(session, username="cheng.ban", role="handler", unit=dataset["b"])
    c = app.test_client()
    assert c.get("/staff/stats").status_code == 302
    login(c, "shen.he")
    html = c.get("/staff/stats?from=2025-03-01&to=2025-03-31").get_data(as_text=True)
    assert "2025年3月1日至2025年3月31日" in html
    assert html.count('role="img"') >= 6 and "<title id=\"chart-items-title\">" in html
    assert re.search(r"<dt>收到</dt><dd>7 件</dd>", html)
    assert re.search(r"<dt>受理用时（中位数）</dt><dd>2\.0 天</dd>", html)
    assert re.search(r"<dt>办结用时（中位数）</dt><dd>15\.0 天</dd>", html)
    assert "/staff/items/5" in html and "区发展和改革局" in html
    assert "赵六" not in html and "13700001111" not in html
    swapped = c.get("/staff/stats?from=2025-03-31&to=2025-03-01").get_data(as_text=True)
    assert re.search(r"<dt>收到</dt><dd>7 件</dd>", swapped)

    h = app.test_client()
    login(h, "cheng.ban")
    mine = h.get("/staff/stats?from=2025-03-01&to=2025-03-31").get_data(as_text=True)
    assert re.search(r"<dt>收到</dt><dd>1 件</dd>", mine) and "仅含转交区住房和城乡建设局的意见" in mine


def test_public_monthly_page(app, session, settings, bulletin, dataset):
    c = app.test_client()
    response = c.get("/statistics?month=2025-03")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2025年3月意见受理情况" in html
    assert re.search(r"<dt>收到意见</dt><dd>7 件</dd>", html)
    assert re.search(r"<dt>本月办结</dt><dd>3 件</dd>", html)
    assert re.search(r"<dt>平均答复用时</dt><dd>7\.5 天</dd>", html)
    assert "66.7%" in html  # satisfied 2 of 3
    assert 'role="img"' in html and '<title id="channel-chart-title">按渠道</title>' in html
    assert "<th scope=\"row\">来访</th><td>1</td>" in html
    for private in ("赵六", "13700001111", "HP2025-", "区发展和改革局"):
        assert private not in html
    assert "public" in response.headers["Cache-Control"]
    assert 'href="/statistics?month=2025-02"' in html and 'href="/statistics?month=2025-04"' in html

    default = c.get("/statistics").get_data(as_text=True)
    last = monthly.last_complete_month(date.today())
    assert f"{last.year}年{last.month}月意见受理情况" in default
    for bad in ("2025-3", f"{date.today():%Y-%m}", "2999-01", "<script>"):
        refused = c.get("/statistics", query_string={"month": bad})
        text = refused.get_data(as_text=True)
        assert refused.status_code == 400 and 'role="alert"' in text and "<script>" not in text
        assert f"{last.year}年{last.month}月意见受理情况" in text
