"""The one-time token a comment form carries: a random nonce, signed with the site's key and the time.

A comment is stored at most once per nonce (a second press of the button finds the first), and the time
says how long the form was open. A token too old or not signed by this site reads as None: the form
comes back with a fresh one.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer


@dataclass(frozen=True)
class FormTokens:
    purpose: str  # tokens of one form are not tokens of another
    max_age: int  # seconds

    def new(self) -> str:
        return self._serializer().dumps(secrets.token_urlsafe(16))

    def read(self, token: str | None) -> tuple[str, datetime] | None:
        """(the nonce, when the form was given out), or None for a stale or forged token."""
        try:
            nonce, signed_at = self._serializer().loads(token or "", max_age=self.max_age, return_timestamp=True)
        except BadSignature:
            return None
        return str(nonce), signed_at

    def _serializer(self) -> URLSafeTimedSerializer:
        """Made once per app, key and purpose (making one serializes a test value)."""
        key = current_app.secret_key
        assert key is not None  # create_app sets SECRET_KEY from the settings
        made: dict = current_app.extensions.setdefault("form_token_serializers", {})
        serializer = made.get((key, self.purpose))
        if serializer is None:
            serializer = made[(key, self.purpose)] = URLSafeTimedSerializer(key, salt=self.purpose)
        return serializer
