"""What a channel itself recorded about a submission (``Submission.channel_facts``), as rows to show.

Personal data among them (a caller's number, a sender's address) is masked for whoever sees the
citizen masked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parseaddr

from feedback_app.core.masking import mask_address, mask_email, mask_name, mask_phone
from feedback_app.core.models import Channel
from feedback_app.intake.channels import CALLER_ANONYMOUS


@dataclass(frozen=True)
class FactRow:
    label: str
    value: str
    sensitive: bool = False  # personal data: masked for handlers
    items: list[str] = field(default_factory=list)  # several values, one per line


FACT_LABELS = {  # what another channel may record (the email channel), by key
    "message_id": "邮件标识（Message-ID）",
    "sender": "发件人",
    "from": "发件人",
    "subject": "邮件主题",
    "date": "发信时间",
    "mailbox": "收件邮箱",
    "to": "收件人",
    "attachments": "附件数",
    "charset": "字符集",
}
_SENSITIVE_KEYS = {"sender", "from", "to"}


def _when(value: str | None) -> str:
    if not value:
        return "未记录"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"


def _day(value: str | None, missing: str = "未记录") -> str:
    if not value:
        return missing
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{day.year}年{day.month}月{day.day}日"


def fact_rows(channel: str, facts: dict | None, *, masked: bool) -> list[FactRow]:
    """The facts as labelled lines for the submission page; personal data masked when ``masked``."""
    if not facts:
        return []
    rows: list[FactRow]
    if channel == Channel.phone.value:
        number = facts.get("caller_number")
        if number:
            caller = mask_phone(number) if masked else number
        elif facts.get("caller_number_absent") == CALLER_ANONYMOUS:
            caller = "匿名反映，未记录"
        else:
            caller = "未显示"
        minutes = facts.get("duration_minutes")
        rows = [
            FactRow("来电号码", caller, sensitive=bool(number)),
            FactRow("来电时间", _when(facts.get("called_at"))),
            FactRow("通话时长", f"{minutes} 分钟" if minutes is not None else "未记录"),
            FactRow("来电线路", facts.get("line") or "未记录"),
            FactRow("接听人", facts.get("taken_by") or "未记录"),
        ]
    elif channel == Channel.letter.value:
        name, address = facts.get("sender_name"), facts.get("return_address")
        note = facts.get("envelope_note")
        present = facts.get("envelope_note_present")
        rows = [
            FactRow("寄信人", (mask_name(name) if masked else name) if name else "未署名", sensitive=bool(name)),
            FactRow("回信地址", (mask_address(address) if masked else address) if address else "未写明",
                    sensitive=bool(address)),
            FactRow("邮戳日期", _day(facts.get("postmark_on"), "无法辨认或未记录")),
            FactRow("到达日期", _day(facts.get("arrived_on"))),
            FactRow(f"信封注明“{note}”" if note else "信封注明要求的字样", "是" if present else "否"),
            FactRow("扫描页数", f"{facts.get('pages_scanned', 0)} 个文件"),
        ]
    elif channel == Channel.visit.value:
        people = facts.get("visitors") or []
        lines = []
        for person in people:
            name = person.get("name") or "未留姓名"
            phone = person.get("phone")
            if masked:
                name, phone = mask_name(name) if person.get("name") else name, mask_phone(phone)
            lines.append(f"{name}（{phone}）" if phone else name)
        rows = [
            FactRow("来访代表", "；".join(lines) if lines else "匿名反映，未记录", sensitive=bool(lines),
                    items=lines),
            FactRow("来访人数", f"{facts.get('group_size', len(people))} 人"),
            FactRow("来访时间", _when(facts.get("visited_at"))),
            FactRow("接待地点", facts.get("place") or "未记录"),
            FactRow("接待人", facts.get("received_by") or "未记录"),
        ]
    else:
        rows = []
        for key, value in facts.items():
            if (key.endswith("_id") and key not in FACT_LABELS) or value in (None, "", [], {}):
                continue
            if masked and key not in FACT_LABELS:  # unknown to us: it may name the person
                continue
            sensitive = key in _SENSITIVE_KEYS
            if sensitive and masked:
                address = parseaddr(str(value))[1]
                value = mask_email(address) if "@" in address else "（已遮盖）"
            if isinstance(value, (list, tuple)):
                value = "；".join(str(v) for v in value)
            elif isinstance(value, dict):
                value = "；".join(f"{k}：{v}" for k, v in value.items())
            rows.append(FactRow(FACT_LABELS.get(key, key), str(value), sensitive=sensitive))
    return rows
