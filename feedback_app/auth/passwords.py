"""Staff passwords: argon2id hashes and the minimum policy.

Passwords are NFKC-normalised before hashing, so that the same password typed on another keyboard
or input method (full-width letters, composed accents) still matches.
"""
from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256

_hasher = PasswordHasher()  # argon2id, the RFC 9106 low-memory profile
_dummy_hash: str | None = None


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return _hasher.hash(_normalize(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; a malformed or foreign hash is simply no match."""
    try:
        return _hasher.verify(password_hash, _normalize(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (then rehash at the next login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def spend_verify_time(password: str) -> None:
    """Verify against a hash that matches nothing, to take as long as checking a real account."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("dummy password that is never used")
    verify_password(_dummy_hash, password)


def password_problem(password: str, *, username: str = "") -> str | None:
    """Why ``password`` is not acceptable as a new password, in Chinese; None when it is."""
    value = _normalize(password or "")
    if not value.strip():
        return "请填写密码"
    if len(value) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 个字符，目前 {len(value)} 个字符"
    if len(value) > MAX_LENGTH:
        return f"密码不超过 {MAX_LENGTH} 个字符"
    if username and value.strip().lower() == username.lower():
        return "密码不能与用户名相同"
    return None
