"""A request that cannot be carried out, whose page still comes back as it was filled in.

Three causes: the request comes from another site (``web.origin``), CSRFProtect refused it
(``web.csrf``), or the database could not save (``web.unavailable``). ``refuse`` records why
(``problem()``) and rolls the request back, whatever its view answers. A view marked ``keeps_input`` then
runs: every form of the site fails while a reason is set (``web.forms.Form``), so the view shows its form
with what was typed and the reason, and can never act. Any other view does not run, and the visitor gets
the error page the caller gives.

A hook that runs before the hooks that say who is asking (``web.origin``) cannot show a form again: the
view would not know who is asking. It refuses with ``refuse_later``, which records the reason at once
(every form fails, nothing is committed from then on), and ``answer_refused`` answers once those hooks
have run (``web.csrf``'s hook, the first after them).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from feedback_app.web.transaction import refuse_writes

ViewFunc = Callable[..., ResponseReturnValue]


def keeps_input(view: ViewFunc) -> ViewFunc:
    """Mark a view whose form shows itself again, as filled in, when its request is refused."""
    view.keeps_input = True  # type: ignore[attr-defined]
    return view


def problem() -> str | None:
    """Why this request is refused, in Chinese; None when it is not."""
    return g.get("refusal")


def shows_form_again() -> bool:
    """Whether a refusal of this request shows its own form again: a POST to a view marked ``keeps_input``."""
    view: Any = current_app.view_functions.get(request.endpoint or "")
    return request.method == "POST" and _keeps_input(view)


def refuse(reason: str, page: Callable[[], ResponseReturnValue], status: int | None = None) -> Response:
    """Refuse this request for ``reason``: its own view shows its form again if it is marked
    ``keeps_input`` (its own 403, 404 or redirect stands; ``status``, when given, replaces the 400 or 409
    of the form shown again), else ``page()`` answers."""
    g.refusal = reason
    refuse_writes()
    if shows_form_again():
        view: Any = current_app.view_functions[request.endpoint or ""]
        try:
            response = current_app.make_response(current_app.ensure_sync(view)(**(request.view_args or {})))
        except HTTPException as refused:
            return current_app.make_response(current_app.handle_http_exception(refused))
        if status is not None and response.status_code in (400, 409):
            response.status_code = status
        return response
    return current_app.make_response(page())


def refuse_later(reason: str, page: Callable[[], ResponseReturnValue], status: int | None = None) -> None:
    """Refuse this request for ``reason`` now (every form fails, nothing is committed), and answer as
    ``refuse`` does once the hooks that say who is asking have run (``answer_refused``)."""
    g.refusal = reason
    refuse_writes()
    g.refused_later = (reason, page, status)


def answer_refused() -> Response | None:
    """The answer to a request refused with ``refuse_later``; None when it was not."""
    pending = g.pop("refused_later", None)
    if pending is None:
        return None
    reason, page, status = pending
    return refuse(reason, page, status)


def _keeps_input(view: Any) -> bool:
    while view is not None:
        if getattr(view, "keeps_input", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False
