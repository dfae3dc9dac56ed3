"""Public feedback intake service for a district discipline inspection office."""
from __future__ import annotations

import logging

from flask import Flask

from feedback_app.config import REPO_ROOT, Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder=str(REPO_ROOT / "templates"),
        static_folder=str(REPO_ROOT / "static"),
        instance_path=str(settings.instance_path),
    )
    for init in (
        init_config,
        init_logging,
        init_security,
        init_staff,
        init_rate_limits,
        init_blueprints,
        init_errors,
        # after the hooks above: after-request hooks run last-registered first, so the request's
        # transaction commits before theirs (they only set headers) and holds the write lock no longer
        init_database,
        init_cli,
    ):
        init(app, settings)
    return app


def init_config(app: Flask, settings: Settings) -> None:
    from feedback_app.cookie_session import CookieSessions
    from feedback_app.multipart import init_request

    app.extensions["settings"] = settings
    init_request(app)
    app.session_interface = CookieSessions()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
        WTF_CSRF_ENABLED=settings.csrf_enabled,
        WTF_CSRF_TIME_LIMIT=settings.csrf_time_limit,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        SESSION_COOKIE_NAME="fb_session",
        TEMPLATES_AUTO_RELOAD=settings.env == "development",
    )


def init_logging(app: Flask, settings: Settings) -> None:
    from feedback_app.logs import configure_logging

    configure_logging(app, settings.log_level)


def init_database(app: Flask, settings: Settings) -> None:
    from feedback_app.db import init_db, make_engine

    init_db(app, make_engine(settings.database_url))


def init_security(app: Flask, settings: Settings) -> None:
    from feedback_app.security import init_headers

    init_headers(app, settings)


def init_staff(app: Flask, settings: Settings) -> None:
    from flask_wtf.csrf import generate_csrf

    from feedback_app.auth.sessions import current_staff, init_staff_sessions

    init_staff_sessions(app)
    app.jinja_env.globals["csrf_token"] = generate_csrf

    @app.context_processor
    def staff_in_templates():
        return {"staff": current_staff()}


def init_rate_limits(app: Flask, settings: Settings) -> None:
    from feedback_app.ratelimit import init_limiter

    init_limiter(app, settings)


def init_blueprints(app: Flask, settings: Settings) -> None:
    from feedback_app.bulletin.views import bp as bulletin_bp
    from feedback_app.filters import register_filters
    from feedback_app.health import bp as health_bp
    from feedback_app.public.views import apply_limits
    from feedback_app.public.views import bp as public_bp

    from feedback_app.auth.admin import bp as admin_bp
    from feedback_app.auth.views import bp as auth_bp
    from feedback_app.intake.staff_views import bp as intake_bp
    from feedback_app.mail.views import bp as mailbox_bp
    from feedback_app.moderation import action_views, calendar_views  # noqa: F401  (their routes)
    from feedback_app.moderation.dashboard import bp as dashboard_bp
    from feedback_app.moderation.views import bp as staff_bp
    from feedback_app.outcomes.ledger_views import bp as ledger_bp
    from feedback_app.outcomes.publication_views import bp as publication_bp
    from feedback_app.outcomes.stats_views import bp as stats_bp

    register_filters(app)
    for blueprint in (bulletin_bp, public_bp, health_bp, auth_bp, admin_bp, staff_bp, intake_bp, mailbox_bp,
                      dashboard_bp, ledger_bp, stats_bp, publication_bp):
        app.register_blueprint(blueprint)
    apply_limits(app, settings)


def init_errors(app: Flask, settings: Settings) -> None:
    from feedback_app.errors import register_error_pages

    register_error_pages(app)


def init_cli(app: Flask, settings: Settings) -> None:
    from feedback_app.cli import register_commands

    register_commands(app)


logging.getLogger("feedback_app").addHandler(logging.NullHandler())
