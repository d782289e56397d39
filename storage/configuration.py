"""The small tables every filing reads: runtime settings, what is known of the bot's channels, and the names of the
screening lists loaded. One statement reads all three, once per transaction (storage.db.kept_for_the_transaction);
a write to any of them in the transaction (``forget``) makes the next read go to the database again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, String, cast, literal, null, select, union_all
from sqlalchemy.sql.selectable import CompoundSelect
from sqlmodel import Session, col

from storage.db import core, kept_for_the_transaction
from storage.models import ScreeningSnapshot, Setting, SlackChannel


@dataclass(frozen=True)
class Configuration:
    settings: dict[str, str]  # what `admin set` stored, by key
    channels: dict[str, tuple[bool, str | None]]  # channel ID -> (is the bot a member, the problem)
    list_names: tuple[str, ...]  # screening lists with at least one snapshot, by name


_READ = kept_for_the_transaction("contract_bot_configuration")

# built once (storage.repositories says why); the same four columns from each table, told apart by ``kind``
_CONFIGURATION: CompoundSelect[Any] = union_all(
    select(
        literal("setting", String).label("kind"),
        col(Setting.key).label("name"),
        col(Setting.value).label("value"),
        cast(null(), Boolean).label("is_member"),
    ),
    select(
        literal("channel", String),
        col(SlackChannel.channel_id),
        col(SlackChannel.problem),
        col(SlackChannel.is_member),
    ),
    select(
        literal("list", String), col(ScreeningSnapshot.list_name), cast(null(), String), cast(null(), Boolean)
    ).distinct(),
)


def read(s: Session) -> Configuration:
    """The three, as the transaction sees them (read at its first call)."""
    found = s.info.get(_READ)
    if found is None:
        settings: dict[str, str] = {}
        channels: dict[str, tuple[bool, str | None]] = {}
        list_names: list[str] = []
        for kind, name, value, is_member in core(s).execute(_CONFIGURATION):
            if kind == "setting":
                settings[name] = value
            elif kind == "channel":
                channels[name] = (bool(is_member), value)
            else:
                list_names.append(name)
        found = s.info[_READ] = Configuration(settings, channels, tuple(sorted(list_names)))
    return found


def forget(s: Session) -> None:
    """Called by every write to a setting, a channel or a snapshot: the next read sees it."""
    s.info.pop(_READ, None)
