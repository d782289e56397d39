"""Direct-message channels the bot has opened (``slack_dm``): ``conversations.open`` once per user, shared by every
process. Repositories never commit."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from storage.models import SlackDM


def get_dm_channel(s: Session, user_id: str) -> str | None:
    """The DM channel opened with a user, or None when none was opened yet."""
    row = s.get(SlackDM, user_id)
    return row.channel_id if row else None


def record_dm_channel(s: Session, user_id: str, channel_id: str, *, at: datetime) -> None:
    """Remember the DM channel Slack opened with a user (two processes opening it at once store the same)."""
    row = s.get(SlackDM, user_id)
    if row is None:
        s.add(SlackDM(user_id=user_id, channel_id=channel_id, opened_at=at))
    elif row.channel_id != channel_id:
        row.channel_id, row.opened_at = channel_id, at
        s.add(row)


def forget_dm_channel(s: Session, user_id: str) -> None:
    """Forget a user's DM channel (Slack refused it): the next DM opens it again."""
    row = s.get(SlackDM, user_id)
    if row is not None:
        s.delete(row)
