"""The values a submission and a staff account take: one enum each, stored as their ``value``."""
from __future__ import annotations

import enum


class Channel(str, enum.Enum):
    web = "web"
    phone = "phone"
    email = "email"
    letter = "letter"
    visit = "visit"


class Kind(str, enum.Enum):
    suggestion = "suggestion"
    accusation = "accusation"
    request = "request"
    enquiry = "enquiry"


class ReplyBy(str, enum.Enum):
    online = "online"
    phone = "phone"
    email = "email"
    letter = "letter"


class State(str, enum.Enum):
    received = "received"
    accepted = "accepted"
    assigned = "assigned"
    answered = "answered"
    closed = "closed"
    rejected = "rejected"
    merged = "merged"
    reopened = "reopened"


class Rating(str, enum.Enum):
    satisfied = "satisfied"
    fairly_satisfied = "fairly_satisfied"
    dissatisfied = "dissatisfied"


class Role(str, enum.Enum):
    clerk = "clerk"
    reviewer = "reviewer"
    handler = "handler"
    admin = "admin"
