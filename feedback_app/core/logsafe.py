"""Logging that never writes personal data: request lines carry the path, never the query string."""
from __future__ import annotations

import logging
import re

# Phone numbers, e-mail addresses and query codes never reach a log line, whatever logs them.
_REDACTIONS = (
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[email]"),
    (re.compile(r"(?<!\d)(\+?86[- ]?)?1[3-9]\d{9}(?!\d)"), "[phone]"),
    (re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"), "[phone]"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Z]{4}(?:-?[0-9A-HJKMNP-TV-Z]{4}){3}(?![0-9A-Za-z])", re.I),
     "[code]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: str) -> None:
    """Every log line of the service (and of werkzeug and gunicorn) goes through the redaction."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    own = logging.getLogger("feedback_app")  # also the Flask app's logger
    own.handlers[:] = [handler]
    own.setLevel(level)
    for name in ("werkzeug", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for h in logger.handlers for f in h.filters):
            logger.addHandler(handler)
        logger.setLevel(level)
