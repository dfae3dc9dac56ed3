"""Response headers every page carries."""
from __future__ import annotations

from flask import Flask

from feedback_app.core.config import Settings

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)


def init_headers(app: Flask, settings: Settings) -> None:
    if settings.proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Flask's documented way to wrap it in middleware; its types declare wsgi_app a method
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count, x_host=settings.proxy_count
        )

    @app.after_request
    def set_headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "same-origin"
        # a page opened from another site gets no handle on this one's window (nor this one on it)
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings.public_url.startswith("https://"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
