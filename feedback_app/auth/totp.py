"""Time-based one-time codes (RFC 6238): 30-second steps, 6 digits, one step of clock drift either way.

A code's time step is accepted once: ``StaffUser.totp_last_step`` only moves forward, so neither a
replayed code nor an older one from the drift window gets in.
"""
from __future__ import annotations

import hmac
import time
import unicodedata
from typing import Any, cast

import pyotp
import segno
from markupsafe import Markup
from sqlalchemy import CursorResult, or_, update
from sqlalchemy.orm import Session

from feedback_app.core.database import utcnow
from feedback_app.core.models import StaffUser

ISSUER = "巡察整改监督意见"
INTERVAL = 30
DIGITS = 6
VALID_WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL, issuer=ISSUER)


def provisioning_uri(secret: str, username: str) -> str:
    return _totp(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it in by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def qr_svg(uri: str, *, title: str = "双重验证二维码") -> Markup:
    """The QR code as an inline <svg> (colours as attributes, no style attribute, nothing external).

    It has a viewBox as well as a size, so that the stylesheet's ``max-width: 100%`` shrinks it on
    narrow screens.
    """
    qr = segno.make(uri, error="m")
    scale, border = 4, 4
    size = qr.symbol_size(scale=scale, border=border)[0]
    svg = qr.svg_inline(scale=scale, border=border, dark="#000", light="#fff", title=title, svgid="totp-qr",
                        svgclass="qr-code", omitsize=True)
    if "style=" in svg:  # the page's CSP refuses inline styles
        raise RuntimeError("segno emitted a style attribute")
    attributes = f'<svg role="img" aria-label="{Markup.escape(title)}" width="{size}" height="{size}" '
    return Markup(svg.replace("<svg ", attributes, 1))


def normalize_code(raw: str | None) -> str:
    """Digits as typed on any keyboard: full-width digits folded, spaces and dashes dropped."""
    value = unicodedata.normalize("NFKC", raw or "")
    return "".join(ch for ch in value if not ch.isspace() and ch != "-")


def current_code(secret: str, at: float | None = None) -> str:
    return _totp(secret).at(int(time.time() if at is None else at))


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The time step whose code ``code`` is (now, or one step before or after), or None."""
    code = normalize_code(code)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    now_step = int(time.time() if at is None else at) // INTERVAL
    found = None
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def accept_code(session: Session, user: StaffUser, code: str, *, at: float | None = None) -> bool:
    """Whether ``code`` is valid for the user's secret and its time step was not used before; uses it up.

    The step is recorded with a conditional UPDATE, so two requests racing with the same code cannot
    both succeed.
    """
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, at=at)
    if step is None:
        return False
    # an UPDATE's result is a CursorResult, which Session.execute's annotation does not say
    result = cast(CursorResult[Any], session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id,
               or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ))
    if result.rowcount != 1:
        return False
    session.refresh(user, ["totp_last_step"])
    return True


def begin_enrolment(session: Session, user: StaffUser) -> str:
    """The unconfirmed secret for the user to scan (made on first call, kept until confirmed)."""
    if user.totp_confirmed_at is not None:
        raise ValueError("already enrolled")
    if not user.totp_secret:
        user.totp_secret = new_secret()
        user.totp_last_step = None
        session.flush()
    return user.totp_secret


def confirm_enrolment(session: Session, user: StaffUser, code: str, *, at: float | None = None) -> bool:
    """Confirm the pending secret with a first valid code."""
    if user.totp_confirmed_at is not None or not accept_code(session, user, code, at=at):
        return False
    user.totp_confirmed_at = utcnow()
    session.flush()
    return True


def enrol_confirmed(session: Session, user: StaffUser) -> str:
    """A new secret stored as already confirmed (an operator hands it to the user); returns it."""
    user.totp_secret = new_secret()
    user.totp_confirmed_at = utcnow()
    user.totp_last_step = None
    session.flush()
    return user.totp_secret


def reset(session: Session, user: StaffUser) -> None:
    """Forget the user's secret: the next login asks to enrol again."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.flush()
