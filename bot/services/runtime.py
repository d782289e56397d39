"""The runtime settings (`/contract admin set KEY VALUE`) as one typed object, read from the settings table.

Every reader (the planner, the reminder sweep, snoozes, the services) takes its values from ``RuntimeSettings``, so a
setting the parser accepts is a setting the bot obeys, and each default is written once: in the parser's SETTINGS
table (bot/domain/args.py), which `admin set` and `admin settings` use too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from bot.config import Settings
from bot.domain.args import SETTINGS, mm_dd
from storage import repositories as repo

PLANNED_ZONE_KEY = (
    "reminders_planned_in"  # the BOT_TIMEZONE the pending reminders were planned in (not settable)
)


def _default_int(key: str) -> int:
    default = SETTINGS[key].default
    assert isinstance(default, int) and not isinstance(
        default, bool
    )  # the table declares int settings' defaults
    return default


def _default_on(key: str) -> bool:
    return bool(SETTINGS[key].default)


@dataclass(frozen=True)
class RuntimeSettings:
    """What `admin set` can change, typed, with the environment and the SETTINGS table's defaults beneath."""

    review_channel: str = ""
    manager_channel: str = ""
    reminder_hour: int = _default_int("reminder_hour")
    stopwork_reminders: bool = _default_on("stopwork_reminders")
    unanswered_reminder_days: int = _default_int("unanswered_reminder_days")
    escalation_days: int = _default_int("escalation_days")
    digest: bool = _default_on("digest")
    annual_report_due: str = str(SETTINGS["annual_report_due"].default)  # MM-DD

    @classmethod
    def from_values(cls, stored: dict[str, str], env: Settings | None = None) -> RuntimeSettings:
        """From the settings table's rows (strings, as `admin set` stores them); a value that does not parse (an
        old or hand-edited row) falls back to its default rather than stopping the reminders."""
        base = cls(
            review_channel=(env.review_channel if env else None) or "",
            manager_channel=(env.manager_channel if env else None) or "",
        )
        values: dict[str, object] = {}
        for key, raw in stored.items():
            setting = SETTINGS.get(key)
            if setting is None:
                continue
            if setting.kind == "channel":
                values[key] = raw
            elif setting.kind == "int":
                try:
                    n = int(raw)
                except ValueError:
                    continue
                low = setting.minimum if setting.minimum is not None else n
                high = setting.maximum if setting.maximum is not None else n
                if low <= n <= high:
                    values[key] = n
            elif setting.kind == "mm_dd":
                day = mm_dd(raw)
                if day is not None:
                    values[key] = day
            elif raw in ("on", "off"):
                values[key] = raw == "on"
        return cls(**{**base.__dict__, **values})


def load(s: Session, env: Settings | None = None) -> RuntimeSettings:
    """The runtime settings as this unit of work sees them (one small query: a setting just changed is seen)."""
    return RuntimeSettings.from_values(repo.get_settings(s), env)


def as_strings(rt: RuntimeSettings) -> dict[str, str]:
    """Every runtime setting as `admin set` writes it ("on"/"off", numbers, channel IDs), for `admin settings`."""
    out = {}
    for key in SETTINGS:
        value = getattr(rt, key)
        out[key] = ("on" if value else "off") if isinstance(value, bool) else str(value)
    return out
