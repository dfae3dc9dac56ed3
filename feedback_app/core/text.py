"""What people type: the one rule for text from every channel, and normalisers for Chinese phone
numbers and e-mail addresses.

Text is stored as it was sent: the only changes are the form's CRLF line breaks read as LF and the
blanks around a field trimmed. Normalisation (NFKC) is for keys only: duplicates, search, numbers.
"""
from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# C0 controls other than tab and line feed (a carriage return only inside CRLF), DEL, and C1 controls
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")
# the explicit direction controls: embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
UNDECODABLE = "\ufffd"  # what bytes that were not UTF-8 became when the request was read

GARBLED = "包含无法识别的字符（显示为 \ufffd，提交的内容可能不是 UTF-8 编码），请删除后重新输入"
CONTROL_CHARACTERS = "包含不可见的控制字符（显示为 \ufffd），请删除后重新输入"
DIRECTION_CHARACTERS = "包含改变文字方向的控制字符（如 U+202E），请删除后重新输入"


# the blanks trimmed around a field: spaces of any width, tabs, line breaks — but none of the control
# characters Python also counts as blanks (vertical tab, form feed, U+001C–U+001F, U+0085), which are
# refused like any other (``text_problem``) rather than silently cut off the ends
_AROUND = re.compile(r"\A[^\S\x0b\x0c\x1c-\x1f\x85]+|[^\S\x0b\x0c\x1c-\x1f\x85]+\Z")


def clean_text(value: str | None) -> str:
    return _AROUND.sub("", (value or "").replace("\r\n", "\n"))


def text_problem(value: str | None, *, plain: bool = False, garbled_ok: bool = False) -> str | None:
    """What is wrong with a text anybody sent, in Chinese; None when it may be stored.

    ``plain``: a name, a phone number, an address, a file name — where a direction control can only
    disguise what the text says, so it is refused; in free text it is kept and shown (``shown``).
    ``garbled_ok``: U+FFFD is let through — mail, read as well as its charset allows, whose raw bytes
    are kept (``mailbox.parse``); a form's undecodable bytes are refused.
    """
    if not value:
        return None
    if UNDECODABLE in value and not garbled_ok:
        return GARBLED
    if CONTROLS.search(value):
        return CONTROL_CHARACTERS
    if plain and BIDI.search(value):
        return DIRECTION_CHARACTERS
    return None


def shown(value: str) -> str:
    """``value`` for staff to read: each direction control written out as [U+202E], so that a text
    cannot show itself in another order than it was stored."""
    if BIDI.search(value) is None:
        return value
    return BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)


def normalize_phone(value: str) -> str | None:
    """E.164 for a valid Chinese number (mobile, landline with area code, +86/0086, full width)."""
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
