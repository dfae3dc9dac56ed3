"""Normalisers for what people type: text, Chinese phone numbers, e-mail addresses."""
from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def clean_text(value: str | None) -> str:
    return unicodedata.normalize("NFC", value or "").replace("\r\n", "\n").strip()


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
