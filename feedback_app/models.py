"""Every mapped model, imported once so the metadata is complete."""
from feedback_app.bulletin.models import Bulletin, BulletinItem  # noqa: F401
from feedback_app.intake.models import (  # noqa: F401
    Attachment,
    ReferenceCounter,
    Reply,
    Submission,
    SubmissionEvent,
)
from feedback_app.mail.models import InboundMessage, MailboxState, OutboxMessage  # noqa: F401
from feedback_app.outcomes.models import Publication  # noqa: F401
from feedback_app.auth.models import StaffSession, StaffUser, Unit  # noqa: F401
from feedback_app.moderation.models import Deadline, InternalNote, RevealGrant  # noqa: F401
from feedback_app.audit.models import AuditEntry, AuditHead  # noqa: F401
