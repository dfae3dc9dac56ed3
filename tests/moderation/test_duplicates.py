"""Duplicate proposals: the same phone or email across channels, nearly the same text; merged in one click."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text

from feedback_app.core.database import utcnow
from feedback_app.core.models import Kind, ReplyBy, Submission
from feedback_app.intake import channels
from feedback_app.intake.service import body_hash, create_submission
from feedback_app.moderation import duplicates
from feedback_app.moderation.duplicates import candidates, shingles, similar_label, similarity
from tests.auth.helpers import client_as, create_team
from tests.factories import create_web_submission

pytestmark = pytest.mark.usefixtures("search_texts")  # pending texts and indexed ones

TEXT = ("建议第五项整改公开涉企检查计划，并在每季度末公布检查结果和整改情况，"
        "方便企业提前准备，也便于群众监督执法部门是否按计划开展检查。")
NEAR = ("建议第五项整改公开涉企检查计划，并在每个季度末公布检查结果和整改情况，"
        "方便企业提前准备，也方便群众监督执法部门是否按计划开展检查。")
OTHER = "第十二项提到的制造业集聚区公交配套不足，开发区东区到地铁站的接驳线路仍然只有一条，班次太少。"


@pytest.fixture
def team(app, session):
    return create_team(session)


def web(session, settings, bulletin, body=TEXT, ago=timedelta(days=2), **fields):
    submission, _code = create_web_submission(session, settings, bulletin=bulletin, body=body, **fields)
    submission.received_at = utcnow() - ago  # arranged in time, oldest first
    session.commit()
    return submission


def phone_call(app, session, settings, bulletin, number, body=OTHER):
    call = channels.PhoneCall(
        matter=channels.Matter(bulletin.id, 12, Kind.suggestion, body),
        called_at=utcnow() - timedelta(minutes=10), duration_minutes=4, line="020-82378781",
        taken_by=channels.StaffRef(None, "邓记"), caller_number=number,
        contact=channels.Contact(reply_by=ReplyBy.phone),
    )
    with app.test_request_context():
        receipt = create_submission(session, settings, channels.phone_draft(call, settings.tz))
    session.commit()
    return session.scalar(select(Submission).where(Submission.reference == receipt.reference))


def refs(found):
    return [c.submission.reference for c in found]


# ---------- finding ----------

def test_the_same_phone_across_web_and_phone_is_proposed(app, session, settings, bulletin, team):
    earlier = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone")
    unrelated = web(session, settings, bulletin, body="完全不同的一条意见：建议增加社区医院的夜间门诊。",
                    phone="+8613900139000", reply_by="phone")
    call = phone_call(app, session, settings, bulletin, "138-0013-8000")
    found = candidates(session, call, viewer=team["reviewer"])
    assert refs(found) == [earlier.reference]
    assert found[0].reasons == ("同一电话",)
    assert unrelated.reference not in refs(found)


def test_nearly_the_same_text_is_proposed_with_its_similarity(session, settings, bulletin, team):
    earlier = web(session, settings, bulletin, body=TEXT)
    web(session, settings, bulletin, body=OTHER, ago=timedelta(days=1))
    later = web(session, settings, bulletin, body=NEAR, ago=timedelta(hours=1))
    [match] = candidates(session, later, viewer=team["reviewer"])
    assert match.submission.id == earlier.id
    assert 0.8 <= match.similarity < 1
    assert re.fullmatch(r"内容相近 \d{2}%", match.reasons[0])
    assert match.reasons[0] == f"内容相近 {int(similarity(NEAR, TEXT) * 100)}%"


def test_the_same_text_and_email_count_together(app, session, settings, bulletin, team):
    with app.app_context():  # the acknowledgement mail is rendered from a template
        earlier = web(session, settings, bulletin, body=TEXT, email="Zhang.San@Example.com", reply_by="email")
        later = web(session, settings, bulletin, body="  " + TEXT.replace("，", "， "), ago=timedelta(hours=1),
                    email="zhang.san@example.com", reply_by="email")
    [match] = candidates(session, later, viewer=team["reviewer"])
    assert match.submission.id == earlier.id and match.reasons == ("同一邮箱", "内容相近 100%")


def test_unrelated_later_and_merged_submissions_are_not_proposed(session, settings, bulletin, team):
    merged = web(session, settings, bulletin, body=TEXT, ago=timedelta(days=3))
    merged.state = "merged"
    session.commit()
    first = web(session, settings, bulletin, body=OTHER, ago=timedelta(days=2))
    later_same = web(session, settings, bulletin, body=TEXT, ago=timedelta(hours=1))
    assert candidates(session, first, viewer=team["reviewer"]) == []  # nothing earlier is alike
    assert refs(candidates(session, later_same, viewer=team["reviewer"])) == []  # only the merged one matched


def test_a_handler_sees_only_candidates_of_their_unit(session, settings, bulletin, team):
    theirs = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone",
                 ago=timedelta(days=3))
    mine = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone")
    later = web(session, settings, bulletin, body=NEAR, phone="+8613800138000", reply_by="phone",
                ago=timedelta(hours=1))
    theirs.unit_id, mine.unit_id, later.unit_id = team["b"].id, team["a"].id, team["a"].id
    session.commit()
    assert refs(candidates(session, later, viewer=team["handler"])) == [mine.reference]
    assert set(refs(candidates(session, later, viewer=team["reviewer"]))) == {mine.reference, theirs.reference}


def test_proposals_are_bounded(session, settings, bulletin, team):
    for i in range(8):
        web(session, settings, bulletin, body=f"{TEXT}（第{i}次）", phone="+8613800138000", reply_by="phone",
            ago=timedelta(days=10 - i))
    later = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone",
                ago=timedelta(hours=1))
    assert len(candidates(session, later, viewer=team["reviewer"])) == 5
    assert len(candidates(session, later, limit=2, viewer=team["reviewer"])) == 2


def stored_as(session, bulletin, id_, *, body, ago, channel="web", **contact):
    """A submission stored under a chosen id: as if tens of thousands of others were stored around it."""
    now = utcnow()
    session.execute(insert(Submission.__table__).values(
        id=id_, reference=f"HP1999-{id_:06d}", year=1999, seq=id_, bulletin_id=bulletin.id, item_number=5,
        channel=channel, kind="suggestion", body=body, reply_by="online", state="received",
        query_code_hash="0" * 64, body_hash=body_hash(body), received_at=now - ago, created_at=now, **contact))
    session.commit()
    return session.get(Submission, id_)


def test_matches_however_far_apart_they_were_stored_are_proposed(app, session, settings, bulletin, team):
    phone, email = "+8613800138000", "zhang.san@example.com"
    by_phone = web(session, settings, bulletin, body=OTHER, phone=phone, reply_by="phone", ago=timedelta(days=9))
    with app.app_context():  # the acknowledgement mail is rendered from a template
        by_email = web(session, settings, bulletin, body="另一件事：建议园区增设电动车充电桩。",
                       email="Zhang.San@Example.com", reply_by="email", ago=timedelta(days=8))
    same_text = web(session, settings, bulletin, body=TEXT, ago=timedelta(days=7))
    near_text = web(session, settings, bulletin, body=NEAR, ago=timedelta(days=6))
    # 30,000 rows on: the former look-back of 20,000 ids would have missed all four
    at_hand = stored_as(session, bulletin, 30_000, body=TEXT, ago=timedelta(hours=1), phone=phone, email=email)
    # a letter logged 5,000 rows later still, though it arrived before: the former look-ahead was 2,000
    letter = stored_as(session, bulletin, 35_000, body="来信：反映停车场收费问题。", ago=timedelta(days=2),
                       channel="letter", phone=phone)

    found = {c.submission.id: c.reasons for c in candidates(session, at_hand, viewer=team["reviewer"])}
    assert found == {
        by_phone.id: ("同一电话",), by_email.id: ("同一邮箱",), same_text.id: ("内容相近 100%",),
        near_text.id: (similar_label(similarity(TEXT, NEAR)),), letter.id: ("同一电话",),
    }


def _plan(session, stmt) -> str:
    sql = str(stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    if session.get_bind().dialect.name == "sqlite":
        return " | ".join(r[3] for r in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a test table is small enough to read whole
    return " | ".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))


def test_the_look_ups_use_their_indexes(session, bulletin, team):
    at_hand = stored_as(session, bulletin, 1, body=TEXT, ago=timedelta(hours=1), phone="+8613800138000",
                        email="a@example.com")
    dialect = session.get_bind().dialect.name
    for viewer in (team["reviewer"], team["handler"]):  # a handler's unit has an index of its own
        exact = _plan(session, duplicates.exact_query(at_hand, viewer, 20))
        piece = _plan(session, duplicates.piece_query(at_hand, viewer, dialect, "涉企检查计"))
        for index in ("ix_submission_repeat", "ix_submission_phone", "ix_submission_email_lower"):
            assert index in exact, exact
        if dialect == "sqlite":
            assert "MULTI-INDEX OR" in exact and not re.search(r"SCAN submission\b", exact), exact
            assert "submission_fts VIRTUAL TABLE INDEX" in piece and not re.search(r"SCAN submission\b", piece), piece
        else:
            assert "BitmapOr" in exact, exact
            assert "ix_submission_body_trgm" in piece, piece
        session.rollback()


def test_shingles_are_spread_and_skip_common_words_and_the_bulletin(bulletin):
    pieces = shingles(TEXT)
    assert 3 <= len(pieces) <= duplicates.CANDIDATE_PIECES
    assert all(len(p) == duplicates.SHINGLE_CHARS and p in TEXT for p in pieces)
    assert not any("整改" in p or "建议" in p for p in pieces)
    assert shingles("好的") == [] and shingles("") == []
    quoting = "通报说企业获得感下降的整改要加强涉企会议和政务窗口管理，可是我们园区门口的停车场天天收费乱象丛生。"
    own = shingles(quoting, exclude=bulletin.source_text)
    assert own and all(p not in bulletin.source_text for p in own)
    assert any("停车场" in p for p in own)


def test_only_pieces_that_are_rare_but_shared_are_looked_up(session, settings, bulletin, team, monkeypatch):
    monkeypatch.setattr(duplicates, "PROBE", 3)
    for i in range(3):
        web(session, settings, bulletin, body=f"香雪三路停车场收费不透明的问题，第{i}次反映。", ago=timedelta(days=i + 1))
    for i in range(2):
        web(session, settings, bulletin, body=f"开发区东区接驳公交只有一条线路，班次太少（{i}）。", ago=timedelta(days=5))
    web(session, settings, bulletin, body="独一无二的一句话，只在这一件里出现。", ago=timedelta(days=6))
    pieces = ["香雪三路停", "接驳公交只", "独一无二的", "从未出现过"]
    assert duplicates.distinctive(session, pieces) == ["接驳公交只"]


# ---------- on the submission page ----------

def test_the_page_proposes_and_a_reviewer_merges_in_one_click(app, session, settings, bulletin, team):
    earlier = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone")
    call = phone_call(app, session, settings, bulletin, "13800138000", body=NEAR)
    reviewer = client_as(app, team["reviewer"])
    page = reviewer.get(f"/staff/submissions/{call.reference}").get_data(as_text=True)
    assert "可能重复的反映" in page and "同一电话" in page and "内容相近" in page
    merge = re.escape(f"/staff/submissions/{call.reference}/merge")
    form = re.search(rf'<form method="post" action="({merge})"[^>]*>(.*?)</form>', page, re.S)
    assert form and f'name="into" value="{earlier.reference}"' in form.group(2)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    response = reviewer.post(form.group(1), data=fields)
    assert response.status_code == 303
    session.rollback()
    merged = session.get(Submission, call.id)
    assert merged.state == "merged" and merged.merged_into_id == earlier.id
    page = reviewer.get(f"/staff/submissions/{call.reference}").get_data(as_text=True)
    assert "可能重复的反映" not in page


def test_clerks_and_handlers_see_proposals_without_a_merge_button(app, session, settings, bulletin, team):
    earlier = web(session, settings, bulletin, body=TEXT, phone="+8613800138000", reply_by="phone")
    later = web(session, settings, bulletin, body=NEAR, ago=timedelta(hours=1))
    earlier.unit_id = later.unit_id = team["a"].id
    session.commit()
    for role in ("clerk", "handler"):
        page = client_as(app, team[role]).get(f"/staff/submissions/{later.reference}").get_data(as_text=True)
        assert "可能重复的反映" in page and earlier.reference in page, role
        assert f"将此件合并到 {earlier.reference}" not in page, role
