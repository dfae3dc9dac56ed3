"""``create_app``: every blueprint, command group, error handler and extension, wired in one place.

Nothing registers itself when imported: a page or a command exists because it is listed here.
"""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from feedback_app.cli.audit import audit_group
from feedback_app.cli.bulletin import bulletin_group
from feedback_app.cli.db import db_group
from feedback_app.cli.deadlines import deadlines_group
from feedback_app.cli.ledger import ledger_group
from feedback_app.cli.mail import mail_group
from feedback_app.cli.outbox import outbox_group
from feedback_app.cli.staff import staff_group, unit_group
from feedback_app.core.config import REPO_ROOT, Settings
from feedback_app.core.database import make_engine
from feedback_app.core.logsafe import configure_logging
from feedback_app.web import csrf, errors, headers, limits, origin, refusal_audit, templating, transaction, unavailable
from feedback_app.web.access import init_staff_sessions
from feedback_app.web.cookie_session import CookieSessions
from feedback_app.web.form_data import AppRequest
from feedback_app.web.health import bp as health_bp
from feedback_app.web.public import bulletin, citizen
from feedback_app.web.staff import (
    actions,
    admin,
    calendar,
    dashboard,
    intake,
    ledger,
    login,
    mailbox,
    publication,
    query_code,
    submissions,
)
from feedback_app.web.stats import bp as stats_bp

BLUEPRINTS = (
    # the public site
    bulletin.bp, citizen.bp, stats_bp, health_bp,
    # the staff site
    login.bp, submissions.bp, actions.bp, query_code.bp, intake.bp, mailbox.bp, dashboard.bp, ledger.bp,
    publication.bp, admin.bp, calendar.bp,
)
COMMANDS: tuple[click.Group, ...] = (
    db_group, bulletin_group, outbox_group, mail_group, staff_group, unit_group, deadlines_group, audit_group,
    ledger_group,
)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(
        "feedback_app",
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    app.extensions["settings"] = settings
    app.request_class = AppRequest  # reads the citizen form's small multipart bodies at once
    app.session_interface = CookieSessions()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
        WTF_CSRF_ENABLED=settings.csrf_enabled,
        WTF_CSRF_TIME_LIMIT=settings.csrf_time_limit,
        # the token is the check; a Referer is not required (browsers and proxies may leave it out)
        WTF_CSRF_SSL_STRICT=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        # under https the __Host- prefix: browsers then keep it only if Secure, for Path=/ and this host alone
        SESSION_COOKIE_NAME=("__Host-" if settings.public_url.startswith("https://") else "") + "fb_session",
        TEMPLATES_AUTO_RELOAD=settings.env == "development",
    )
    configure_logging(settings.log_level)
    headers.init_headers(app, settings)
    origin.init_origin_check(app, settings)  # first of the before-request hooks: a refused POST reaches none
    init_staff_sessions(app)
    csrf.init_csrf(app)  # after the hooks that say who is asking (a view that runs for a bad token needs them)
    limits.init_limiter(app, settings)
    templating.init_templates(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    citizen.apply_limits(app, settings)
    login.apply_limits(app, settings)
    errors.register_error_pages(app)
    unavailable.init_unavailable(app)  # its handlers are more specific than the error pages' (Flask picks by class)
    # last: after-request hooks run last-registered first, so the request's transaction commits
    # before the others run (they only set headers) and holds the write lock no longer
    transaction.init_db(app, make_engine(settings.database_url, busy_seconds=settings.database_busy_seconds))
    unavailable.remember_office_phone(app)  # after init_db: the latest bulletin's phone, for the 503 page
    refusal_audit.init_refusal_audit(app)  # after init_db: it leaves its job before the request's end takes them
    for group in COMMANDS:
        app.cli.add_command(group)
    return app


def main() -> None:
    """The ``feedback-app`` command."""
    FlaskGroup(create_app=create_app, help="巡察整改监督意见受理服务").main()
