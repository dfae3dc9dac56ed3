"""Who may do what: one table of actions and the roles that may take them.

Every staff page, every command and every template asks ``may(role, action)``; a submission's state
changes also need the state to allow them (``states.TRANSITIONS``). Which records a handler sees (their
unit's: ``submissions.all_units``) and what they see of a citizen (``identity.view``; masked until a
reviewer lifts it) are in the table too; ``moderation.queue`` and ``core.masking`` apply them.

The roles: the citizen holding a reference number and query code; the four staff roles; and
``system``, the operator at the server's command line.
"""
from __future__ import annotations

from dataclasses import dataclass

from feedback_app.core.models import StaffUser

CITIZEN = "citizen"
CLERK, REVIEWER, HANDLER, ADMIN = "clerk", "reviewer", "handler", "admin"
SYSTEM = "system"
ROLES = (CITIZEN, CLERK, REVIEWER, HANDLER, ADMIN, SYSTEM)

STAFF = frozenset({CLERK, REVIEWER, HANDLER, ADMIN})
DECIDERS = frozenset({REVIEWER, ADMIN})  # accept, route, approve, publish
DESK = frozenset({CLERK, REVIEWER, ADMIN})  # take calls, letters, visits and mail; post letters, call back

PERMISSIONS: dict[str, frozenset[str]] = {
    # the queue and the submission page
    "queue.view": STAFF,
    "submissions.all_units": DESK | {SYSTEM},  # everybody else sees what was routed to their own unit
    "identity.view": DESK,  # everybody else sees the citizen masked, unless a reviewer lifted it for them
    "submission.view": STAFF,
    "attachment.download": STAFF,
    "dashboard.view": STAFF,
    "dashboard.contacts": DESK,  # recipients and mail errors of the channels page
    # what changes a submission's state (from which states: states.TRANSITIONS)
    "accept": DECIDERS,
    "reject": DECIDERS,
    "merge": DECIDERS,
    "assign": DECIDERS,
    "answer": DECIDERS,
    "close": DECIDERS,
    "reopen": DECIDERS,
    "follow_up": frozenset({CITIZEN}),
    "rate": frozenset({CITIZEN}),
    # what is added to a submission without changing its state
    "note": STAFF,
    "draft_reply": frozenset({HANDLER, REVIEWER, ADMIN}),
    "approve_reply": DECIDERS,
    "record_delivery": DESK,
    "print_letter": DESK,
    "reveal": DECIDERS,
    "extend": DECIDERS,
    # clerks answer the hotline and the visitors' desk, reviewers stand in for them; handlers work for the
    # unit the matter is about and administrators run the system: neither hands out the key to a file
    "query_code.reissue": frozenset({CLERK, REVIEWER}),
    # the channels staff register
    "intake.register": DESK,
    "mailbox.handle": DESK,
    # outcomes
    "publication.manage": DECIDERS,
    "folders.view": STAFF,
    "stats.view": STAFF,
    "ledger.export": STAFF | {SYSTEM},
    "ledger.contacts": frozenset({ADMIN, SYSTEM}),  # names and contact details in the export
    # administration
    "password.change": STAFF,
    "accounts.manage": frozenset({ADMIN, SYSTEM}),
    "units.manage": frozenset({ADMIN, SYSTEM}),
    "calendar.replace": frozenset({ADMIN}),
    # what only the operator at the server does
    "database.upgrade": frozenset({SYSTEM}),
    "bulletins.manage": frozenset({SYSTEM}),
    "outbox.send": frozenset({SYSTEM}),
    "mailbox.fetch": frozenset({SYSTEM}),
    "deadlines.report": frozenset({SYSTEM}),
    "audit.verify": frozenset({SYSTEM}),
}


def may(role: str | None, action: str) -> bool:
    """Whether ``role`` may take ``action``; an action missing from the table is an error, not a no."""
    return role in PERMISSIONS[action]


def roles_for(action: str) -> frozenset[str]:
    return PERMISSIONS[action]


@dataclass(frozen=True)
class Actor:
    """A staff member acting, and the address they act from (for the audit log)."""

    user: StaffUser
    client: str | None

    @property
    def role(self) -> str:
        return self.user.role

    def may(self, action: str) -> bool:
        return may(self.role, action)
