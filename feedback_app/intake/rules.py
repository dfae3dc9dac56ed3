"""What every comment must meet, whichever way it came in, in one wording for the citizen's form, the
clerk's forms and the channel adapters: the length of its text, a phone number and an email address
that can be used, and the contact the chosen way of answering needs."""
from __future__ import annotations

from feedback_app.core.models import ReplyBy

NAME_MAX_CHARS = 50
ADDRESS_MAX_CHARS = 200

EMAIL_INVALID = "电子邮箱格式不正确，例如 zhangsan@example.com"
ANONYMOUS_ONLINE = "匿名反映只能通过本网站凭查询码查看答复，请选择“网上查询答复”或取消匿名"


def phone_invalid(what: str = "电话号码") -> str:
    return f"{what}无效：请填写手机号，或带区号的固定电话，如 020-82378781"


def body_problem(text: str | None, low: int, high: int, label: str = "意见内容") -> str | None:
    """What is wrong with the length of a comment's text (``label``: what the page calls it)."""
    length = len(text or "")
    if length == 0:
        return f"请填写{label}"
    if length < low:
        return f"{label}至少 {low} 个字，目前 {length} 个字"
    if length > high:
        return f"{label}最多 {high} 个字，目前 {length} 个字，请精简"
    return None


def reply_problems(reply_by: ReplyBy, anonymous: bool, *, name: str | None, phone: str | None,
                   email: str | None, address: str | None) -> dict[str, str]:
    """What the chosen way of answering still needs, by contact field (and ``reply_by`` itself)."""
    if anonymous:
        return {"reply_by": ANONYMOUS_ONLINE} if reply_by != ReplyBy.online else {}
    problems: dict[str, str] = {}
    if reply_by == ReplyBy.phone and not phone:
        problems["phone"] = "选择电话答复时，请填写联系电话"
    if reply_by == ReplyBy.email and not email:
        problems["email"] = "选择电子邮件答复时，请填写电子邮箱"
    if reply_by == ReplyBy.letter:
        if not name:
            problems["name"] = "选择书面信函答复时，请填写收信人姓名"
        if not address:
            problems["address"] = "选择书面信函答复时，请填写通信地址"
    return problems
