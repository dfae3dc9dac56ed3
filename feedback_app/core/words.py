"""The words pages, letters and exports show for the domain's values, in one place."""
from __future__ import annotations

from feedback_app.core.enums import Channel, Kind, Rating, ReplyBy, Role, State

KIND_LABELS = {
    Kind.suggestion: "意见建议",
    Kind.accusation: "检举控告",
    Kind.request: "申诉求决",
    Kind.enquiry: "咨询",
}
REPLY_BY_LABELS = {
    ReplyBy.online: "网上查询答复",
    ReplyBy.phone: "电话答复",
    ReplyBy.email: "电子邮件答复",
    ReplyBy.letter: "书面信函答复",
}
RATING_LABELS = {
    Rating.satisfied: "满意",
    Rating.fairly_satisfied: "基本满意",
    Rating.dissatisfied: "不满意",
}
CHANNEL_LABELS = {
    Channel.web: "网上",
    Channel.phone: "来电",
    Channel.email: "来邮",
    Channel.letter: "来信",
    Channel.visit: "来访",
}
ROLE_LABELS = {
    Role.clerk: "登记员",
    Role.reviewer: "审核员",
    Role.handler: "承办人",
    Role.admin: "管理员",
}
STATE_WORDS = {
    State.received: "已收到，等待受理",
    State.accepted: "已受理，正在办理",
    State.assigned: "已转交责任单位办理",
    State.answered: "已答复",
    State.closed: "已办结",
    State.rejected: "不予受理",
    State.merged: "已合并办理",
    State.reopened: "重新办理中",
}

# What the citizen reads on /track for each step.
PUBLIC_WORDS = {
    "received": "已收到您的意见，等待审核受理",
    "accept": "已受理，正在办理",
    "reject": "不予受理",
    "merge": "已与您此前反映的同一事项合并办理",
    "assign": "已转交责任单位办理",
    "answer": "已答复",
    "close": "已办结",
    "reopen": "已重新办理",
    "follow_up": "您补充了意见（追评）",
    "note": "内部备注",
    "draft_reply": "起草答复",
    "rate": "您评价了办理结果",
    "query_code_reissued": "补发查询码",
}

DEADLINE_KIND_LABELS = {
    "inform": "告知办理情况",
    "acceptance_notice": "告知受理情况",
    "conclude": "办结",
    "feedback": "反馈结果",
}
# how a deadline stands (clocks.status_of)
DEADLINE_STATUS_LABELS = {"met": "已完成", "overdue": "已超期", "due_soon": "即将到期", "open": "办理中"}

REJECT_REASONS = {
    "out_of_scope": "不属于本机关受理范围",
    "no_substance": "反映内容不具体，无法核查",
    "duplicate": "重复反映，已在办理中",
    "judicial": "已进入诉讼、仲裁等法定程序",
    "other": "其他（见说明）",
}

# steps of the staff timeline that the citizen never sees (the public ones: PUBLIC_WORDS)
STAFF_EVENT_WORDS = {"query_code_reissued": "补发查询码"}
