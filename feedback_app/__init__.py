"""Public feedback intake service for a district discipline inspection office.

``create_app`` (in ``feedback_app.app``) wires it; ``docs/architecture.md`` shows the layers.
"""
from feedback_app.app import create_app

__all__ = ["create_app"]
