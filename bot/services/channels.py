"""Whether the bot can post in the channels it must post in, and loud when it cannot.

``ChannelService.check`` asks Slack (``conversations.info``) whether the bot is a member of the review and the
manager channel, records what it learned (``slack_channel``) in one unit of work, and when a channel is wrong, and
that is news, tells the admins by direct message (through the outbox) how to fix it. It runs in the background: at
start-up (``contract-bot serve``), after `admin set review_channel|manager_channel`, and every few minutes with the
reminder sweep, never inside a request. The outbox records a channel too when Slack refuses a message there for
good. ``check_filing`` reads what is known (the database, not Slack) inside the filing request and refuses while
the review channel is unusable, with the instruction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.clock import Clock
from bot.domain.errors import InvalidState
from bot.domain.text import escape_mrkdwn
from bot.services.outbox import CHANNEL_PROBLEMS, TOKEN_PROBLEMS
from storage import repositories as repo
from storage.channels import record_channel, refusal_of
from storage.db import SessionFactory, read_only, unit_of_work
from storage.models import SlackChannel

log = logging.getLogger(__name__)

REVIEW, MANAGER = "review_channel", "manager_channel"
CHANNEL_KEYS = (REVIEW, MANAGER)
CHECK_PERIOD_SECONDS = 300.0  # the periodic re-check (with the reminder sweep): conversations.info is Tier 3
NOT_A_MEMBER = "not_in_channel"  # what chat.postMessage answers there: the outbox records the same problem
# TOKEN_PROBLEMS (the token is refused: nothing can be posted anywhere) and CHANNEL_PROBLEMS (the channel cannot
# take the bot's messages; any other error says nothing about the channel) are the outbox's: named once
NO_REVIEW_CHANNEL = (
    "No review channel is set: an admin must set `REVIEW_CHANNEL` or run "
    "`/contract admin set review_channel #channel` before contracts can be filed."
)
ROLE = {REVIEW: "review channel", MANAGER: "manager channel"}
CONSEQUENCE = {
    REVIEW: "`/contract file` refuses new contracts and no review can be posted there",
    MANAGER: "manager reminders and the weekly digest cannot be posted there",
}


class FilingRefused(InvalidState):
    """Filing cannot go: no review channel is set, or the bot cannot post in it (the message says how to fix it)."""

    # the channel's state, not the filer's doing: the admins are told by the channel checks
    audit_refusal = False


@dataclass(frozen=True)
class ChannelCheck:
    """What Slack said about one channel: ``is_member`` None when it gave no usable answer (network, scope)."""

    channel_id: str
    is_member: bool | None
    problem: str | None = None


def why_not(problem: str | None) -> str:
    """Why the bot cannot post in a channel, as a clause after "cannot post in #channel:" (safe mrkdwn)."""
    if problem in TOKEN_PROBLEMS:
        return f"Slack refuses its token (`{problem}`), so it cannot post anywhere"
    if problem == "channel_not_found":
        return "Slack cannot find the channel (`channel_not_found`: deleted, or private and the bot is not in it)"
    if problem == "is_archived":
        return "the channel is archived"
    if problem in (None, NOT_A_MEMBER):
        return "it is not a member of the channel"
    return f"Slack refuses its messages there (`{problem}`)"


def how_to_fix(
    channel_id: str, keys: Iterable[str], problem: str | None, *, bot_name: str = "contract-bot"
) -> str:
    """The instruction that fixes it, for a channel set as ``keys`` (safe mrkdwn, ends with a full stop)."""
    if problem in TOKEN_PROBLEMS:
        return "an admin must give the bot a valid `SLACK_BOT_TOKEN` and restart it."
    other = " or ".join(f"`/contract admin set {k} #channel`" for k in keys)
    if problem == "is_archived":
        return f"set another channel with {other} (or unarchive <#{channel_id}> and type `/invite @{bot_name}` there)."
    return f"type `/invite @{bot_name}` in <#{channel_id}>, or set another channel with {other}."


def filing_refusal(channel_id: str, problem: str | None, *, bot_name: str = "contract-bot") -> str:
    """What `/contract file` answers while the review channel is unusable."""
    return (
        f":no_entry: Nothing was filed: {bot_name} cannot post in the review channel <#{channel_id}>: "
        f"{why_not(problem)}. To fix it, {how_to_fix(channel_id, [REVIEW], problem, bot_name=bot_name)} "
        "Then file again."
    )


def _roles(keys: Iterable[str]) -> list[str]:
    return [k for k in CHANNEL_KEYS if k in set(keys)]


def admin_notice(
    channel_id: str, keys: Iterable[str], problem: str | None, *, bot_name: str = "contract-bot"
) -> str:
    """The direct message telling the admins a channel is wrong and how to fix it."""
    roles = _roles(keys)
    names = " and ".join(ROLE[k] for k in roles)
    settings = ", ".join(f"`{k}`" for k in roles)
    return (
        f":warning: {bot_name} cannot post in the {names} <#{channel_id}> ({settings}): {why_not(problem)}. "
        f"Until it is fixed, {'; '.join(CONSEQUENCE[k] for k in roles)}. "
        f"To fix it, {how_to_fix(channel_id, roles, problem, bot_name=bot_name)}"
    )


def fixed_notice(channel_id: str, keys: Iterable[str], *, bot_name: str = "contract-bot") -> str:
    """The direct message telling the admins a channel works again."""
    roles = _roles(keys)
    names = " and ".join(ROLE[k] for k in roles)
    filing = " Contracts can be filed again." if REVIEW in roles else ""
    return f":white_check_mark: {bot_name} can post in the {names} <#{channel_id}> again.{filing}"


def check_under_way(channel_id: str, *, bot_name: str = "contract-bot") -> str:
    """What `admin set review_channel|manager_channel` adds to its answer: the check follows it."""
    return (
        f"{bot_name} is now checking that it can post in <#{channel_id}>; if it cannot, the admins get a direct "
        "message saying how to fix it."
    )


class ChannelService:
    """Checks the channels the bot posts in (Slack calls, in the background) and answers whether filing may go."""

    def __init__(
        self,
        session_factory: SessionFactory,
        client,  # noqa: ANN001 - slack_sdk.WebClient (the outbox's, which retries 429 and 5xx in our own thread)
        clock: Clock,
        runtime_settings: Callable[[Session], dict[str, str]],
        *,
        admin_user_ids: Iterable[str] = (),
        on_commit: Callable[[], None] | None = None,
        period: float = CHECK_PERIOD_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.client = client
        self.clock = clock
        self.runtime_settings = runtime_settings
        self.admin_user_ids = tuple(admin_user_ids)
        self.on_commit = on_commit or (lambda: None)
        self.period = period
        self.bot_name = "contract-bot"  # as `auth.test` names the bot, once a check has asked
        self._named = False
        self._last_check = time.monotonic()  # the start-up check is serve's; the periodic one follows later
        self._lock = threading.Lock()
        self._scope_warned = False

    # ---- in the request: a database read -------------------------------------------------------------------

    def check_filing(self) -> None:
        """Raises FilingRefused (with the instruction) when no review channel is set or the bot cannot post there.

        Reads what the checks and the outbox recorded; a channel never checked is taken as usable.
        """
        with read_only(self.session_factory) as s:
            self.refuse_filing(s, self.runtime_settings(s).get(REVIEW))

    def refuse_filing(self, s: Session, channel: str | None) -> None:
        """``check_filing`` inside the filing's own unit of work (``channel``: the review channel it read)."""
        if not channel:
            raise FilingRefused(NO_REVIEW_CHANNEL)
        known = refusal_of(s, channel)
        if known is not None and not known[0]:
            raise FilingRefused(filing_refusal(channel, known[1], bot_name=self.bot_name))

    # ---- in the background: Slack calls, then one unit of work --------------------------------------------

    def check_if_due(self) -> list[ChannelCheck]:
        """The periodic check: runs ``check`` when the last one (in this process) is older than the period."""
        if time.monotonic() - self._last_check < self.period:
            return []
        return self.check()

    def check(self, keys: Iterable[str] = CHANNEL_KEYS, *, announce: bool = False) -> list[ChannelCheck]:
        """Ask Slack about the configured channels of ``keys``, record it, and tell the admins what is news.

        ``announce`` tells them about a wrong channel even when it was already known (an admin just chose it).
        Never raises for Slack's answers; a channel Slack gave no usable answer about is left as it was.
        """
        with self._lock:  # one check at a time in this process (start-up, periodic and admin set may meet)
            self._last_check = time.monotonic()
            with read_only(self.session_factory) as s:
                configured = self.runtime_settings(s)
            wanted: dict[str, list[str]] = {}
            for key in CHANNEL_KEYS:
                channel = configured.get(key)
                if key in set(keys) and channel:
                    wanted.setdefault(channel, [])
            for key in CHANNEL_KEYS:  # every role a checked channel plays, for the notice
                channel = configured.get(key)
                if channel in wanted:
                    wanted[channel].append(key)
            self._learn_name()
            results = [self._ask(channel) for channel in wanted]
            known = [r for r in results if r.is_member is not None]
            if known:
                self._record(known, wanted, announce=announce)
            return results

    def _learn_name(self) -> None:
        """The bot's name, for `/invite @name` (auth.test, once per process)."""
        if self._named:
            return
        try:
            name = self.client.auth_test().get("user")
        except Exception:  # noqa: BLE001 - keep the default name; conversations.info will say what is wrong
            return
        self._named = True
        if isinstance(name, str) and name.strip():
            self.bot_name = escape_mrkdwn(name.strip()[:80])

    def _ask(self, channel: str) -> ChannelCheck:
        """conversations.info for one channel, as a ChannelCheck."""
        try:
            response = self.client.conversations_info(channel=channel)
        except SlackApiError as exc:
            error = str(exc.response.get("error") if exc.response is not None else "") or "unknown_error"
            if error in TOKEN_PROBLEMS:
                log.error(
                    "Slack refuses the bot token (%s): fix SLACK_BOT_TOKEN; nothing can be posted", error
                )
                return ChannelCheck(channel, False, error)
            if error in CHANNEL_PROBLEMS:
                return ChannelCheck(channel, False, error)
            if error == "missing_scope":
                if not self._scope_warned:
                    self._scope_warned = True
                    log.warning(
                        "cannot check channel membership: conversations.info needs the %s scope (add channels:read "
                        "and groups:read to the Slack app)",
                        exc.response.get("needed") if exc.response is not None else "channels:read",
                    )
                return ChannelCheck(channel, None, error)
            log.warning("could not check channel %s: Slack answered %s", channel, error)
            return ChannelCheck(channel, None, error)
        except Exception as exc:  # noqa: BLE001 - no answer (network, timeout): the next check tries again
            log.warning("could not check channel %s: %s", channel, type(exc).__name__)
            return ChannelCheck(channel, None, type(exc).__name__)
        info = response.get("channel") or {}
        if info.get("is_archived"):
            return ChannelCheck(channel, False, "is_archived")
        # NOTE: conversations.info leaves out is_member for a DM; the bot is in its own DMs
        if info.get("is_member", True) is False:
            return ChannelCheck(channel, False, NOT_A_MEMBER)
        return ChannelCheck(channel, True, None)

    def _record(self, results: list[ChannelCheck], roles: dict[str, list[str]], *, announce: bool) -> None:
        """Record the checks in one unit of work, with the admins' direct messages; retried once after a race."""
        for attempt in range(2):
            try:
                with unit_of_work(self.session_factory) as s:
                    now = self.clock.now()
                    notices = []
                    for r in results:
                        assert r.is_member is not None  # only usable answers are recorded
                        # on PostgreSQL, lock the row so that two processes checking at once tell the admins once
                        before = s.get(SlackChannel, r.channel_id, with_for_update=True)
                        was_member = None if before is None else before.is_member
                        changed = record_channel(
                            s, r.channel_id, is_member=r.is_member, problem=r.problem, at=now
                        )
                        if not r.is_member and (changed or announce):
                            log.warning(
                                "cannot post in channel %s (%s): telling the admins", r.channel_id, r.problem
                            )
                            notices.append(
                                admin_notice(
                                    r.channel_id, roles[r.channel_id], r.problem, bot_name=self.bot_name
                                )
                            )
                        elif r.is_member and was_member is False:
                            log.info("channel %s works again", r.channel_id)
                            notices.append(
                                fixed_notice(r.channel_id, roles[r.channel_id], bot_name=self.bot_name)
                            )
                    if notices:
                        self._tell_admins(s, now, notices)
                break
            except (
                IntegrityError
            ):  # another process inserted the same channel's row first: read it and go again
                if attempt:
                    raise
        self.on_commit()

    def _tell_admins(self, s: Session, now: datetime, notices: list[str]) -> None:
        """Queue one direct message per admin (bootstrap ADMIN_USER_IDS and role admins) in this transaction."""
        admins = list(dict.fromkeys([*self.admin_user_ids, *repo.list_users_with_role(s, "admin")]))
        if not admins:
            log.error("no admin to tell: set ADMIN_USER_IDS (%s)", " / ".join(notices))
        text = "\n\n".join(notices)
        for admin in admins:
            repo.add_outbox(s, at=now, op="dm", target=admin, payload={"render": "text", "text": text})
