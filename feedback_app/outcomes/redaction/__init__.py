"""Removing personal details from free text before it is published.

Two layers:

1. The details the submission itself holds (name, phone, e-mail, address) are removed wherever they
   appear, in any spelling: with spaces or dashes between the digits, full-width digits and letters,
   a +86 / 0086 prefix, digits written as Chinese numerals (一三八…), an e-mail written with # or (at).
2. Patterns of personal details anyone may have typed: mobile and fixed-line numbers, e-mail
   addresses, ID card numbers (18 digits with a final X, or 15 digits), QQ / WeChat ids, long
   account numbers, licence plates, Chinese addresses (…省…市…区…路…号…栋…单元…室, …村…组…号,
   …小区…栋…), and names introduced as names (我叫…, 本人…, 姓名：…, 联系人：…) or followed by a title
   (…先生, …局长).

``mask_text`` applies both and returns text for a person to check; ``problems`` is the check the
server makes before publishing: it refuses text that still holds any detail of the submission, or any
phone, e-mail or ID card pattern. Names and addresses typed by others are not refused by pattern,
because place names and ordinary words look alike: the reviewer reads the text side by side with the
original and decides.

Every search runs on a copy of the text folded one character for one character (full-width to ASCII,
Chinese numerals to digits), so positions found in the copy are positions in the original, and the
published text keeps its own punctuation.
"""
from __future__ import annotations

from dataclasses import dataclass

from feedback_app.outcomes.redaction.own import Personal, address_fragments, national_number, own_findings
from feedback_app.outcomes.redaction.patterns import pattern_findings
from feedback_app.outcomes.redaction.text import (
    KIND_WORDS,
    REFUSED_PATTERNS,
    Finding,
    digits_of,
    fold,
    spoken_digits,
)

__all__ = [
    "KIND_WORDS", "Finding", "Personal", "Problem", "address_fragments", "apply", "digits_of", "find", "mask_text",
    "national_number", "problems",
]



def _allowed_numbers(allowed: tuple[str, ...]) -> set[str]:
    out = set()
    for value in allowed:
        national = national_number(value)
        if national:
            out.add(national)
    return out


def _is_allowed(found: str, allowed_texts: list[str]) -> bool:
    return any(found in a for a in allowed_texts)


def find(text: str, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> list[Finding]:
    """Every personal detail found, without overlaps: the submission's own first, then the longest.

    ``allowed``: public contact details (the office's own phone, e-mail and address, as the bulletin
    gives them) that a comment may quote; they are not treated as personal details.
    """
    folded = fold(text)
    scans = (folded, spoken_digits(folded))
    allowed_texts = ["".join(fold(a).split()).lower() for a in allowed if a]
    own = own_findings(folded, scans, personal or Personal())
    patterns = [f for f in pattern_findings(folded, scans, _allowed_numbers(allowed))
                if not _is_allowed("".join(folded[f.start:f.end].split()).lower(), allowed_texts)]
    chosen: list[Finding] = []
    for f in sorted(own, key=lambda f: (-f.size, f.start)) + sorted(patterns, key=lambda f: (-f.size, f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def apply(text: str, findings: list[Finding]) -> str:
    out, pos = [], 0
    for f in findings:
        out.append(text[pos:f.start])
        out.append(f.replacement)
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str | None, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> str:
    """The text with every personal detail found replaced by a placeholder (names: 张某)."""
    if not text:
        return text or ""
    return apply(text, find(text, personal, allowed))


@dataclass(frozen=True)
class Problem:
    kind: str
    snippet: str
    own: bool

    @property
    def message(self) -> str:
        whose = "反映人的" if self.own else ""
        return f"仍含{whose}{KIND_WORDS[self.kind]}：“{self.snippet}”"


def problems(text: str, personal: Personal | None = None, allowed: tuple[str, ...] = ()) -> list[Problem]:
    """Why ``text`` may not be published: any detail of the submission, or a phone, e-mail or ID number."""
    personal = personal or Personal()
    out: list[Problem] = []
    for f in find(text, personal, allowed):
        if f.own or f.kind in REFUSED_PATTERNS:
            out.append(Problem(f.kind, text[f.start:f.end].strip(), f.own))
    national = national_number(personal.phone)
    folded = fold(text)
    written = "".join(ch for ch in folded if ch.isascii() and ch.isdigit())
    spoken = "".join(ch for ch in spoken_digits(folded) if ch.isascii() and ch.isdigit())
    if national and len(national) >= 10 and (national in written or national in spoken) and not any(
        p.own and p.kind == "phone" for p in out
    ):
        out.append(Problem("phone", "（数字拆开书写）", True))
    return out
