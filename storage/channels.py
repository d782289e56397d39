"""What the bot knows of the channels it posts in (``slack_channel``): written by the membership checks and by
the outbox when Slack refuses a channel for good; read before filing. Repositories never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from storage import configuration
from storage.models import SlackChannel


def record_channel(
    s: Session, channel_id: str, *, is_member: bool, problem: str | None, at: datetime
) -> bool:
    """Store what was learned about a channel; True when it changed (so the admins are told once)."""
    configuration.forget(s)
    row = s.get(SlackChannel, channel_id)
    if row is None:
        s.add(SlackChannel(channel_id=channel_id, is_member=is_member, problem=problem, checked_at=at))
        return True
    changed = row.is_member != is_member or row.problem != problem
    row.is_member, row.problem, row.checked_at = is_member, problem, at
    s.add(row)
    return changed


def get_channel(s: Session, channel_id: str) -> SlackChannel | None:
    """What is known of a channel, or None when it was never checked."""
    return s.get(SlackChannel, channel_id)


def refusal_of(s: Session, channel_id: str) -> tuple[bool, str | None] | None:
    """(is the bot a member, the problem) as last recorded for a channel; None when it was never checked."""
    return configuration.read(s).channels.get(channel_id)
