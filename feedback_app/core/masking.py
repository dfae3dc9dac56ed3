"""Identity shielding: what a handler sees of the citizen unless a reviewer lifts it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import overload

from feedback_app.core.models import Submission


@overload
def mask_name(name: str) -> str: ...
@overload
def mask_name(name: None) -> None: ...
def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


@overload
def mask_phone(phone: str) -> str: ...
@overload
def mask_phone(phone: None) -> None: ...
def mask_phone(phone: str | None) -> str | None:
    """+8613800138000 → 138****8000; a landline keeps its area code and last four digits."""
    if not phone:
        return phone
    digits = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(digits)
    head = digits[:3]
    return head + "*" * (len(digits) - len(head) - 4) + digits[-4:]


@overload
def mask_email(email: str) -> str: ...
@overload
def mask_email(email: None) -> None: ...
def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    local, domain = email.rsplit("@", 1)
    return local[0] + "***@" + domain


@overload
def mask_address(address: str) -> str: ...
@overload
def mask_address(address: None) -> None: ...
def mask_address(address: str | None) -> str | None:
    if not address:
        return address
    keep = min(6, max(1, len(address) // 3))
    return address[:keep] + "****"


@dataclass(frozen=True)
class Identity:
    name: str | None
    phone: str | None
    email: str | None
    address: str | None
    masked: bool


def identity_of(submission: Submission, *, masked: bool) -> Identity:
    if not masked:
        return Identity(submission.name, submission.phone, submission.email, submission.address, False)
    return Identity(
        mask_name(submission.name), mask_phone(submission.phone), mask_email(submission.email),
        mask_address(submission.address), True,
    )
