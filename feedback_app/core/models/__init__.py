"""Every mapped table. Importing this package maps them all, so the metadata is complete."""
from feedback_app.core.enums import Channel, Kind, Rating, ReplyBy, Role, State
from feedback_app.core.models.audit import AuditEntry, AuditHead, RefusalCount
from feedback_app.core.models.bulletin import Bulletin, BulletinItem
from feedback_app.core.models.handling import Deadline, InternalNote, RevealGrant
from feedback_app.core.models.mail import (
    InboundMessage,
    InboundStatus,
    MailboxState,
    OutboxMessage,
    OutboxStatus,
)
from feedback_app.core.models.publication import Publication
from feedback_app.core.models.staff import StaffSession, StaffUser, Unit
from feedback_app.core.models.submission import (
    Attachment,
    ReferenceCounter,
    Reply,
    Submission,
    SubmissionEvent,
)

__all__ = [
    "Attachment", "AuditEntry", "AuditHead", "Bulletin", "BulletinItem", "Channel", "Deadline", "InboundMessage",
    "InboundStatus", "InternalNote", "Kind", "MailboxState", "OutboxMessage", "OutboxStatus", "Publication",
    "Rating", "ReferenceCounter", "RefusalCount", "Reply", "ReplyBy", "RevealGrant", "Role", "StaffSession",
    "StaffUser", "State", "Submission", "SubmissionEvent", "Unit",
]
