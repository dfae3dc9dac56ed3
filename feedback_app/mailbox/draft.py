"""From a parsed message to the draft every channel produces: who may be answered, which files are
kept under the web form's rules, which item the mail names, and the mail's own facts."""
from __future__ import annotations

from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from feedback_app.core.config import Settings
from feedback_app.core.models import Bulletin, Channel, InboundMessage, Kind, ReplyBy
from feedback_app.intake.attachments import IncomingFile, display_name, problems, sniff
from feedback_app.intake.service import Draft
from feedback_app.mailbox.classify import detect_item
from feedback_app.mailbox.parse import Parsed

IMPORT_MAILBOX = "import"  # the mailbox name of messages read from files
BODY_MAX_CHARS = 100_000
_NO_REPLY_LOCALS = {"noreply", "no-reply", "donotreply", "do-not-reply", "no_reply"}
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


def reply_address(parsed: Parsed, settings: Settings) -> tuple[str | None, str | None]:
    """The address an acknowledgement may go to, or (None, why not)."""
    if parsed.auto_reply or parsed.bounce:
        return None, "自动发送的邮件，不回复"
    if not parsed.sender:
        return None, "没有发件地址"
    try:
        address = validate_email(parsed.sender, check_deliverability=False).normalized
    except EmailNotValidError:
        return None, "发件地址无效"
    local = address.rpartition("@")[0].lower()
    if address.lower() == parseaddr(settings.mail_from)[1].lower() or local in _NO_REPLY_LOCALS:
        return None, "发件地址不接收回复"
    return address, None


def choose_files(parsed: Parsed, settings: Settings) -> tuple[list[IncomingFile], list[dict]]:
    """The files kept under the web form's rules, and a note for each one that is not."""
    kept: list[IncomingFile] = []
    skipped: list[dict] = []
    total = 0
    for part in parsed.parts:
        name = display_name(part.filename or "附件" + _EXTENSIONS.get(sniff(part.data) or "", ""))
        incoming = IncomingFile(name, part.data)
        issues = problems([incoming], settings)
        if not issues and len(kept) >= settings.attachment_max_files:
            issues = [f"超过 {settings.attachment_max_files} 个附件的上限"]
        if not issues and total + len(part.data) > settings.attachments_max_total_bytes:
            issues = [f"附件合计超过 {settings.attachments_max_total_bytes / (1024 * 1024):g} MB"]
        if issues:
            skipped.append({"filename": name, "content_type": part.content_type, "size": len(part.data),
                            "reason": issues[0]})
        else:
            kept.append(incoming)
            total += len(part.data)
    return kept, skipped


def build_draft(parsed: Parsed, row: InboundMessage, bulletin: Bulletin, settings: Settings, *,
                acknowledge: bool = True, facts: dict | None = None) -> Draft:
    files, skipped = choose_files(parsed, settings)
    address, why_not = reply_address(parsed, settings)
    if address and not acknowledge:
        address, why_not = None, "工作人员选择不发送回执"
    item = detect_item(parsed.subject, parsed.text, {i.number for i in bulletin.items})
    body = parsed.text or parsed.subject or ("（邮件无正文，见附件）" if files else "（邮件无正文）")
    facts = {
        "message_id": parsed.message_id, "from": parsed.from_header, "to": parsed.to, "date": parsed.date,
        "subject": parsed.subject, "mailbox": row.mailbox, "inbound_id": row.id, "sha256": row.sha256,
        **({} if row.mailbox == IMPORT_MAILBOX else {"uidvalidity": row.uidvalidity, "uid": row.uid}),
        **(facts or {}),
    }
    if item:
        facts["item_detected"] = item
    if skipped:
        facts["attachments_not_stored"] = skipped
    if parsed.html_only:
        facts["html_only"] = True
    if why_not:
        facts["no_acknowledgement"] = why_not
    if len(body) > BODY_MAX_CHARS:
        body, facts["body_truncated"] = body[:BODY_MAX_CHARS], True
    return Draft(
        bulletin_id=bulletin.id, item_number=(item or {}).get("number") or 0, channel=Channel.email,
        kind=Kind.suggestion, body=body, reply_by=ReplyBy.email if address else ReplyBy.online,
        anonymous=False, publish_consent=False, privacy_consent=False, name=parsed.sender_name,
        email=address, received_at=row.received_at, channel_facts=facts, attachments=tuple(files),
    )
