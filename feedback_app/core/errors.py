"""Domain exceptions: what a service raises when it cannot do what was asked."""
from __future__ import annotations


class NotFound(LookupError):
    """A record that does not exist, or that the viewer may not see: the same 404 either way."""


class ActionError(ValueError):
    """An action that cannot be done as asked; the message is for the person who asked, in Chinese."""
