"""Parse a rectification bulletin (巡察整改通报) copied off a web page.

The result is an immutable tree: parts (一、) hold sections ((一)), sections hold
numbered rectification items (1.), items hold measures (一是…二是…). Text is kept
exactly as written; only indentation and trailing whitespace are removed.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

__all__ = [
    "BulletinParseError",
    "Contacts",
    "Item",
    "Measure",
    "ParsedBulletin",
    "Part",
    "Section",
    "parse_bulletin",
]


class BulletinParseError(ValueError):
    """The text is not a bulletin of the expected shape; ``line`` is 1-based."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(line, detail)
        self.line = line
        self.message = f"第{line}行：{detail}"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Measure:
    number: int
    ordinal: str
    text: str


@dataclass(frozen=True)
class Item:
    number: int
    title: str
    measures: tuple[Measure, ...]
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Section:
    number: int
    marker: str
    title: str
    paragraphs: tuple[str, ...]
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Part:
    number: int
    marker: str
    title: str
    paragraphs: tuple[str, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Contacts:
    phone: str | None
    email: str | None
    address: str | None
    envelope_note: str | None
    postcode: str | None


@dataclass(frozen=True)
class ParsedBulletin:
    title: str
    issuers: tuple[str, ...]
    published_on: datetime.date
    source: str | None
    intro: tuple[str, ...]
    parts: tuple[Part, ...]
    closing: str
    contacts: Contacts

    @property
    def items(self) -> tuple[Item, ...]:
        """All rectification items, in document order."""
        return tuple(i for p in self.parts for s in p.sections for i in s.items)


_CN_DIGITS = "一二三四五六七八九"
_CN = "[一二三四五六七八九十]+"
_DIGIT = "[0-9０-９]"
_EDGE = re.compile(r"^[\s\ufeff\u200b]+|[\s\ufeff\u200b]+$")
_PART = re.compile(rf"({_CN})、(.*)", re.S)
_SECTION = re.compile(rf"([(（]({_CN})[)）])(.*)", re.S)
_ITEM = re.compile(rf"({_DIGIT}{{1,3}})[.．](?!{_DIGIT})(.*)", re.S)
_ORDINAL = re.compile(r"(?:^|(?<=[。；;：:]))\s*([一二三四五六七八九十])是")
_DATE = re.compile(
    rf"发布时间\s*[:：]?\s*({_DIGIT}{{4}})\s*[-－/.年]\s*({_DIGIT}{{1,2}})\s*[-－/.月]\s*({_DIGIT}{{1,2}})"
)
_SOURCE = re.compile(r"来源\s*[:：]\s*(.*)")
_PHONE = re.compile(rf"联系电话\s*[:：]?\s*({_DIGIT}(?:[-－\s]?{_DIGIT})*)")
_EMAIL = re.compile(r"电子邮箱\s*[:：]?\s*([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
_ADDRESS = re.compile(r"通信地址\s*[:：]?\s*([^(（,，;；。]+)")
_ENVELOPE = re.compile(r"信封上?请?注明\s*[:：]?\s*[“\"「『]?([^)）”\"」』]+)")
_POSTCODE = re.compile(rf"(?:邮编|邮政编码)\s*[:：]?\s*({_DIGIT}{{6}})")


def _cn_number(s: str) -> int | None:
    """Value of a Chinese numeral from 一 to 九十九, else None."""
    d = {c: i for i, c in enumerate(_CN_DIGITS, 1)}
    if len(s) == 1:
        return 10 if s == "十" else d.get(s)
    if len(s) == 2 and s[0] == "十" and s[1] in d:
        return 10 + d[s[1]]
    if len(s) in (2, 3) and s[0] in d and s[1] == "十":
        if len(s) == 2:
            return d[s[0]] * 10
        return d[s[0]] * 10 + d[s[2]] if s[2] in d else None
    return None


def _search(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    value = m.group(1).strip() if m else ""
    return value or None


def _contacts(closing: str) -> Contacts:
    return Contacts(
        phone=_search(_PHONE, closing),
        email=_search(_EMAIL, closing),
        address=_search(_ADDRESS, closing),
        envelope_note=_search(_ENVELOPE, closing),
        postcode=_search(_POSTCODE, closing),
    )


class _Builder:
    """Collects the body paragraphs into parts, sections, items and measures."""

    def __init__(self) -> None:
        self.intro: list[str] = []
        self.parts: list[dict] = []
        self.section: dict | None = None
        self.item: dict | None = None
        self.next_item = 1

    def feed(self, line: int, text: str) -> None:
        m = _PART.match(text)
        if m and (n := _cn_number(m.group(1))) is not None:
            self.parts.append({"number": n, "marker": m.group(1) + "、", "title": m.group(2).strip(),
                               "paragraphs": [], "sections": []})
            self.section = self.item = None
            return
        m = _SECTION.match(text)
        if m and (n := _cn_number(m.group(2))) is not None:
            self._section(line, n, m.group(1), m.group(3).strip())
            return
        m = _ITEM.match(text)
        if m:
            self._item(line, int(m.group(1)), m.group(2).strip())
            return
        if self.item is not None:
            self._measures(text)
        elif _ORDINAL.match(text):
            raise BulletinParseError(line, "整改措施（一是、二是……）出现在整改事项之外")
        elif self.section is not None:
            self.section["paragraphs"].append(text)
        elif self.parts:
            self.parts[-1]["paragraphs"].append(text)
        else:
            self.intro.append(text)

    def _section(self, line: int, number: int, marker: str, rest: str) -> None:
        if not self.parts:
            raise BulletinParseError(line, f"“{marker}”出现在第一部分（一、）之前")
        cut = rest.find("。")
        title, body = (rest[:cut], rest[cut + 1:].strip()) if 0 <= cut < len(rest) - 1 else (rest, "")
        self.section = {"number": number, "marker": marker, "title": title,
                        "paragraphs": [body] if body else [], "items": []}
        self.parts[-1]["sections"].append(self.section)
        self.item = None

    def _item(self, line: int, number: int, title: str) -> None:
        if self.section is None:
            raise BulletinParseError(line, f"整改事项 {number} 出现在任何方面（(一)）之前")
        if number != self.next_item:
            raise BulletinParseError(line, f"事项编号应为 {self.next_item}，实际为 {number}")
        self.next_item += 1
        self.item = {"number": number, "title": title, "measures": [], "paragraphs": []}
        self.section["items"].append(self.item)

    def _measures(self, text: str) -> None:
        """Split a paragraph of the current item at 一是, 二是, … in sequence."""
        assert self.item is not None  # feed() splits a paragraph into measures only within an item
        measures = self.item["measures"]
        cuts: list[re.Match[str]] = []
        for m in _ORDINAL.finditer(text):
            if _cn_number(m.group(1)) == len(measures) + len(cuts) + 1:
                cuts.append(m)
        lead = text[: cuts[0].start()].strip() if cuts else text
        if lead:
            if measures:
                measures[-1][1] += "\n" + lead
            else:
                self.item["paragraphs"].append(lead)
        for k, m in enumerate(cuts):
            end = cuts[k + 1].start() if k + 1 < len(cuts) else len(text)
            measures.append([m.group(1) + "是", text[m.end():end].strip()])

    def build(self) -> tuple[tuple[str, ...], tuple[Part, ...]]:
        def item(d: dict) -> Item:
            ms = tuple(Measure(n, o, t) for n, (o, t) in enumerate(d["measures"], 1))
            return Item(d["number"], d["title"], ms, tuple(d["paragraphs"]))

        def section(d: dict) -> Section:
            return Section(d["number"], d["marker"], d["title"], tuple(d["paragraphs"]),
                           tuple(item(i) for i in d["items"]))

        parts = tuple(Part(p["number"], p["marker"], p["title"], tuple(p["paragraphs"]),
                           tuple(section(s) for s in p["sections"])) for p in self.parts)
        return tuple(self.intro), parts


def _lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def _date(line: int, text: str) -> datetime.date:
    m = _DATE.search(text)
    if not m:
        raise BulletinParseError(line, "无法识别发布时间（应为 发布时间:YYYY-MM-DD）")
    try:
        return datetime.date(*(int(g) for g in m.groups()))
    except ValueError:
        raise BulletinParseError(line, f"发布时间 {m.group(1)}-{m.group(2)}-{m.group(3)} 不是有效日期") from None


def _parse(text: str) -> ParsedBulletin:
    lines = _lines(text)
    last = max(len(lines), 1)
    paras = [(n, s) for n, raw in enumerate(lines, 1) if (s := _EDGE.sub("", raw))]
    at = next((i for i, (_, s) in enumerate(paras) if s.startswith("发布时间")), None)
    if at is None:
        raise BulletinParseError(last, "未找到“发布时间”行")
    date_line, date_text = paras[at]
    if at == 0:
        raise BulletinParseError(date_line, "“发布时间”行之前没有标题")
    title = paras[at - 1][1]
    issuers = tuple(title.split("关于", 1)[0].split()) if "关于" in title else ()
    published_on = _date(date_line, date_text)
    body = paras[at + 1:]
    source = _search(_SOURCE, date_text)
    if source is None and body and body[0][1].startswith("来源"):
        source = _search(_SOURCE, body[0][1])
        body = body[1:]

    builder = _Builder()
    closing: tuple[int, str] | None = None
    for line, para in body:
        if para.startswith("欢迎") and "监督" in para:
            closing = (line, para)
            break
        builder.feed(line, para)
    if not builder.parts:
        raise BulletinParseError(closing[0] if closing else last, "未找到任何部分（一、二、三、……）")
    if closing is None:
        raise BulletinParseError(last, "缺少结尾段落（欢迎……监督）")
    intro, parts = builder.build()
    return ParsedBulletin(title, issuers, published_on, source, intro, parts, closing[1], _contacts(closing[1]))


def parse_bulletin(text: str) -> ParsedBulletin:
    """Parse a bulletin; any malformed text raises BulletinParseError naming the line."""
    if not isinstance(text, str):
        raise TypeError(f"parse_bulletin expects str, not {type(text).__name__}")
    try:
        return _parse(text)
    except BulletinParseError:
        raise
    except Exception as exc:
        raise BulletinParseError(1, f"无法解析通报：{exc}") from exc
