"""Every 403, 409 and 429 the site answers is counted in the audit (``audit.refusals``).

Counted after the response, by a job in a transaction of its own (``transaction.after_response``): the
refused request's own transaction is rolled back, and a GET writes nothing. Who was refused is the
logged-in staff member, or else a keyed hash of the client's address, never the address. Counting must
never change the answer: whatever fails here is logged and the refusal goes uncounted.

Registered after ``transaction.init_db``: after-request hooks run last-registered first, so this one has
left its job before the request's end takes the jobs and commits or rolls back.
"""
from __future__ import annotations

import logging
from functools import partial

from flask import Flask, request
from werkzeug.wrappers import Response

from feedback_app import current
from feedback_app.audit.refusals import REFUSED, client_actor, count_refusal
from feedback_app.core.database import utcnow
from feedback_app.intake.service import keyed
from feedback_app.web.access import current_staff
from feedback_app.web.limits import client_address
from feedback_app.web.transaction import after_response

log = logging.getLogger(__name__)

CLIENT_KEY = "refusal-client"  # its own key: a refusal's client cannot be matched to a submission's


def init_refusal_audit(app: Flask) -> None:
    if "db_engine" not in app.extensions:
        raise RuntimeError("init_refusal_audit comes after transaction.init_db (its hook must run first)")
    app.after_request(_count_refusal)


def refusal_actor() -> str:
    """Who this request is refused to: the staff member's username, or the keyed hash of the address."""
    user = current_staff()
    if user is not None:
        return user.username
    return client_actor(keyed(current.settings(), CLIENT_KEY, client_address()))


def _count_refusal(response: Response) -> Response:
    if response.status_code not in REFUSED:
        return response
    try:
        rule = request.url_rule.rule if request.url_rule is not None else None
        after_response(partial(count_refusal, at=utcnow(), actor=refusal_actor(), status=response.status_code,
                               route=rule))
    except Exception:  # the answer stands, counted or not
        log.exception("a refused request (%s) could not be counted", response.status_code)
    return response
