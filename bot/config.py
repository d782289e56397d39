"""Settings: one typed, validated object built from the environment (SPEC "Configuration")."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite:///contract-bot.db"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    review_channel: str | None = None
    manager_channel: str | None = None
    admin_user_ids: tuple[str, ...] = ()
    bot_timezone: str = "America/New_York"
    reminder_interval_seconds: int = 60
    port: int = 3000
    audit_key_file: str | None = None  # None: <db file>.audit-key on SQLite; required on PostgreSQL
    audit_channel: str | None = None  # checkpoints and refusal alerts; None: MANAGER_CHANNEL / admins' DMs
    cui_banner: str = "CUI"

    def __repr__(self) -> str:  # secrets never appear in logs
        return (
            f"Settings(database_url={_redact_url(self.database_url)!r}, review_channel={self.review_channel!r}, "
            f"manager_channel={self.manager_channel!r}, admins={len(self.admin_user_ids)}, "
            f"bot_timezone={self.bot_timezone!r}, reminder_interval_seconds={self.reminder_interval_seconds}, "
            f"port={self.port}, socket_mode={self.socket_mode}, audit_channel={self.audit_channel!r})"
        )

    __str__ = __repr__

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token selects Socket Mode."""
        return bool(self.slack_app_token)

    @property
    def zone(self) -> ZoneInfo:
        """The bot's IANA time zone."""
        return ZoneInfo(self.bot_timezone)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings; raises SettingsError naming the first bad variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        bot_token = get("SLACK_BOT_TOKEN")
        if bot_token and not bot_token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with 'xoxb-'")
        app_token = get("SLACK_APP_TOKEN")
        if app_token and not app_token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
        api_url = get("SLACK_API_URL")
        if api_url and not re.match(r"^https?://[^\s/]+", api_url):
            raise SettingsError(f"SLACK_API_URL must be an http(s) URL, got {api_url!r}")
        database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
        try:
            backend = make_url(database_url).get_backend_name()
        except ArgumentError as exc:
            raise SettingsError(f"DATABASE_URL is not a database URL: {exc}") from None
        if backend not in ("sqlite", "postgresql"):
            raise SettingsError(f"DATABASE_URL must be SQLite or PostgreSQL, got {backend!r}")
        _check_driver(database_url)
        review = get("REVIEW_CHANNEL")
        if review and not _CHANNEL_ID.match(review):
            raise SettingsError(f"REVIEW_CHANNEL must be a channel ID like C0123ABCD, got {review!r}")
        manager = get("MANAGER_CHANNEL")
        if manager and not _CHANNEL_ID.match(manager):
            raise SettingsError(f"MANAGER_CHANNEL must be a channel ID like C0123ABCD, got {manager!r}")
        admins = tuple(a.strip() for a in (get("ADMIN_USER_IDS") or "").split(",") if a.strip())
        for admin in admins:
            if not _USER_ID.match(admin):
                raise SettingsError(
                    f"ADMIN_USER_IDS must be comma-separated Slack user IDs like U0123ABCD, got {admin!r}"
                )
        tz = get("BOT_TIMEZONE") or "America/New_York"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"BOT_TIMEZONE must be an IANA zone like America/New_York, got {tz!r}"
            ) from None
        interval = _int(get("REMINDER_INTERVAL_SECONDS"), "REMINDER_INTERVAL_SECONDS", 60, 1, 86400)
        port = _int(get("PORT"), "PORT", 3000, 1, 65535)
        audit_channel = get("AUDIT_CHANNEL")
        if audit_channel and not _CHANNEL_ID.match(audit_channel):
            raise SettingsError(f"AUDIT_CHANNEL must be a channel ID like C0123ABCD, got {audit_channel!r}")
        audit_key_file = get("AUDIT_KEY_FILE")
        if audit_key_file and not os.path.isfile(audit_key_file):
            raise SettingsError(
                f"AUDIT_KEY_FILE must name a file holding the audit key; {audit_key_file} is not one"
            )
        cui_banner = get("CUI_BANNER") or "CUI"
        if len(cui_banner) > 200 or "\n" in cui_banner:
            raise SettingsError("CUI_BANNER must be one line of at most 200 characters (default CUI)")
        return cls(
            slack_bot_token=bot_token,
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_app_token=app_token,
            slack_api_url=api_url,
            database_url=database_url,
            review_channel=review,
            manager_channel=manager,
            admin_user_ids=admins,
            bot_timezone=tz,
            reminder_interval_seconds=interval,
            port=port,
            audit_key_file=audit_key_file,
            audit_channel=audit_channel,
            cui_banner=cui_banner,
        )

    def require_for_serve(self) -> None:
        """Raises SettingsError when `serve` lacks what it needs to reach Slack."""
        if not self.slack_bot_token:
            raise SettingsError("SLACK_BOT_TOKEN is required for `contract-bot serve` (a bot token, xoxb-…)")
        if not self.socket_mode and not self.slack_signing_secret:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is required for HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
            )


def _check_driver(url: str) -> None:
    """Raises SettingsError when the URL names a database driver that is not installed or cannot be used."""
    parsed = make_url(url)
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except Exception:  # noqa: BLE001 - an unknown plugin, or a driver module that is not installed
        raise SettingsError(
            f"DATABASE_URL names the driver {parsed.drivername!r}, which is not installed: use "
            "sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
        ) from None
    if getattr(dialect, "is_async", False):
        raise SettingsError(
            f"DATABASE_URL names the asynchronous driver {parsed.drivername!r}: use postgresql+psycopg://…"
        )


def _int(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid>"
