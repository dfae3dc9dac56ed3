"""Query codes: 80 random bits in Crockford base32, kept only as a keyed hash."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

QUERY_CODE_KEY = "query-code"  # the purpose of the settings subkey that hashes query codes
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 16  # 16 x 5 bits = 80 bits
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def _encode(raw: bytes) -> str:
    number = int.from_bytes(raw[:10], "big")
    return "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(LENGTH)))


def new_code() -> str:
    return _encode(secrets.token_bytes(10))


def code_for_token(key: bytes, form_token: str) -> str:
    """The code belonging to a one-time form token, so a repeated POST gets the same receipt."""
    return _encode(hmac.new(key, b"query-code:" + form_token.encode(), hashlib.sha256).digest())


def normalize(typed: str) -> str:
    """What a citizen typed, as a canonical code: width, case, spaces, dashes and look-alikes forgiven."""
    text = unicodedata.normalize("NFKC", typed or "").upper()
    return "".join(ch for ch in text if ch.isalnum()).translate(_CONFUSABLE)


def display(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def hash_code(key: bytes, code: str) -> str:
    return hmac.new(key, normalize(code).encode(), hashlib.sha256).hexdigest()


def matches(key: bytes, typed: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_code(key, typed), stored_hash)


def code_for_nonce(key: bytes, nonce: str) -> str:
    """A reissued code, derived from a one-time nonce: the nonce may travel in the signed session cookie
    to the page that shows the code once, while the code itself never leaves the server but on that page."""
    return _encode(hmac.new(key, b"reissued-query-code:" + nonce.encode(), hashlib.sha256).digest())


def spoken(code: str) -> str:
    """The code as it is read out on the phone: four groups, each character apart."""
    return "，".join(" ".join(group) for group in display(normalize(code)).split("-"))
