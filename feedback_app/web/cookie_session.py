"""Flask's signed cookie session, with its serializer made once per key instead of twice a request.

Making an itsdangerous serializer serializes a test value to learn whether it produces text; Flask
makes a new one to open the session and another to save it. The citizen form opens and saves the
session on every request (its CSRF token, then the receipt), so this is kept per secret key and
fallback keys. The signing is Flask's, with SHA-1 given as hashlib's own function rather than
Flask's wrapper around it: the same signatures, but ``hmac`` takes its fast path only for the former.
"""
from __future__ import annotations

import hashlib

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessions(SecureCookieSessionInterface):
    digest_method = staticmethod(hashlib.sha1)

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        try:
            return self._serializers[key]
        except KeyError:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
            return serializer
