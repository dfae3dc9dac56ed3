"""One typed, frozen settings object read from ``FEEDBACK_*`` environment variables."""
from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCE = REPO_ROOT / "instance"


class SettingsError(RuntimeError):
    """A setting is missing or malformed."""


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Field ``foo_bar`` is read from ``FEEDBACK_FOO_BAR`` (see ENV_NAMES)."""

    env: str = "production"
    instance_path: Path = DEFAULT_INSTANCE
    database_url: str = ""
    # how long a SQLite writer waits for the write lock before the request fails (503): well under the
    # time a server gives a request before it kills the worker (gunicorn: 30 s)
    database_busy_seconds: float = 10.0
    secret_key: str = field(default="", repr=False)
    public_url: str = "http://127.0.0.1:5000"
    office_phone: str = ""  # to call when the site cannot save; empty: the phone of the bulletin shown last
    proxy_count: int = 0
    max_request_bytes: int = 16 * 1024 * 1024
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"
    page_cache_seconds: int = 15  # how stale the bulletin page's published comments and counts may be
    search_count_ms: int = 300  # a search's per-state counts are left out when they would take longer

    # the citizen form
    body_min_chars: int = 10
    body_max_chars: int = 5000
    attachment_max_files: int = 3
    attachment_max_bytes: int = 5 * 1024 * 1024
    attachments_max_total_bytes: int = 10 * 1024 * 1024
    attachments_dir: Path | None = None
    reference_prefix: str = "HP"
    csrf_enabled: bool = True
    csrf_time_limit: int = 4 * 3600
    min_fill_seconds: int = 3

    # rate limits (Flask-Limiter notation)
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str = "memory://"
    ratelimit_submit: str = "5 per minute;30 per day"
    ratelimit_track: str = "10 per minute;60 per day"

    # staff
    staff_idle_minutes: int = 30
    staff_absolute_hours: int = 12
    twofa_roles: str = "reviewer,admin"
    audit_key: str = field(default="", repr=False)  # keys the audit chain; derived from the secret key if empty
    ratelimit_login_account: str = "5 per 5 minutes"
    ratelimit_login_client: str = "30 per 5 minutes"
    calendar_path: Path | None = None  # working-day calendar; the bundled one when empty

    # the mailbox
    imap_host: str = ""
    imap_port: int = 993
    imap_username: str = ""
    imap_password: str = field(default="", repr=False)
    imap_mailbox: str = "INBOX"
    imap_security: str = "tls"  # tls | starttls | plain (plain only with imap_allow_plain)
    imap_allow_plain: bool = False
    imap_ca_file: Path | None = None  # trust only the CAs in this PEM file; empty: the system store
    imap_poll_seconds: int = 60
    mail_max_bytes: int = 25 * 1024 * 1024
    mail_max_parts: int = 200
    mail_max_depth: int = 10
    mail_alarm_minutes: int = 30

    # outgoing mail
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_security: str = "none"  # none | starttls | tls
    smtp_timeout: float = 10.0
    mail_from: str = "noreply@localhost"
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: int = 60

    @property
    def is_development(self) -> bool:
        return self.env in {"development", "test"}

    @property
    def attachments_path(self) -> Path:
        return self.attachments_dir or self.instance_path / "attachments"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def subkey(self, purpose: str) -> bytes:
        """A key for one purpose, derived from the secret key (never stored in the database)."""
        return _subkey(self.secret_key, purpose)

    @property
    def twofa_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.twofa_roles.split(",") if r.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment; ``overrides`` win over it."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # each field's value, of that field's type
        for f in fields(cls):
            key = ENV_NAMES.get(f.name, "FEEDBACK_" + f.name.upper())
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            elif key in environ:
                values[f.name] = _convert(f, environ[key], key)
        settings = cls(**values)
        return settings._completed()

    def _completed(self) -> Settings:
        changes: dict[str, object] = {}
        instance = Path(self.instance_path)
        changes["instance_path"] = instance
        if not self.database_url:
            changes["database_url"] = f"sqlite:///{instance / 'feedback.db'}"
        if not self.secret_key:
            if not self.is_development:
                raise SettingsError("FEEDBACK_SECRET_KEY 未设置：生产环境必须提供密钥")
            changes["secret_key"] = _development_key(instance)
        if self.smtp_security not in {"none", "starttls", "tls"}:
            raise SettingsError("FEEDBACK_SMTP_SECURITY 只能是 none、starttls 或 tls")
        return _replace(self, **changes)


ENV_NAMES = {"twofa_roles": "FEEDBACK_2FA_ROLES"}


def _replace(settings: Settings, **changes: object) -> Settings:
    data = {f.name: getattr(settings, f.name) for f in fields(settings)}
    data.update(changes)
    return Settings(**data)


def _convert(f: Field[Any], raw: str, key: str) -> bool | int | float | Path | str | None:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "bool":
            return _bool(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if "Path" in kind:
            return Path(raw) if raw else None
        return raw
    except ValueError as exc:
        raise SettingsError(f"{key} 的值无效：{raw!r}") from exc


def _development_key(instance: Path) -> str:
    """A key generated once per development checkout and kept under ``instance/``."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


@functools.lru_cache(maxsize=64)
def _subkey(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()
