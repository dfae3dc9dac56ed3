"""Patterns of personal details anyone may have typed: numbers, e-mail, ID cards, plates, addresses, names."""
from __future__ import annotations

import re

from feedback_app.outcomes.redaction.own import ADMIN, SPECIFIC
from feedback_app.outcomes.redaction.text import (
    COMPOUND_SURNAMES,
    NAME_INTROS,
    NOT_IN_NAME,
    PHONE_WORDS,
    PLACEHOLDERS,
    SURNAMES,
    TITLES,
    Finding,
    is_cjk,
    masked_name,
)

_C = r"[\u4e00-\u9fff]"
# Characters that do not begin or continue a place name (particles, and verbs met before addresses).
_STOP = "在住是于的我家到从向和与及往去来了对把被给为址请该这那其此有没不也都就还又很个某映位靠近附旁边经过途沿达至时之"
_N = rf"(?:(?![{_STOP}]){_C})"
_ROAD = r"(?:大道|大街|路|街(?!道)|巷|弄|胡同)"
_PLACE = r"(?:小区|花园|家园|新村|新城|公寓|大厦|广场|苑|村|社区|屯|组|工业园|园区)"
_UNIT = (r"(?:[0-9]+(?:号楼|号院|号之[0-9]+|号|栋|幢|座|单元|楼|层|室|户|房|弄|巷|组|铺|档)"
         r"|[一二三四五六七八九十百零〇]+(?:号楼|号|栋|幢|单元|组))")
_DASHED = r"[0-9]+(?:-[0-9]+){1,3}(?:室|房|号)?"
# Atomic groups: each place name is the shortest run ending in a suffix, and is not tried again
# shorter or longer (which would make the search exponential on text like 路路路…).
ADDRESS_RE = re.compile(
    rf"(?>{_N}{{1,10}}?(?:{ADMIN}|{_ROAD}|{_PLACE})){{1,6}}\s?(?>{_UNIT}\s?-?\s?){{1,5}}"
    rf"|(?>{_N}{{1,10}}?(?:{_ROAD}|{_PLACE})){{1,6}}\s?{_DASHED}"
    r"|(?:[0-9]+(?:号楼|栋|幢|座|单元|楼|层|室|户|房)){2,5}"
)
ADDRESS_INTRO_RE = re.compile(
    r"(?:住址|家住|住在|现住|居住在|居住于|住于|通信地址|通讯地址|联系地址|家庭地址|地址)\s*[:：是为在]?\s*"
    r"([^，。；;,.\n！!？?（）()]{3,40})"
)
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*\s*(?:@|\(at\)|\[at\]|#)\s*"
    r"[A-Za-z0-9\-]+(?:\s*(?:\.|。|\(dot\)|\[dot\])\s*[A-Za-z0-9\-]+)*\s*(?:\.|。|\(dot\)|\[dot\])\s*[A-Za-z]{2,}",
    re.IGNORECASE,
)
# Any other address with an @ (internationalised ones: 用户@例子.中国): the word around it.
LOOSE_EMAIL_RE = re.compile(r"[\w.%+\-]{1,20}\s*@\s*[\w\-]+(?:\.[\w\-]+)+")
CONTACT_RE = re.compile(
    r"(?:qq|微信|wechat|weixin|vx|wx)\s*(?:号码|号)?\s*[:：是为]?\s*([A-Za-z][A-Za-z0-9_\-]{5,19}|[0-9]{5,12})",
    re.IGNORECASE,
)
PLATE_RE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z]\s?[A-Z0-9]{4,5}[A-Z0-9挂学警]?"
                      r"(?![A-Za-z0-9])")
# Digits with up to three separators between them, and the + or ( before them.
NUMBER_RUN_RE = re.compile(r"\(?(?:(?:\+|00)\s*)?\(?\d(?:[\s\-.·()/]{0,3}\d)*(?:[Xx](?![A-Za-z]))?")
DATE_RE = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*[-/.]\s*(?:0?[1-9]|1[0-2])\s*[-/.]\s*(?:0?[1-9]|[12]\d|3[01])(?!\d)"
                     r"|(?<!\d)(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?!\d)")
UNIT_AFTER = re.compile(r"\s*(?:元|万|亿|千|百|平方|米|公里|千米|吨|户|人|件|次|个|%|％|年|月|日|天|小时|分|秒|岁|斤|"
                        r"公斤|亩|家|项|条|辆|份|期|届|批|倍|kg|km|m\b)")


def _classify_number(run: str, digits: str, before: str, after: str) -> str | None:
    """What a run of digits is: phone, id_card, number, or None (an ordinary number)."""
    ends_x = run.rstrip()[-1:] in ("X", "x")
    if (ends_x and len(digits) == 17) or (not ends_x and len(digits) == 18):
        return "id_card"
    plus = run.lstrip().startswith(("+", "00"))
    national = digits
    if digits.startswith("0086"):
        national, plus = digits[4:], True
    elif plus and digits.startswith("86"):
        national = digits[2:]
    elif re.fullmatch(r"861[3-9]\d{9}", digits):
        national, plus = digits[2:], True
    if re.fullmatch(r"1[3-9]\d{9}", national):
        return "phone"
    if re.fullmatch(r"0[1-9]\d{8,10}", national) or (plus and re.fullmatch(r"[1-9]\d{8,10}", national)):
        return "phone"
    if re.fullmatch(r"[48]00\d{7}", national):  # a company's service line
        return None
    unit_follows = UNIT_AFTER.match(after) is not None
    if len(digits) == 15 and not unit_follows:
        return "id_card"
    if re.fullmatch(r"[2-9]\d{6,7}", digits) and not unit_follows:
        grouped = re.search(r"\d{3,4}[\s\-]\d{4}$", run.strip())
        asked = any(word in before.lower() for word in PHONE_WORDS)
        if grouped or asked:
            return "phone"
    if len(digits) >= 9 and not unit_follows:
        return "number"
    return None


def _number_findings(scan: str, allowed_numbers: set[str]) -> list[Finding]:
    found: list[Finding] = []
    scan = DATE_RE.sub(lambda m: "x" * len(m.group()), scan)
    for m in NUMBER_RUN_RE.finditer(scan):
        run = m.group()
        run_digits = "".join(ch for ch in run if ch.isdigit())
        if len(run_digits) < 7:
            continue
        kind = _classify_number(run, run_digits, scan[max(0, m.start() - 10):m.start()],
                                scan[m.end():m.end() + 4])
        if kind is None or any(run_digits.endswith(a) for a in allowed_numbers):
            continue
        found.append(Finding(m.start(), m.end(), kind, PLACEHOLDERS[kind], False))
    return found


def pattern_findings(folded: str, scans: tuple[str, ...], allowed_numbers: set[str]) -> list[Finding]:
    found: list[Finding] = []
    strict = [(m.start(), m.end()) for m in EMAIL_RE.finditer(folded)]
    for start, end in strict:
        found.append(Finding(start, end, "email", PLACEHOLDERS["email"], False))
    for m in LOOSE_EMAIL_RE.finditer(folded):
        at = m.start() + m.group().index("@")
        if not any(start <= at < end for start, end in strict):
            found.append(Finding(m.start(), m.end(), "email", PLACEHOLDERS["email"], False))
    for m in CONTACT_RE.finditer(folded):
        found.append(Finding(m.start(1), m.end(1), "contact", PLACEHOLDERS["contact"], False))
    for m in PLATE_RE.finditer(folded):
        found.append(Finding(m.start(), m.end(), "plate", PLACEHOLDERS["plate"], False))
    for scan in scans:
        found += _number_findings(scan, allowed_numbers)
    for m in ADDRESS_INTRO_RE.finditer(folded):
        if SPECIFIC.search(m.group(1)) or re.search(ADMIN, m.group(1)):
            found.append(Finding(m.start(1), m.end(1), "address", PLACEHOLDERS["address"], False))
    for m in ADDRESS_RE.finditer(folded):
        found.append(Finding(m.start(), m.end(), "address", PLACEHOLDERS["address"], False))
    found += _name_findings(folded)
    return found


def _given_name(text: str, at: int) -> int:
    """How many characters after ``at`` make a given name (0, 1 or 2)."""
    n = 0
    while n < 2 and at + n < len(text) and is_cjk(text[at + n]) and text[at + n] not in NOT_IN_NAME:
        n += 1
    return n


def _surname_at(text: str, at: int) -> int:
    if text[at:at + 2] in COMPOUND_SURNAMES:
        return 2
    return 1 if at < len(text) and text[at] in SURNAMES else 0


def _name_before(text: str, end: int) -> int | None:
    """Where a name (surname and one or two given characters) ending at ``end`` starts, if one does.

    The longer reading wins (王国强局长 is 王某某, not 王国某), so that no part of a name is left.
    """
    for given in (2, 1):
        for surname in (2, 1):
            at = end - given - surname
            if at < 0 or _surname_at(text, at) != surname:
                continue
            if all(is_cjk(ch) and ch not in NOT_IN_NAME for ch in text[end - given:end]):
                return at
    return None


_PLACE_AFTER = set("区市县镇乡村街路道省州局委办")  # 我是黄埔区居民: a place, not a name
_INTRO_RE = re.compile("(?:" + "|".join(NAME_INTROS) + r")\s*[:：是为叫]?\s*")
_TITLE_RE = re.compile("(?:" + "|".join(TITLES) + ")")


def _name_findings(folded: str) -> list[Finding]:
    found: list[Finding] = []
    for m in _INTRO_RE.finditer(folded):
        at = m.end()
        s = _surname_at(folded, at)
        g = _given_name(folded, at + s) if s else 0
        if s and g and folded[at + s + g:at + s + g + 1] not in _PLACE_AFTER:
            found.append(Finding(at, at + s + g, "name", masked_name(folded[at:at + s + g]), False))
    for m in _TITLE_RE.finditer(folded):
        start = _name_before(folded, m.start())
        if start is not None:
            found.append(Finding(start, m.start(), "name", masked_name(folded[start:m.start()]), False))
    return found
