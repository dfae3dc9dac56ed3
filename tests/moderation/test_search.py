"""Full-text search over comment texts and replies: exact, kept up to date by the database, literal."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update

from feedback_app.core.models import Reply, Role, StaffUser, Submission
from feedback_app.migrations import upgrade
from feedback_app.moderation import queue
from feedback_app.search.backlog import PENDING, index_backlog
from feedback_app.search.match import LOOKUP, PROBE, WALK, fts_phrase, search_clause
from tests.factories import create_reply, create_web_submission

pytestmark = pytest.mark.usefixtures("search_texts")  # pending texts and indexed ones


@pytest.fixture
def reviewer(session):
    user = StaffUser(username="reviewer", password_hash="-", role=Role.reviewer.value)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def make(session, settings, bulletin, search_texts):
    def make(body: str) -> int:
        submission, _ = create_web_submission(session, settings, bulletin=bulletin, body=body)
        if session.get_bind().dialect.name == "sqlite":  # the text is where this run means it to be
            waiting = session.scalar(text(f"SELECT count(*) FROM {PENDING} WHERE id = :id"), {"id": submission.id})
            assert waiting == (search_texts == "pending")
        return submission.id

    return make


def assert_index_follows_text(session) -> None:
    """SQLite: FTS5 compares each full-text index with its table's texts (an error if they differ), and
    checks the structure of the contentless pairs indexes, once the pending texts are indexed too."""
    if session.get_bind().dialect.name == "sqlite":
        index_backlog(session)
        for fts in ("submission_fts", "reply_fts", "submission_bigram", "reply_bigram"):
            session.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))
        session.rollback()


def found(session, q: str, plan: str = WALK) -> set[int]:
    dialect = session.get_bind().dialect.name
    return set(session.scalars(select(Submission.id).where(search_clause(dialect, q, plan))))


def through_queue(session, settings, viewer, q: str) -> set[int]:
    """What the staff queue lists for ``q``, every page of it."""
    ids: list[int] = []
    f = queue.Filters(q=q)
    while True:
        result = queue.page(session, settings, viewer, f, size=2)
        ids += [s.id for s in result.rows]
        if result.next_cursor is None:
            return set(ids)
        f = queue.Filters(q=q, after=result.next_cursor)


def test_finds_a_phrase_in_the_body_and_nothing_unrelated(session, settings, reviewer, make):
    hit = make("建议进一步优化营商环境，减少对企业正常经营的干扰。")
    also = make("营商环境还有改进空间。")
    make("建议规范涉企会议的时间安排，提前通知企业。")
    make("营商和环境是两回事。")
    assert found(session, "营商环境") == {hit, also}
    assert found(session, "优化营商环境") == {hit}
    assert through_queue(session, settings, reviewer, "营商环境") == {hit, also}
    assert queue.counts(session, settings, reviewer, queue.Filters(q="营商环境"))["received"] == 2
    assert found(session, "营商环境好") == set()


def test_finds_a_phrase_in_a_reply_added_later_and_follows_edits(session, settings, reviewer, make):
    target = make("反映小区门口道路长期占道经营的问题。")
    make("反映另一条道路的照明问题。")
    assert found(session, "物业公司") == set()

    reply = create_reply(session, submission=session.get(Submission, target),
                         body="经核查，涉事物业公司已清理占道摊点。")
    assert found(session, "物业公司") == {target}
    assert through_queue(session, settings, reviewer, "涉事物业") == {target}

    reply.body = "经核查，城管部门已清理占道摊点。"
    session.commit()
    assert found(session, "物业公司") == set()
    assert found(session, "城管部门") == {target}
    assert found(session, "占道经营") == {target}  # the submission's own text is still there

    create_reply(session, submission=session.get(Submission, target), body="补充答复：已安排专人巡查。")
    assert found(session, "专人巡查") == {target}
    assert found(session, "城管部门") == {target}

    session.execute(delete(Reply).where(Reply.id == reply.id))
    session.commit()
    assert found(session, "城管部门") == set()
    assert found(session, "专人巡查") == {target}
    assert_index_follows_text(session)


def test_follows_a_change_of_the_submission_text_and_its_removal(session, make):
    target = make("原文提到了违规收费。")
    session.execute(update(Submission).where(Submission.id == target).values(body="更正后的内容：乱收费。"))
    session.commit()
    assert found(session, "违规收费") == set()
    assert found(session, "乱收费") == {target}

    assert_index_follows_text(session)

    session.execute(delete(Submission).where(Submission.id == target))
    session.commit()
    assert found(session, "乱收费") == set()
    assert_index_follows_text(session)
    if session.get_bind().dialect.name == "sqlite":
        stale = text("SELECT rowid FROM submission_fts WHERE submission_fts MATCH :q")
        assert session.scalars(stale, {"q": fts_phrase("乱收费")}).all() == []


def test_sqlite_every_write_is_indexed_by_a_trigger(session):
    """A migration that rebuilds submission or reply on SQLite drops these: it must create them again."""
    if session.get_bind().dialect.name != "sqlite":  # PostgreSQL: the trigram indexes instead
        trigram = set(session.scalars(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%gin_trgm_ops%'")))
        assert {"submission", "reply"} <= trigram
        bigram = set(session.scalars(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%feedback_bigrams(body)%'")))
        assert {"submission", "reply"} <= bigram
        return
    names = set(session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    expected = {f"reply_{index}_{event}" for index in ("fts", "bigram") for event in ("insert", "update", "delete")}
    expected |= {f"submission_search_{event}" for event in ("insert", "update", "delete")}  # via the backlog
    assert expected <= names


def test_a_phrase_does_not_span_the_text_and_a_reply(session, make):
    target = make("希望改善营商")
    create_reply(session, submission=session.get(Submission, target), body="环境建设方面的工作已经展开。")
    assert found(session, "营商环境") == set()
    assert found(session, "改善营商") == {target}
    assert found(session, "环境建设") == {target}
    assert found(session, "营商\n环境") == set()


@pytest.mark.parametrize("q", ["税", "企业"])
def test_one_and_two_characters_are_found(session, settings, reviewer, make, q):
    in_body = make("关于税务窗口排队时间过长、企业办事不便的问题。")
    exactly = make(q)  # shorter than one trigram: an FTS5 trigram table holds no term for it at all
    in_reply = make("反映的问题已转交有关部门。")
    create_reply(session, submission=session.get(Submission, in_reply), body=f"经核查，{q}相关问题已处理。")
    make("这是一条关于道路照明的意见建议。")
    assert found(session, q) == {in_body, exactly, in_reply}
    assert through_queue(session, settings, reviewer, q) == {in_body, exactly, in_reply}


def test_short_queries_are_correct_where_a_trigram_like_finds_nothing(session, make):
    """On SQLite 3.40 a LIKE of one or two non-ASCII characters on the trigram table finds no row."""
    target = make("关于税务窗口排队时间过长的问题。")
    assert found(session, "税") == {target}
    assert found(session, "税务") == {target}
    if session.get_bind().dialect.name == "sqlite":
        buggy = session.scalars(text("SELECT rowid FROM submission_fts WHERE body LIKE '%税务%'")).all()
        assert buggy == []  # the reason the short queries go to the base tables


@pytest.mark.parametrize(
    ("q", "body"),
    [
        ('"你好"', '来电人说"你好"之后就挂断了。'),
        ('"', '信中写着"请尽快处理"。'),
        ('""', '表格里只有两个引号""。'),
        ("C AND D", "文件编号为 C AND D 的通知。"),
        ("OR 整改", "标题为 OR 整改 的文件。"),
        ("NEAR(", "邮件标题写着 NEAR( 测试。"),
        ("NEAR(整改 落实)", "会议纪要原文：NEAR(整改 落实)。"),
        ("营商*", "他写的是营商*两个字加星号。"),
        ("*", "问卷第3题打了*号。"),
        ("body:营商", "备注栏写着 body:营商 的字样。"),
        ("-整改", "附件名称为-整改-清单。"),
        ("^整改", "开头有个^整改的符号。"),
    ],
)
def test_fts_operators_and_quotes_are_literal(session, make, q, body):
    target = make(body)
    make("建议进一步优化营商环境，整改落实到位，你好。")  # has the words, not the literal string
    make("AND OR NOT NEAR 这些词出现在这里，C 和 D 分开。")
    assert found(session, q) == {target}


@pytest.mark.parametrize(
    ("q", "body"),
    [
        ("%", "满意度达到 95% 以上。"),
        ("_", "文件名为 report_final.pdf。"),
        ("5%", "收费上浮了 5% 左右。"),
        ("10%", "涨价10%以上，群众意见很大。"),
        ("a_b", "账号是 a_b 的用户。"),
        ("\\", "路径里有反斜杠 C:\\Users。"),
        ("\\%", "奇怪的字符串 \\% 出现在表单里。"),
    ],
)
def test_like_wildcards_are_literal(session, make, q, body):
    target = make(body)
    make("收费上浮了 105 元左右，另有 axb 和 a-b 两个账号。")
    make("满意度达到九成以上。")
    assert found(session, q) == {target}


def test_latin_letters_match_regardless_of_case(session, make):
    target = make("反映 ABC 公司拖欠工资。")
    make("反映 XYZ 公司拖欠工资。")
    assert found(session, "abc") == {target}
    assert found(session, "Abc 公司") == {target}
    assert found(session, "ab") == {target}


def test_search_combines_with_the_other_filters(session, settings, reviewer, make):
    first = make("关于停车收费的意见。")
    second = make("停车收费标准不清楚。")
    session.execute(update(Submission).where(Submission.id == second).values(state="accepted"))
    session.commit()
    f = queue.Filters(q="停车收费", state="accepted")
    assert [s.id for s in queue.page(session, settings, reviewer, f).rows] == [second]
    counts = queue.counts(session, settings, reviewer, f)
    assert (counts["received"], counts["accepted"], sum(counts.values())) == (1, 1, 2)
    both = queue.page(session, settings, reviewer, queue.Filters(q="停车收费")).rows
    assert [s.id for s in both] == [second, first]


def test_fts_phrase_quotes():
    assert fts_phrase('a"b') == '"a""b"'
    assert fts_phrase("NEAR(x") == '"NEAR(x"'


def test_long_queries_use_the_index(session, make):
    make("建议进一步优化营商环境。")
    dialect = session.get_bind().dialect.name
    stmt = (select(Submission.id).where(search_clause(dialect, "营商环境"))
            .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(26))
    sql = str(stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    if dialect == "sqlite":
        plan = " ".join(r[3] for r in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert "submission_fts VIRTUAL TABLE INDEX" in plan and "reply_fts VIRTUAL TABLE INDEX" in plan
        # the page walks the queue's order and tests ids against the matches: no sorting of all matches
        assert "INDEX ix_submission_received_at" in plan and "TEMP B-TREE" not in plan, plan
    else:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
        assert "ix_submission_body_trgm" in plan and "ix_reply_body_trgm" in plan
    session.rollback()


def test_the_migration_indexes_existing_rows(session, settings, bulletin):
    """Rows written before the search objects existed are found once the migration has run."""
    from alembic import command

    from feedback_app.core.database import utcnow
    from feedback_app.migrations import alembic_config

    engine = session.get_bind()
    session.close()
    now = utcnow()
    try:
        command.downgrade(alembic_config(engine), "0003")
        with engine.begin() as conn:  # the columns of revision 0003 only
            target = conn.execute(insert(Submission.__table__).values(
                reference="HP2025-000001", year=2025, seq=1, bulletin_id=bulletin.id, item_number=1,
                channel="web", kind="suggestion", body="迁移之前就已存在的意见：营商环境。", reply_by="online",
                state="received", query_code_hash="0" * 64, body_hash="0" * 64, received_at=now,
                created_at=now,
            ).returning(Submission.id)).scalar_one()
            conn.execute(insert(Reply.__table__).values(submission_id=target, body="迁移之前的答复：已整改。",
                                                        created_at=now))
    finally:
        upgrade(engine)
    assert found(session, "营商环境") == {target}
    assert found(session, "迁移之前的答复") == {target}
    assert found(session, "税") == set()
    assert found(session, "营商") == {target} and found(session, "存") == {target}  # the pairs index too
    assert found(session, "答") == {target} and found(session, "改。") == {target}  # a reply's, at its end
    assert_index_follows_text(session)


# --- one and two characters: the index of character pairs (migration 0008) ------------------------

LONG_TEXT = "".join(chr(0x4E00 + (i * 7919) % 2000) for i in range(700))  # past the 256-character blocks
CORPUS = [
    # (text of the submission, texts of its replies)
    ("关于企业税务窗口排队时间过长的问题。", ["经核查，税务部门已增设窗口。"]),
    ("税", []),
    ("企业", []),
    ("退税", ["业"]),
    ("税务局工作人员态度差", ["已转交，请企"]),
    ("ABC公司拖欠工资", ["abc 公司已整改"]),
    ("xAy", []),
    ("a", ["Ab"]),
    ("“企业”，（税）。100%满意 a_b C:\\路径", []),
    ('他说"你好"*号', ["引号'和反斜杠\\"]),
    ("第一行\n第二行 末尾空格 ", []),
    ("ＡＢＣ全角字母与ｘ", []),
    ("表情😀好评😀", ["😀"]),
    ("Äpfel und äpfel ÖL", []),
    (LONG_TEXT, [LONG_TEXT[250:520]]),
    ("这条意见与搜索无关", ["答复也无关"]),
]


def _queries() -> list[str]:
    """Every one and two characters of the corpus, some in another case, and some found nowhere."""
    texts = [t for body, replies in CORPUS for t in (body, *replies)]
    qs = {t[i:i + n] for t in texts for n in (1, 2) for i in range(len(t) - n + 1)}
    qs |= {q.upper() for q in list(qs)} | {q.lower() for q in list(qs)} | {q.swapcase() for q in list(qs)}
    qs |= {"乙丙", "Z", "zz", "%", "_", "%%", "\\%", "'", "''", '"', '""', "*", "企*", " ", "ab", "aB", "ＡＢ", "ａｂ"}
    return sorted(q for q in qs if q)


def _scan(dialect: str, q: str):
    """The answer of a scan of every text: what the index must equal."""
    from sqlalchemy import or_

    from feedback_app.search.match import _contains

    contains = _contains(dialect, q)
    return or_(contains(Submission.body), Submission.id.in_(select(Reply.submission_id).where(contains(Reply.body))))


def test_short_queries_equal_a_scan_of_every_text(session, make):
    ids = []
    for body, replies in CORPUS:
        ids.append(make(body))
        for reply in replies:
            create_reply(session, submission=session.get(Submission, ids[-1]), body=reply)
    dialect = session.get_bind().dialect.name
    plans = (WALK, LOOKUP, PROBE)  # each way of meeting the rest of the query (PostgreSQL: two of them)
    mismatches = {}
    for q in _queries():
        expected = set(session.scalars(select(Submission.id).where(_scan(dialect, q))))
        for plan in plans:
            if found(session, q, plan) != expected:
                mismatches[q, plan] = (found(session, q, plan), expected)
    assert mismatches == {}
    # and a few by hand, so that the scan itself is checked too
    by_text = dict(zip([body for body, _ in CORPUS], ids, strict=False))
    assert found(session, "税") == {by_text[b] for b in ("关于企业税务窗口排队时间过长的问题。", "税", "退税",
                                                        "税务局工作人员态度差", "“企业”，（税）。100%满意 a_b C:\\路径")}
    assert found(session, "企") >= {by_text["企业"], by_text["税务局工作人员态度差"]}  # the last character of a reply
    assert found(session, "业") >= {by_text["企业"], by_text["退税"]}  # a reply of one character
    assert found(session, "ab") == {by_text["ABC公司拖欠工资"], by_text["a"]}  # ABC, and the reply Ab
    assert found(session, "😀") == {by_text["表情😀好评😀"]}
    assert found(session, LONG_TEXT[255:257]) == {by_text[LONG_TEXT]}  # a pair across the first block's end
    assert found(session, LONG_TEXT[-1]) >= {by_text[LONG_TEXT]}


def test_short_queries_follow_edits_and_deletes(session, settings, reviewer, make):
    target = make("原文提到了违规收费。")
    other = make("无关的意见")
    assert found(session, "违规") == {target}
    session.execute(update(Submission).where(Submission.id == target).values(body="更正后的内容：乱收费。"))
    session.commit()
    assert found(session, "违规") == set() and found(session, "乱") == {target}

    reply = create_reply(session, submission=session.get(Submission, other), body="经核查，物业已整改")
    assert found(session, "物业") == {other} and found(session, "改") == {other}
    reply.body = "经核查，城管已处理"
    session.commit()
    assert found(session, "物业") == set() and found(session, "城管") == {other}
    assert through_queue(session, settings, reviewer, "城管") == {other}
    assert queue.counts(session, settings, reviewer, queue.Filters(q="城"))["received"] == 1
    session.execute(delete(Reply).where(Reply.id == reply.id))
    session.commit()
    assert found(session, "城管") == set()

    session.execute(delete(Submission).where(Submission.id == target))
    session.commit()
    assert found(session, "乱") == set()
    assert_index_follows_text(session)


def test_short_queries_use_the_pairs_index(session, make):
    make("关于企业税务的意见。")
    dialect = session.get_bind().dialect.name
    for q in ("税", "企业"):
        stmt = (select(Submission.id).where(search_clause(dialect, q))
                .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(26))
        sql = str(stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if dialect == "sqlite":
            plan = " ".join(r[3] for r in session.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "submission_bigram VIRTUAL TABLE INDEX" in plan and "reply_bigram VIRTUAL TABLE INDEX" in plan
            assert "_fts" not in plan, plan
        else:
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
            assert "ix_submission_body_bigram" in plan and "ix_reply_body_bigram" in plan, plan
        session.rollback()


def test_sqlite_chooses_how_to_join_the_matches_by_their_number(session, make, monkeypatch):
    """Few matches: looked up by id; most texts: probed row by row along the page's order; else walked."""
    from feedback_app.search import match as search

    if session.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's planner chooses from the statistics of its indexes
    for i in range(12):
        make(f"第{i}条：关于企业税务的意见。" if i < 10 else "无关的意见。")
    monkeypatch.setattr(search, "LOOKUP_PAGE_SQUARE", 1)  # up to isqrt(12) = 3 matches
    monkeypatch.setattr(search, "LOOKUP_COUNTS_SHARE", 4)  # up to 12 // 4 = 3 matches
    plan = search.sqlite_plan
    assert plan(session, "王伟芳", counting=False, may_probe=True) == LOOKUP
    assert plan(session, "企业", counting=False, may_probe=True) == PROBE
    assert plan(session, "企业税务", counting=False, may_probe=True) == PROBE
    assert plan(session, "企业", counting=False, may_probe=False) == WALK
    assert plan(session, "企业", counting=True, may_probe=True) == WALK  # a count never probes
    assert plan(session, "无关", counting=True, may_probe=True) == LOOKUP
