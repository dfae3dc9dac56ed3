"""The details a submission itself holds, found wherever they appear in a text, in any spelling."""
from __future__ import annotations

import re
from dataclasses import dataclass

from feedback_app.outcomes.redaction.text import (
    PLACEHOLDERS,
    Finding,
    digits_of,
    fold,
    masked_name,
    name_is_identifying,
    spaced,
)


@dataclass(frozen=True)
class Personal:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None

    @classmethod
    def of(cls, submission) -> Personal:
        return cls(submission.name, submission.phone, submission.email, submission.address)



def national_number(phone: str | None) -> str | None:
    """The digits of a phone number without country code and trunk 0: 13800138000, 2082378781."""
    if not phone:
        return None
    digits = digits_of(phone)
    if fold(phone).lstrip().startswith("+86") or (digits.startswith("86") and len(digits) >= 12):
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    digits = digits.lstrip("0")
    return digits if len(digits) >= 5 else None


def local_part(national: str) -> str | None:
    """The subscriber number of a fixed line (the part after the area code), or None for a mobile."""
    if re.fullmatch(r"1[3-9]\d{9}", national):
        return None
    area = 2 if national.startswith(("10", "2")) else 3
    local = national[area:]
    return local if len(local) >= 7 else None


def _digit_sequence(digits: str, gap: int = 3) -> str:
    return r"(?<!\d)" + rf"\D{{0,{gap}}}".join(digits) + r"(?!\d)"


ADMIN = r"(?:省|自治区|市|自治州|州|盟|区|县|旗|镇|乡|街道)"


def address_fragments(address: str | None) -> list[str]:
    """The stored address and its more specific parts, longest first: for 广州市黄埔区丰乐北路38号3栋502房
    also 黄埔区丰乐北路38号3栋502房, 丰乐北路38号3栋502房 and 丰乐北路38号.

    Only parts below the district level count: 黄埔区 alone is not a personal detail.
    """
    if not address:
        return []
    compact = "".join(fold(address).split())
    found: list[str] = []
    rest = compact
    while rest:
        if SPECIFIC.search(rest) and len(rest) >= 4:
            found.append(rest)
        m = _ADMIN_PREFIX.match(rest)
        if m is None or m.end() >= len(rest):
            break
        rest = rest[m.end():]
    if found:
        for pattern in _HOUSE_PARTS:
            m = pattern.match(found[-1])
            if m and m.group(1) not in found and len(m.group(1)) >= 4:
                found.append(m.group(1))
    return sorted(found, key=len, reverse=True)


_ADMIN_PREFIX = re.compile(r"^.+?(?:自治区|自治州|街道|省|市|(?<![小社园校景营厂])区|县|旗|镇|乡)")
_HOUSE_PARTS = (
    re.compile(r"^(.+?(?:大道|大街|路|街|巷|弄|胡同)[0-9一二三四五六七八九十百]+号)"),
    re.compile(r"^(.+?(?:小区|花园|苑|大厦|公寓|新村|村)[0-9一二三四五六七八九十]+(?:栋|幢|座|号楼|组))"),
)
SPECIFIC = re.compile(r"路|街(?!道)|巷|弄|胡同|村|小区|号|栋|幢|室|单元|苑|花园|大厦|公寓|社区|组|[0-9]")


def own_findings(folded: str, scans: tuple[str, ...], personal: Personal) -> list[Finding]:
    found: list[Finding] = []

    def add(pattern: re.Pattern, kind: str, replacement: str, text: str) -> None:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                found.append(Finding(m.start(), m.end(), kind, replacement, True))

    if name_is_identifying(personal.name):
        name = "".join(fold(personal.name).split())
        add(spaced(name, re.IGNORECASE), "name", masked_name(name), folded)
    national = national_number(personal.phone)
    if national:
        local = local_part(national)
        prefix = r"(?:(?:\+|00)\s*86\D{0,3})?" + (r"(?:\(?0\)?\D{0,2})?" if local else "")
        for scan in scans:
            add(re.compile(prefix + _digit_sequence(national)), "phone", PLACEHOLDERS["phone"], scan)
            if local:
                add(re.compile(_digit_sequence(local, gap=2)), "phone", PLACEHOLDERS["phone"], scan)
    if personal.email and "@" in personal.email:
        email = "".join(fold(personal.email).split()).lower()
        local_name, domain = email.rsplit("@", 1)
        at = r"\s*(?:@|#|\(at\)|\[at\]|\s+at\s+)\s*"
        dot = r"\s*(?:\.|。|\(dot\)|\[dot\]|\s+dot\s+)\s*"
        pattern = (r"\s*".join(map(re.escape, local_name)) + at
                   + dot.join(r"\s*".join(map(re.escape, part)) for part in domain.split(".")))
        add(re.compile(pattern, re.IGNORECASE), "email", PLACEHOLDERS["email"], folded)
        if len(local_name) >= 5:
            add(re.compile(r"(?<![A-Za-z0-9])" + r"\s*".join(map(re.escape, local_name)) + r"(?![A-Za-z0-9])",
                           re.IGNORECASE), "email", PLACEHOLDERS["email"], folded)
    for fragment in address_fragments(personal.address):
        add(spaced(fragment, re.IGNORECASE), "address", PLACEHOLDERS["address"], folded)
    return found
