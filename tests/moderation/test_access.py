"""Who may open what under /staff: every route × anonymous, clerk, reviewer, handler (unit A), admin × GET, POST.

Who may is not written here: each staff view declares the action it needs (``web.access.require``) and
the permissions table (``core.permissions``) says which roles may take it; the matrix is generated from
both. This file says only what a page answers those who may (``ROUTES``). Every route of the app must
declare an action of the table or be marked public, and every staff route must be in ``ROUTES``:
``test_every_route_declares_who_may_open_it`` fails otherwise. A handler asking for something of another
unit gets exactly the answer a reference that does not exist gets.

The team, the submissions and the logged-in clients are built once for the module (CSRF off, as in
the rest of the suite); one test runs a second app with CSRF on against the same database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from feedback_app.app import create_app
from feedback_app.audit.refusals import count_refusal
from feedback_app.auth import logins
from feedback_app.auth.accounts import create_unit
from feedback_app.bulletin.service import import_bulletin
from feedback_app.core.models import StaffUser, Submission, Unit
from feedback_app.core.permissions import PERMISSIONS, may
from feedback_app.intake.attachments import IncomingFile
from feedback_app.web import transaction
from feedback_app.web.staff.actions import DONE
from tests.auth.helpers import create_staff, csrf_of, login
from tests.conftest import SEED, SEED_SLUG, fresh_database, make_settings
from tests.dbstate import changes, snapshot
from tests.factories import create_reply, create_web_submission

ROLES = ("anonymous", "clerk", "reviewer", "handler", "admin")
STAFF = ROLES[1:]
METHODS = ("GET", "POST")
MISSING_REFERENCE = "HP2099-999999"
MISSING_ID = 999_999
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------- what each answer should be ----------

@dataclass(frozen=True)
class Expect:
    status: int
    to: str | None = None  # the path of the Location header, for redirects
    says: str | None = None  # a phrase the page must contain

    def __str__(self) -> str:
        return f"{self.status}" + (f" → {self.to}" if self.to else "") + (f" «{self.says}»" if self.says else "")


TO_LOGIN = Expect(302, "/staff/login")  # require: the login page, with ?next= the path asked for
TO_LOGIN_303 = Expect(303, "/staff/login")  # the login/2FA pages' own redirects
TO_HOME = Expect(302, "/staff/")
TO_HOME_303 = Expect(303, "/staff/")
OK = Expect(200)
FORBIDDEN = Expect(403, says="无权访问")
NOT_ALLOWED = Expect(405, says="请求方式不允许")
NOT_FOUND = Expect(404, says="页面不存在")


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, expect)


def auth_page(anonymous: Expect, logged_in: Expect) -> dict[str, Expect]:
    return {"anonymous": anonymous, **dict.fromkeys(STAFF, logged_in)}


PER_ACTION = "see action_expectations"  # actions.act's POST answers depend on the action: test_action_post

# rule → method → what those who may get (the others: 403; anonymous: the login page), or every role's
# answer for the pages anybody may open (login, second factor, logout), or 405. A POST carries no fields
# (CSRF is off here).
ROUTES: dict[str, dict[str, Expect | dict[str, Expect] | str]] = {
    "/staff/": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/login": {
        "GET": auth_page(OK, TO_HOME),
        "POST": everyone(Expect(400, says="请填写用户名")),
    },
    "/staff/2fa": {"GET": auth_page(TO_LOGIN_303, TO_HOME_303), "POST": auth_page(TO_LOGIN_303, TO_HOME_303)},
    "/staff/2fa/enrol": {"GET": auth_page(TO_LOGIN_303, TO_HOME_303), "POST": auth_page(TO_LOGIN_303, TO_HOME_303)},
    "/staff/logout": {"GET": auth_page(TO_LOGIN_303, Expect(200, says="确定要退出登录吗")),
                      "POST": auth_page(TO_LOGIN_303, TO_LOGIN_303)},
    "/staff/password": {"GET": OK, "POST": Expect(400, says="密码未修改")},
    "/staff/search": {"GET": NOT_ALLOWED, "POST": Expect(303, "/staff/")},
    "/staff/submissions/<reference>": {"GET": Expect(200, says="办理操作"), "POST": NOT_ALLOWED},
    "/staff/submissions/<reference>/<action>": {"GET": NOT_ALLOWED, "POST": PER_ACTION},
    # 补发查询码: the POST (no fields: the method is missing) and the page that shows a new code once
    # (nothing was reissued here: it says so)
    "/staff/submissions/<reference>/query-code": {
        "GET": Expect(200, says="查询码只显示一次"), "POST": Expect(400, says="请选择核验反映人身份的方式")},
    # recorded downloads are POSTs: the audit entry is committed before the file leaves
    "/staff/submissions/<reference>/attachments/<int:attachment_id>": {"GET": NOT_ALLOWED, "POST": OK},
    "/staff/submissions/<reference>/replies/<int:reply_id>/letter": {
        "GET": Expect(200, says="关于您反映事项的答复"), "POST": NOT_ALLOWED},
    "/staff/admin/calendar": {"GET": OK, "POST": Expect(400, says="请选择日历文件")},
    "/staff/admin/units": {"GET": OK, "POST": Expect(400, says="单位未添加")},
    "/staff/admin/users": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/admin/users/new": {"GET": OK, "POST": Expect(400, says="账号未创建")},
    "/staff/admin/users/<int:user_id>/disable": {"GET": NOT_ALLOWED, "POST": Expect(303, "/staff/admin/users")},
    "/staff/admin/users/<int:user_id>/enable": {"GET": NOT_ALLOWED, "POST": Expect(303, "/staff/admin/users")},
    "/staff/admin/users/<int:user_id>/reset-2fa": {"GET": NOT_ALLOWED, "POST": Expect(303, "/staff/admin/users")},
    "/staff/intake/": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/intake/phone": {"GET": OK, "POST": Expect(400)},
    "/staff/intake/letter": {"GET": OK, "POST": Expect(400)},
    "/staff/intake/visit": {"GET": OK, "POST": Expect(400)},
    "/staff/intake/receipt": {"GET": Expect(302, "/staff/intake/"), "POST": NOT_ALLOWED},  # no receipt to show
    "/staff/dashboard": {"GET": OK, "POST": NOT_ALLOWED},
    # one folder per rectification item (a handler sees its unit's submissions only)
    "/staff/items": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/items/<int:number>": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/stats": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/publication": {"GET": OK, "POST": NOT_ALLOWED},
    # (the module's submission did not consent to publication: those who may are refused with the reason)
    "/staff/publication/<reference>": {"GET": Expect(403, says="不能公开"), "POST": Expect(403)},
    "/staff/publication/<reference>/withdraw": {"GET": NOT_ALLOWED, "POST": Expect(303)},
    # the ledger (a handler gets its unit's rows only)
    "/staff/ledger": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/ledger/export.<any(csv, xlsx):fmt>": {"GET": NOT_ALLOWED, "POST": OK},
    # the mailbox; the message routes are asked about an id that does not exist
    "/staff/mail/": {"GET": OK, "POST": NOT_ALLOWED},
    "/staff/mail/<int:inbound_id>": {"GET": NOT_FOUND, "POST": NOT_ALLOWED},
    "/staff/mail/<int:inbound_id>/raw": {"GET": NOT_ALLOWED, "POST": NOT_FOUND},
    "/staff/mail/<int:inbound_id>/release": {"GET": NOT_ALLOWED, "POST": NOT_FOUND},
}

# actions.act with no fields, on a submission of unit A in a state where the action is possible. A role
# that may take the action gets 400 with a Chinese message for missing input, or 303 where the action
# needs none (close, approving a waiting draft); the others 403, whatever was sent.
BAD_INPUT = {
    "accept": "类型", "reject": "请选择不予受理的理由", "merge": "请填写要合并到的另一件的受理编号",
    "assign": "请选择责任单位", "reopen": "请填写重新办理的原因", "note": "请填写备注内容",
    "reveal": "请填写解除遮盖的理由", "extend": "延长天数应为", "draft_reply": "答复内容至少 10 个字",
    "record_delivery": "找不到这份答复",
}


def action_expectations(action: str) -> dict[str, Expect]:
    done = Expect(303, "/staff/submissions/{ref}") if action not in BAD_INPUT else Expect(400, says=BAD_INPUT[action])
    return {"anonymous": TO_LOGIN, **{r: done if may(r, action) else FORBIDDEN for r in STAFF}}


def view_of(app, rule: str, method: str):
    """The view function that answers ``method`` on ``rule``."""
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.rule == rule and method in r.methods}
    assert len(endpoints) == 1, f"{method} {rule}: {endpoints}"
    return app.view_functions[endpoints.pop()]


def permission_of(app, rule: str, method: str) -> str | None:
    """The action a view declared (``require``), or None for a page anybody may open (``public``)."""
    view = view_of(app, rule, method)
    while not hasattr(view, "permission") and hasattr(view, "__wrapped__"):
        view = view.__wrapped__
    assert hasattr(view, "permission"), f"{method} {rule} declares neither an action (require) nor public"
    return view.permission


def expectations(app, rule: str, method: str) -> dict[str, Expect]:
    """Every role's answer to ``method`` on ``rule``: written down, or generated from the table."""
    spec = ROUTES[rule][method]
    if isinstance(spec, dict):
        return spec
    if spec is NOT_ALLOWED:
        return everyone(NOT_ALLOWED)
    permission = permission_of(app, rule, method)
    assert permission is not None, f"{method} {rule} is public: write every role's answer in ROUTES"
    return {"anonymous": TO_LOGIN, **{role: spec if may(role, permission) else FORBIDDEN for role in STAFF}}


# The state (and extras) of the submission each action is tried on.
ACTION_TARGETS = {
    "accept": dict(state="received"), "reject": dict(state="received"), "merge": dict(state="received"),
    "assign": dict(state="accepted"), "close": dict(state="answered"), "reopen": dict(state="answered"),
    "note": dict(state="received"), "reveal": dict(state="assigned"),
    "extend": dict(state="accepted", kind="request"), "draft_reply": dict(state="assigned"),
    "approve_reply": dict(state="assigned", draft=True),
    "record_delivery": dict(state="answered", reply_by="letter", approved_reply=True),
}


# ---------- the world, built once ----------

@dataclass
class World:
    app: object
    settings: object
    tmp: object
    factory: object
    people: dict
    units: dict
    mine: Submission  # unit A, answered, with an attachment and an approved letter reply
    theirs: Submission  # unit B, the same
    attachment: int
    their_attachment: int
    reply: int
    their_reply: int
    spare: StaffUser  # the account the admin's buttons are pressed on
    bulletin: object
    clients: dict = field(default_factory=dict)

    def client(self, role: str):
        if role == "anonymous":
            return self.app.test_client()  # fresh each time: no cookies carried over
        return self.clients[role]

    def fresh_client(self, role: str):
        c = self.app.test_client()
        response = login(c, self.people[role].username)
        assert response.status_code in (302, 303) and urlsplit(response.headers["Location"]).path == "/staff/", \
            f"{role} could not log in: {response.status_code}"
        return c

    def session(self):
        return self.factory()

    def path(self, rule: str, **values) -> str:
        values = {"reference": self.mine.reference, "action": "accept", "attachment_id": self.attachment,
                  "reply_id": self.reply, "user_id": self.spare.id, "fmt": "csv", "inbound_id": MISSING_ID,
                  "number": 5, "slug": SEED_SLUG, **values}
        return re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def _submission(session, settings, bulletin, *, unit=None, state="received", kind="suggestion",
                reply_by="letter", attachment=False, draft=False, approved_reply=False, body=None):
    extra = dict(name="王小明", phone="+8613800138000", address="广州市黄埔区某路1号")
    if reply_by == "email":
        extra["email"] = "wang@example.com"
    if attachment:
        extra["attachments"] = (IncomingFile("现场照片.png", PNG),)
    submission, _ = create_web_submission(
        session, settings, bulletin=bulletin, kind=kind, reply_by=reply_by,
        body=body or f"反映第五项整改的落实情况，请核查（{state}）。", **extra)
    submission.state = state
    submission.unit_id = unit.id if unit is not None else None
    session.commit()
    if draft:
        create_reply(session, submission=submission, body="经核查，第五项整改已按要求完成。", approved=False)
    if approved_reply:
        create_reply(session, submission=submission, body="经核查，第五项整改已按要求完成。", approved=True)
    session.refresh(submission)
    return submission


@pytest.fixture(scope="module")
def world(db_template, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    settings = make_settings(fresh_database(db_template, tmp), tmp)
    app = create_app(settings)
    factory = app.extensions["db_sessionmaker"]
    with factory() as s:
        bulletin = import_bulletin(s, SEED.read_text(encoding="utf-8"), SEED_SLUG).bulletin
        s.commit()
        units = {"a": create_unit(s, "区发展和改革局"), "b": create_unit(s, "区住房和城乡建设局")}
        s.commit()
        people = {
            "clerk": create_staff(s, username="deng.ji", role="clerk"),
            "reviewer": create_staff(s, username="shen.he", role="reviewer", totp=True),
            "handler": create_staff(s, username="cheng.ban", role="handler", unit=units["a"]),
            "admin": create_staff(s, username="guan.li", role="admin", totp=True),
            "handler_b": create_staff(s, username="qi.ta", role="handler", unit=units["b"]),
        }
        spare = create_staff(s, username="bei.yong", role="clerk")
        mine = _submission(s, settings, bulletin, unit=units["a"], state="answered", attachment=True,
                           approved_reply=True)
        theirs = _submission(s, settings, bulletin, unit=units["b"], state="answered", attachment=True,
                             approved_reply=True)
        w = World(app=app, settings=settings, tmp=tmp, factory=factory, people=people, units=units, mine=mine,
                  theirs=theirs, attachment=mine.attachments[0].id, their_attachment=theirs.attachments[0].id,
                  reply=mine.replies[0].id, their_reply=theirs.replies[0].id, spare=spare, bulletin=bulletin)
    w.clients = {role: w.fresh_client(role) for role in STAFF}
    w.clients["handler_b"] = w.fresh_client("handler_b")
    yield w
    app.extensions["db_engine"].dispose()


# ---------- checking one answer ----------

def send(client, method: str, path: str):
    return client.get(path) if method == "GET" else client.post(path, data={})


def check(response, expect: Expect, label: str, path: str) -> None:
    body = response.get_data().decode("utf-8", "replace")
    words = re.sub(r"<[^>]+>|\s+", " ", body)[:300]
    assert response.status_code == expect.status, (
        f"{label}: expected {expect}, got {response.status_code} {response.headers.get('Location', '')} {words}")
    assert response.status_code != 500, label
    if expect.to:
        location = urlsplit(response.headers["Location"])
        assert location.path == expect.to, f"{label}: redirected to {response.headers['Location']}"
        if expect is TO_LOGIN:
            assert parse_qs(location.query).get("next") == [path], f"{label}: next= should be {path}"
    if expect.says:
        assert expect.says in body, f"{label}: the page does not say «{expect.says}»"
    if expect.status == 400:
        assert CJK.search(re.sub(r"<[^>]+>", "", body)), f"{label}: a 400 without a Chinese message"
    if expect.status == 405:
        assert response.headers.get("Allow"), f"{label}: a 405 without Allow"


# ---------- 1. every route says who may open it ----------

def test_every_route_declares_who_may_open_it(world):
    found: dict[str, set[str]] = {}  # one path may be several rules (a GET view and a POST view)
    for r in world.app.url_map.iter_rules():
        if r.endpoint == "static":
            continue
        for method in r.methods - {"HEAD", "OPTIONS"}:
            permission = permission_of(world.app, r.rule, method)
            assert permission is None or permission in PERMISSIONS, f"{method} {r.rule}: {permission}"
            if not r.rule.startswith("/staff"):
                assert permission is None, f"{method} {r.rule} is outside /staff but not public"
        if r.rule.startswith("/staff"):
            found.setdefault(r.rule, set()).update(r.methods)
    assert sorted(set(found) - set(ROUTES)) == [], "staff routes without an expectation in ROUTES"
    assert sorted(set(ROUTES) - set(found)) == [], "expectations for routes that no longer exist"
    for rule, all_methods in found.items():
        methods = all_methods - {"HEAD", "OPTIONS"}
        assert methods <= set(METHODS), f"{rule} accepts {methods}: add expectations for the new methods"
        for method in METHODS:
            spec = ROUTES[rule][method]
            if spec == PER_ACTION:
                assert method in methods
                continue
            answers = expectations(world.app, rule, method)
            assert set(answers) == set(ROLES), f"{rule} {method}: a role without an expectation"
            refused = {role for role, e in answers.items() if e.status == 405}
            if method in methods:
                assert not refused, f"{rule} accepts {method}, yet the table expects 405 for {refused}"
            else:
                assert refused == set(ROLES), f"{rule} does not accept {method}: every role gets 405"
    assert set(DONE) <= set(PERMISSIONS), "actions.act actions that are not actions of the permissions table"
    assert set(ACTION_TARGETS) == set(DONE)


# ---------- 2. the matrix ----------

MATRIX = [
    pytest.param(role, rule, method, id=f"{role}-{method}-{rule}")
    for rule, by_method in ROUTES.items()
    for method, answers in by_method.items()
    if answers != PER_ACTION
    for role in ROLES
]


@pytest.mark.parametrize(("role", "rule", "method"), MATRIX)
def test_route(world, role, rule, method):
    path = world.path(rule)
    expect = expectations(world.app, rule, method)[role]
    client = world.client(role)
    if rule == "/staff/logout" and method == "POST" and role != "anonymous":
        client = world.fresh_client(role)  # keep the module's clients logged in
    response = send(client, method, path)
    check(response, expect, f"{role} {method} {path}", path)
    if rule == "/staff/logout" and method == "POST" and role != "anonymous":
        assert client.get("/staff/").status_code == 302, "the session should have ended"


@pytest.mark.parametrize(("role", "action"), [
    pytest.param(role, action, id=f"{role}-POST-/staff/submissions/<reference>/{action}")
    for action in ACTION_TARGETS for role in ROLES
])
def test_action_post(world, role, action):
    """An empty POST of each action, on a fresh submission of unit A where the action is possible."""
    with world.session() as s:
        target = _submission(s, world.settings, world.bulletin, unit=world.units["a"], **ACTION_TARGETS[action])
        reference, version, state = target.reference, target.version, target.state
    path = f"/staff/submissions/{reference}/{action}"
    expect = action_expectations(action)[role]
    if expect.to:
        expect = Expect(expect.status, expect.to.format(ref=reference), expect.says)
    response = send(world.client(role), "POST", path)
    check(response, expect, f"{role} POST {path} ({state})", path)
    if response.status_code != 303:
        with world.session() as s:
            after = s.scalar(select(Submission).where(Submission.reference == reference))
            assert (after.state, after.version) == (state, version), f"{role} {action}: refused, yet it changed"


def test_a_half_logged_in_reviewer_is_sent_to_the_second_factor(world):
    """Password given, code not yet: every page behind require answers with the 2FA page."""
    c = world.app.test_client()
    c.post("/staff/login", data={"username": world.people["reviewer"].username,
                                 "password": "correct horse battery"})
    wrong = []
    for rule, by_method in ROUTES.items():
        for method, answers in by_method.items():
            answers = {"anonymous": TO_LOGIN} if answers == PER_ACTION else expectations(world.app, rule, method)
            if answers["anonymous"] is not TO_LOGIN:
                continue
            response = send(c, method, world.path(rule))
            where = urlsplit(response.headers.get("Location", "")).path
            if (response.status_code, where) != (302, "/staff/2fa"):
                wrong.append(f"{method} {rule}: {response.status_code} {where}")
    assert not wrong, "\n".join(wrong)


# ---------- 3. another unit's submission answers like one that does not exist ----------

HIDDEN = [("GET", "detail"), ("POST", "attachment"), ("GET", "letter")] + \
         [("POST", action) for action in DONE] + [("POST", "no-such-action")] + \
         [("GET", "query-code"), ("POST", "query-code")]


def _probe_path(kind: str, reference: str, attachment: int, reply: int) -> str:
    base = f"/staff/submissions/{reference}"
    return {"detail": base, "attachment": f"{base}/attachments/{attachment}",
            "letter": f"{base}/replies/{reply}/letter"}.get(kind, f"{base}/{kind}")


@pytest.mark.parametrize(("method", "kind"), HIDDEN, ids=[f"handler-{m}-{k}" for m, k in HIDDEN])
def test_handler_gets_the_same_answer_for_another_units_submission_as_for_a_missing_one(world, method, kind):
    c = world.client("handler")
    theirs = _probe_path(kind, world.theirs.reference, world.their_attachment, world.their_reply)
    missing = _probe_path(kind, MISSING_REFERENCE, world.their_attachment, world.their_reply)
    data = {"version": str(world.theirs.version), "kind": "suggestion", "note": "承办人备注", "reason": "理由",
            "body": "经核查，相关问题已经整改完毕。", "unit": str(world.units["a"].id), "days": "10"}
    a = c.get(theirs) if method == "GET" else c.post(theirs, data=data)
    b = c.get(missing) if method == "GET" else c.post(missing, data=data)
    # what a handler may not do at all is refused before the record is looked up: 403 for both; what a
    # handler may do: the plain 404 for both
    permission = {"detail": "submission.view", "attachment": "attachment.download", "letter": "print_letter",
                  "query-code": "query_code.reissue"}.get(kind, kind)
    expected = FORBIDDEN if permission in PERMISSIONS and not may("handler", permission) else NOT_FOUND
    check(a, expected, f"handler {method} {theirs}", theirs)
    assert (a.status_code, a.headers.get("Content-Type"), a.get_data()) == \
           (b.status_code, b.headers.get("Content-Type"), b.get_data()), \
        f"{theirs} answers differently from {missing}: it tells that the reference exists"
    with world.session() as s:
        after = s.scalar(select(Submission).where(Submission.reference == world.theirs.reference))
        assert (after.state, after.version) == (world.theirs.state, world.theirs.version)
        assert not any(r.approved_at is None for r in after.replies)


@pytest.mark.parametrize("role", STAFF)
def test_an_attachment_or_reply_of_another_submission_answers_like_a_missing_one(world, role):
    c = world.client(role)
    ref = world.mine.reference
    foreign = c.post(f"/staff/submissions/{ref}/attachments/{world.their_attachment}")
    missing = c.post(f"/staff/submissions/{ref}/attachments/{MISSING_ID}")
    check(foreign, NOT_FOUND, f"{role} another submission's attachment", "")
    assert (foreign.status_code, foreign.get_data()) == (missing.status_code, missing.get_data())
    assert c.post(f"/staff/submissions/{ref}/attachments/{world.attachment}").data == PNG

    foreign = c.get(f"/staff/submissions/{ref}/replies/{world.their_reply}/letter")
    missing = c.get(f"/staff/submissions/{ref}/replies/{MISSING_ID}/letter")
    check(foreign, NOT_FOUND if may(role, "print_letter") else FORBIDDEN, f"{role} another submission's reply", "")
    assert (foreign.status_code, foreign.get_data()) == (missing.status_code, missing.get_data())


def test_handler_cannot_probe_another_units_reference_through_merge(world):
    """Merging is not a handler's; asked with another unit's reference or a made-up one, the answer is the same."""
    with world.session() as s:
        target = _submission(s, world.settings, world.bulletin, unit=world.units["a"], state="received")
        reference, version = target.reference, target.version
    c = world.client("handler")
    answers = {}
    for into in (world.theirs.reference, MISSING_REFERENCE):
        r = c.post(f"/staff/submissions/{reference}/merge", data={"version": str(version), "into": into})
        answers[into] = (r.status_code, re.sub(r"<[^>]+>|\s+", " ", r.get_data(as_text=True)))
    assert answers[world.theirs.reference] == answers[MISSING_REFERENCE], (
        "a handler can tell whether another unit's reference exists: "
        f"{answers[world.theirs.reference][0]} vs {answers[MISSING_REFERENCE][0]}")
    assert answers[MISSING_REFERENCE][0] == 403


def test_handler_of_unit_b_sees_unit_b_and_not_unit_a(world):
    """The mirror image, so that the 404s above are about the unit and not about the handler."""
    c = world.client("handler_b")
    assert c.get(f"/staff/submissions/{world.theirs.reference}").status_code == 200
    assert c.get(f"/staff/submissions/{world.mine.reference}").status_code == 404
    queue = c.get("/staff/").get_data(as_text=True)
    assert world.theirs.reference in queue and world.mine.reference not in queue


# ---------- 4. a GET writes nothing ----------

def _get_rules(app) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint != "static"})


@pytest.fixture
def jobs_kept(monkeypatch):
    """What requests leave for after their responses, kept instead of run."""
    left: list = []
    monkeypatch.setattr(transaction, "run_jobs", lambda _factory, jobs: left.extend(jobs))
    return left


@pytest.mark.parametrize("role", ROLES)
def test_no_get_writes_to_the_database(world, role, jobs_kept):
    """Every GET route of the app, as every role: every row of every table is as it was. All a GET may
    leave for after its response is a login's bookkeeping ("last seen", the end of one that ran out) and
    the count of a refusal (a 403 for a role that may not read the page)."""
    engine = world.app.extensions["db_engine"]
    before = snapshot(engine)
    client = world.client(role)
    rules = _get_rules(world.app)
    assert len(rules) >= 35
    for rule in rules:
        response = client.get(world.path(rule))
        assert response.status_code < 500, f"{role} GET {rule}: {response.status_code}"
    assert changes(before, snapshot(engine)) == {}
    assert {getattr(job, "func", job) for job in jobs_kept} <= {logins.seen, logins.lapse, count_refusal}


def test_the_database_refuses_a_write_in_a_get(world):
    """Not by convention: a GET's transaction is read-only, so a view that tried to write would fail."""
    app = create_app(world.settings)

    @app.get("/test-writes-in-a-get")
    def writes():
        from feedback_app.web.transaction import get_session

        get_session().add(Unit(name="在读请求中写入的单位"))
        get_session().flush()
        return "written"

    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        assert app.test_client().get("/test-writes-in-a-get").status_code == 500
    finally:
        app.extensions["db_engine"].dispose()
    with world.session() as s:
        assert s.scalar(select(Unit).where(Unit.name == "在读请求中写入的单位")) is None


# ---------- 5. with CSRF on, a POST without the token is refused ----------

@pytest.fixture(scope="module")
def csrf_world(world):
    settings = make_settings(world.settings.database_url, world.tmp, csrf_enabled=True)
    app = create_app(settings)
    yield SimpleNamespace(app=app, world=world)
    app.extensions["db_engine"].dispose()


def _csrf_client(csrf_world, role):
    c = csrf_world.app.test_client()
    response = login(c, csrf_world.world.people[role].username)
    assert response.status_code == 303, response.status_code
    return c


def test_csrf_action_without_token_is_refused_and_with_token_done(csrf_world):
    w = csrf_world.world
    with w.session() as s:
        target = _submission(s, w.settings, w.bulletin, unit=w.units["a"], state="received")
        reference, version = target.reference, target.version
    c = _csrf_client(csrf_world, "reviewer")
    page = c.get(f"/staff/submissions/{reference}").get_data(as_text=True)
    data = {"version": str(version), "kind": "suggestion"}
    refused = c.post(f"/staff/submissions/{reference}/accept", data=data)
    assert refused.status_code == 400 and "页面已过期" in refused.get_data(as_text=True)
    with w.session() as s:
        assert s.scalar(select(Submission.state).where(Submission.reference == reference)) == "received"
    done = c.post(f"/staff/submissions/{reference}/accept", data={**csrf_of(page), **data})
    assert done.status_code == 303


def test_csrf_admin_button_without_token_does_nothing(csrf_world):
    w = csrf_world.world
    with w.session() as s:  # the matrix's own POSTs may have disabled it, depending on test order
        s.get(StaffUser, w.spare.id).active = True
        s.commit()
    c = _csrf_client(csrf_world, "admin")
    response = c.post(f"/staff/admin/users/{w.spare.id}/disable")
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/staff/admin/users"
    assert "页面已过期：提交的内容缺少安全校验信息，可能页面没有完整打开。操作未执行" in c.get(
        "/staff/admin/users").get_data(as_text=True)
    with w.session() as s:
        assert s.get(StaffUser, w.spare.id).active is True
    created = c.post("/staff/admin/units", data={"name": "区教育局"})
    assert created.status_code == 400 and "页面已过期" in created.get_data(as_text=True)
    with w.session() as s:
        assert s.scalar(select(Unit).where(Unit.name == "区教育局")) is None


def test_csrf_logout_without_token_keeps_the_session(csrf_world):
    c = _csrf_client(csrf_world, "clerk")
    response = c.post("/staff/logout")
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)
    assert c.get("/staff/").status_code == 200


def test_csrf_search_without_token_is_refused(csrf_world):
    """The search form carries a token; a POST without it must not set the search words."""
    c = _csrf_client(csrf_world, "clerk")
    response = c.post("/staff/search", data={"q": "跨站请求伪造"})
    assert response.status_code == 400, f"POST /staff/search without a CSRF token: {response.status_code}"
    assert "跨站请求伪造" not in c.get("/staff/?search=1").get_data(as_text=True)


MARK = "跨站请求伪造测试内容"
TYPED = {"note": MARK, "body": MARK, "text": MARK, "reason": MARK, "q": MARK, "name": MARK, "display_name": MARK,
         "caller_name": MARK, "version": "1", "kind": "suggestion", "unit": "1", "days": "5", "into": "HP2099-000001",
         "username": "new.user", "password": "correct horse battery staple", "method": "phone", "rating": "satisfied"}


def _may_post(app, rule: str) -> list[tuple[str, str]]:
    """(role, path) for each POST of ``rule`` by a role that may send it: each action of actions.act."""
    if ROUTES[rule]["POST"] == PER_ACTION:
        return [(next(r for r in STAFF if may(r, action)), rule.replace("<action>", action)) for action in DONE]
    permission = permission_of(app, rule, "POST")
    return [(next(r for r in STAFF if permission is None or may(r, permission)), rule)]


CSRF_CASES = [
    pytest.param(rule, id=rule) for rule, by_method in ROUTES.items() if by_method["POST"] is not NOT_ALLOWED
]


@pytest.mark.parametrize("rule", CSRF_CASES)
def test_a_post_without_its_token_changes_nothing_and_says_why(csrf_world, rule, jobs_kept):
    """Every POST of /staff, by a role that may send it, with typed fields but no CSRF token: nothing in
    the database changes, and the answer explains in Chinese that the page has expired."""
    app = csrf_world.app
    engine = app.extensions["db_engine"]
    for role, path_rule in _may_post(app, rule):
        client = _csrf_client(csrf_world, role)
        path = csrf_world.world.path(path_rule)
        before = snapshot(engine)
        response = client.post(path, data=TYPED)
        assert changes(before, snapshot(engine)) == {}, f"{role} POST {path} without a token wrote"
        _says_why(client, rule, response, "页面已过期：提交的内容缺少安全校验信息", f"{role} POST {path}")


def _says_why(client, rule: str, response, words: str, what: str, base_url: str = "http://localhost") -> None:
    """The refused POST's answer, or the page it leads to, gives the reason in ``words``."""
    spec = ROUTES[rule]["POST"]
    if spec is NOT_FOUND and response.status_code == 404:  # asked about a message that does not exist
        return
    if isinstance(spec, dict) and response.status_code == 303:  # a login page with nothing to do here
        return
    assert response.status_code in (303, 400), f"{what}: {response.status_code}"
    page = client.get(response.headers["Location"], base_url=base_url) if response.status_code == 303 else response
    assert words in page.get_data(as_text=True), what


@pytest.fixture(scope="module")
def strict_world(world):
    """The site over HTTPS with the referrer check on: a POST with a valid token but no Referer is refused."""
    settings = make_settings(world.settings.database_url, world.tmp, csrf_enabled=True)
    app = create_app(settings)
    app.config["WTF_CSRF_SSL_STRICT"] = True
    yield SimpleNamespace(app=app, world=world)
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("rule", CSRF_CASES)
def test_a_post_with_a_valid_token_but_refused_changes_nothing(strict_world, rule, jobs_kept):
    """A refusal other than a missing token: the token is right, the request is not. A view that shows
    its form again must not take the valid token as leave to act."""
    app = strict_world.app
    engine = app.extensions["db_engine"]
    for role, path_rule in _may_post(app, rule):
        client = app.test_client()
        client.environ_base["HTTP_REFERER"] = "http://localhost/staff/login"  # login over http, as the test client does
        login(client, strict_world.world.people[role].username)
        token = csrf_of(client.get("/staff/", base_url="https://localhost").get_data(as_text=True))
        assert token, f"{role}: no token on the staff home"
        del client.environ_base["HTTP_REFERER"]
        path = strict_world.world.path(path_rule)
        before = snapshot(engine)
        response = client.post(path, data={**TYPED, **token}, base_url="https://localhost")
        assert changes(before, snapshot(engine)) == {}, f"{role} POST {path} with a valid token and no Referer wrote"
        _says_why(client, rule, response, "无法确认提交来自本站页面", f"{role} POST {path}", "https://localhost")
