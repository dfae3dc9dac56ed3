"""Who may do what: the actor of a staff action, and one table of roles and actions."""
from __future__ import annotations

from dataclasses import dataclass

from feedback_app.core.models import StaffUser


@dataclass(frozen=True)
class Actor:
    """A staff member acting, and the address they act from (for the audit log)."""

    user: StaffUser
    client: str | None

    @property
    def role(self) -> str:
        return self.user.role
