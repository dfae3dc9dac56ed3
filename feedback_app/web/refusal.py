"""A request that cannot be carried out, whose page still comes back as it was filled in.

Two causes: CSRFProtect refused the request (``web.csrf``), or the database could not save
(``web.unavailable``). ``refuse`` records why (``problem()``) and rolls the request back, whatever its
view answers. A view marked ``keeps_input`` then runs: every form of the site fails while a reason is set
(``web.forms.Form``), so the view shows its form with what was typed and the reason, and can never act.
Any other view does not run, and the visitor gets the error page the caller gives.
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


def refuse(reason: str, page: Callable[[], ResponseReturnValue]) -> Response:
    """Refuse this request for ``reason``: its own view shows its form again if it is marked
    ``keeps_input`` (its own 403, 404 or redirect stands), else ``page()`` answers."""
    g.refusal = reason
    refuse_writes()
    view: Any = current_app.view_functions.get(request.endpoint or "")
    if request.method == "POST" and _keeps_input(view):
        try:
            return current_app.make_response(current_app.ensure_sync(view)(**(request.view_args or {})))
        except HTTPException as refused:
            return current_app.make_response(current_app.handle_http_exception(refused))
    return current_app.make_response(page())


def _keeps_input(view: Any) -> bool:
    while view is not None:
        if getattr(view, "keeps_input", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False
