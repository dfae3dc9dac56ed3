"""The ``queue`` suite's made-up submissions: names, firms, streets, texts and replies, reproducibly random."""
from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from feedback_app.core.config import REPO_ROOT

SLUG = "huangpu-2025-03-28"
SEED_TEXT = REPO_ROOT / "feedback_app" / "bulletin" / "seed" / f"{SLUG}.txt"
UNITS = 12
CHUNK = 20_000
TZ_SHANGHAI = timezone(timedelta(hours=8))

# the columns seeded, in the order of the staged rows
SUBMISSION_COLUMNS = (
    "id", "reference", "year", "seq", "bulletin_id", "item_number", "channel", "kind", "body", "name",
    "phone", "email", "address", "reply_by", "anonymous", "publish_consent", "privacy_consent_at", "state",
    "rating", "query_code_hash", "form_token_hash", "client_hash", "body_hash", "received_at", "created_at",
    "version", "unit_id", "handler_id", "merged_into_id", "accepted_at", "concluded_at", "reject_reason",
    "next_due_on",
)
REPLY_COLUMNS = (
    "id", "submission_id", "body", "created_at", "drafted_by_id", "approved_at", "approved_by_id",
    "delivered_at", "delivery_note",
)


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力国宁志海燕斌鹏飞云"
STREETS = ["大沙街", "黄埔街", "红山街", "鱼珠街", "文冲街", "穗东街", "南岗街", "长洲街", "夏港街", "萝岗街",
           "联和街", "永和街", "云埔街", "长岭街", "九佛街", "新龙镇"]
FIRMS = ["科技", "物流", "建材", "餐饮", "制造", "贸易", "电子", "医药", "环保", "装饰"]
FIRM_PREFIXES = ["穗丰", "恒达", "宏图", "粤海", "华信", "金港", "鸿运", "南方", "开元", "新航", "科城", "东江"]
OPENERS = [
    "我是{street}的居民，", "本人是{street}一家{firm}企业的负责人，", "我单位是广州{prefix}{firm}有限公司，",
    "群众{name}反映，", "我叫{name}，在{street}经营一家小店，", "我们是{street}的个体工商户，",
]
TOPICS = [
    "办理退税时等了很久，", "税务部门上门检查频繁，", "纳税申报系统经常卡顿，", "希望简化税费缴纳流程，",
    "某物流有限公司拖欠货款，", "某建材有限公司长期占道经营，",
]
CLOSERS = ["希望有关部门尽快核实处理。", "请予以答复。", "恳请督促整改落实到位。", "盼复。", "望重视。"]
REPLY_OPENERS = ["经核查，", "您好！经调查核实，", "关于您反映的问题，经研究，", "收悉。经向相关部门了解，"]
REPLY_CLOSERS = ["特此答复。", "感谢您的监督。", "如有疑问，可来电咨询。"]


def bulletin_phrases() -> list[str]:
    text_ = SEED_TEXT.read_text(encoding="utf-8")
    parts = re.split(r"[\s,，。、；;：:！？“”\"（）()《》\[\]【】·—>]+", text_)
    return [p for p in parts if 2 <= len(p) <= 40 and re.search(r"[\u4e00-\u9fff]", p)]


class Generator:
    """Deterministic rows: the same seed gives the same data to both backends."""

    def __init__(self, rows: int, now: datetime, bulletin_id: int, seed: int = 20250328):
        self.rows, self.now, self.bulletin_id = rows, now, bulletin_id
        self.seed = seed
        self.phrases = bulletin_phrases()

    def _text(self, rng: random.Random, length: int, opener: str, closer: str, extra: float) -> str:
        parts = [opener]
        size = len(opener)
        if rng.random() < extra:
            topic = rng.choice(TOPICS)
            parts.append(topic)
            size += len(topic)
        phrases, choice = self.phrases, rng.choice
        while size < length:
            p = choice(phrases)
            parts.append(p)
            parts.append("，" if rng.random() < 0.75 else "。")
            size += len(p) + 1
        body = "".join(parts)[: max(length - len(closer), 1)]
        return body.rstrip("，。") + "，" + closer

    def _opener(self, rng: random.Random) -> str:
        return rng.choice(OPENERS).format(
            street=rng.choice(STREETS), firm=rng.choice(FIRMS), prefix=rng.choice(FIRM_PREFIXES),
            name=rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else ""),
        )

    def chunks(self) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(submissions, replies) in chunks, oldest first, as Python values (aware datetimes, dates)."""
        rng = random.Random(self.seed)
        span = timedelta(days=730).total_seconds()
        start = self.now - timedelta(days=730)
        offsets = sorted(rng.random() * span for _ in range(self.rows))
        seqs: dict[int, int] = {}
        reply_id = 0
        fake_hash = "0" * 64
        subs: list[tuple] = []
        replies: list[tuple] = []
        kinds, kind_w = ["suggestion", "accusation", "request", "enquiry"], [40, 20, 25, 15]
        channels, channel_w = ["web", "phone", "email", "letter", "visit"], [55, 20, 8, 12, 5]
        unit_w = [3 if u <= 3 else 1 for u in range(1, UNITS + 1)]
        units = list(range(1, UNITS + 1))
        for n, offset in enumerate(offsets, start=1):
            received = start + timedelta(seconds=offset)
            age = (self.now - received).days
            state = _state(rng, age)
            local = received.astimezone(TZ_SHANGHAI)
            seqs[local.year] = seq = seqs.get(local.year, 0) + 1
            accepted = concluded = due = None
            if state not in ("received", "rejected", "merged"):
                accepted = received + timedelta(days=rng.randint(1, 10), seconds=rng.randint(0, 30000))
            if state in ("answered", "closed", "reopened"):
                concluded = accepted + timedelta(days=rng.randint(5, 55))
            if state == "received":
                due = local.date() + timedelta(days=15)
            elif state in ("accepted", "assigned", "reopened"):
                due = accepted.astimezone(TZ_SHANGHAI).date() + timedelta(days=60)
            elif state == "answered" and rng.random() < 0.3:
                due = concluded.astimezone(TZ_SHANGHAI).date() + timedelta(days=21)
            unit = rng.choices(units, unit_w)[0] if accepted is not None else None
            anonymous = rng.random() < 0.2
            kind = rng.choices(kinds, kind_w)[0]
            body = self._text(rng, rng.randint(30, 300), self._opener(rng), rng.choice(CLOSERS), 0.05)
            subs.append((
                n, f"HP{local.year}-{seq:06d}", local.year, seq, self.bulletin_id,
                0 if rng.random() < 0.3 else rng.randint(1, 14), rng.choices(channels, channel_w)[0], kind,
                body, None if anonymous else rng.choice(SURNAMES) + rng.choice(GIVEN), None, None, None,
                "online", anonymous, rng.random() < 0.4, received, state,
                rng.choice(["satisfied", "fairly_satisfied", "dissatisfied"])
                if state == "closed" and rng.random() < 0.5 else None,
                fake_hash, None, None, fake_hash, received, received, 1, unit, None,
                max(1, n - rng.randint(1, 500)) if state == "merged" and n > 1 else None,
                accepted, concluded, "duplicate" if state == "rejected" else None, due,
            ))
            if concluded is not None and rng.random() < (0.23 if state != "reopened" else 0.8):
                reply_id += 1
                reply_at = min(concluded, self.now)
                replies.append((
                    reply_id, n,
                    self._text(rng, rng.randint(30, 200), rng.choice(REPLY_OPENERS), rng.choice(REPLY_CLOSERS),
                               0.05),
                    reply_at, None, reply_at, None, reply_at, None,
                ))
            if len(subs) >= CHUNK:
                yield subs, replies
                subs, replies = [], []
        if subs:
            yield subs, replies


def _state(rng: random.Random, age_days: int) -> str:
    if age_days < 15:
        weights = {"received": 35, "accepted": 25, "assigned": 30, "rejected": 5, "merged": 2, "answered": 3}
    elif age_days < 75:
        weights = {"received": 3, "accepted": 10, "assigned": 37, "answered": 25, "closed": 15, "rejected": 6,
                   "merged": 2, "reopened": 2}
    else:
        weights = {"received": 0.3, "accepted": 0.7, "assigned": 2, "answered": 12, "closed": 74, "rejected": 7,
                   "merged": 2.5, "reopened": 1.5}
    return rng.choices(list(weights), list(weights.values()))[0]


