"""Outbox delivery: every message the bot sends to Slack, claimed from the database, paced to Slack's limits, sent once.

Messages are claimed atomically with a lease (SKIP LOCKED on PostgreSQL), one at a time per contract so a thread
stays in order. Before each Slack call the dispatcher takes a slot from the rate-limit buckets in the database
(storage.rates): per channel for ``chat.postMessage`` plus a workspace-wide cap, per method at its tier for the rest
(SLACK-FACTS F1.14-F1.16, F1.32), shared by every process on the database, so that Slack need not answer 429. It
sleeps until its slot and then calls; a slot further away than the message's lease allows is not taken: the message
goes back to the queue, uncounted, and waits for the next pass. A 429 that comes all the same blocks the call's
buckets for its ``Retry-After`` (for every process), is never counted as a failed attempt and never kills a message.

Edits are coalesced: an edit with a newer edit of the same message queued behind it is skipped (superseded), an
edit of a message not posted yet is skipped (the post shows the state when it is sent), and an edit whose rendering
is what was last sent for that message (``content_hash``) is not sent. After a contract's parent message is posted,
its permalink is fetched (``chat.getPermalink``, a queued ``permalink`` row) into ``Contract.permalink``.

Each post carries Slack message metadata naming its outbox row: when a lease expires after a crash between Slack's
answer and our commit, the next sender looks the message up before posting, so nothing is posted twice.

A message Slack refuses for good (a channel the bot is not in, an archived or unknown channel, a refused token, a
malformed message) is kept as ``dead`` with the messages that cannot go without it (a thread whose parent died),
never retried on its own; the person who caused it and the admins are told by DM what to do, and
``contract-bot outbox retry`` sends them once the cause is fixed. A message that keeps failing otherwise (5xx,
network) is retried with back-off and kept as dead after MAX_ATTEMPTS.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.clock import Clock
from bot.services.views import ContractView, build_contract_view
from storage import dms, rates
from storage import outbox as queue
from storage import repositories as repo
from storage.channels import get_channel, record_channel
from storage.db import SessionFactory, read_only, unit_of_work
from storage.models import Contract, OutboxMessage

log = logging.getLogger(__name__)
METADATA_EVENT = "contract_bot_outbox"
MAX_ATTEMPTS = 12
PERMALINK_ATTEMPTS = 3  # a permalink that cannot be had is left out (links fall back to the workspace URL)
LEASE = timedelta(seconds=60)
LEASE_MARGIN = timedelta(seconds=15)  # a slot is only waited for while the lease has this much left after it
MAX_SLOT_WAIT = 10.0  # seconds: a slot further away sends the message back to the queue (a long Retry-After)
TOKEN_PAUSE = 300.0  # seconds without any delivery from this process after Slack refused the token
LOOKBACK = 1000  # messages searched for an earlier attempt's post after a crash
BATCH = 20  # messages claimed at once: at 1 post per second they go well within the lease

# Slack's answers that mean the bot's token is refused: nothing can be sent anywhere, DMs included
TOKEN_PROBLEMS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "team_access_not_granted",
        "ekm_access_denied",
        "org_login_required",
    }
)
# ... that the channel cannot take the bot's messages (the bot is not in it, it is archived or gone)
CHANNEL_PROBLEMS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
# ... that this message (or this recipient) will never be accepted as it is
MESSAGE_PROBLEMS = frozenset(
    {
        "missing_scope",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "restricted_action",
        "user_not_found",
        "users_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "not_allowed_token_type",
    }
)
PERMANENT = TOKEN_PROBLEMS | CHANNEL_PROBLEMS | MESSAGE_PROBLEMS

# render(payload, view) -> {"text": ..., "blocks": [...]}; view is None for messages about no contract
Renderer = Callable[[dict, ContractView | None], dict]


# ---- Slack's limits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A sustained rate and how many calls may go back to back."""

    per_minute: float
    burst: int


# The limits the outbox keeps to (SLACK-FACTS F1.14, F1.16, F1.32). Slack publishes sustained rates, not bursts:
# the bursts here are smaller than any Slack has been seen to allow, so a call that reaches Slack late (a busy
# host, a slow network) still finds a token.
POST_PER_CHANNEL = Limit(per_minute=60, burst=1)  # "1 per second per channel", bursts unpublished
POST_WORKSPACE = Limit(per_minute=300, burst=20)  # "several hundred per minute" for the workspace
TIER_LIMITS: dict[int, Limit] = {
    2: Limit(per_minute=20, burst=1),
    3: Limit(per_minute=50, burst=2),
    4: Limit(per_minute=100, burst=4),
}
METHOD_TIERS: dict[str, int] = {
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.open": 3,
    "conversations.info": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
    "views.open": 4,
    "views.publish": 4,
    "views.update": 4,
    "users.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "conversations.list": 2,
    "users.list": 2,
}
DEFAULT_TIER = 3


@dataclass(frozen=True)
class SlackLimits:
    """The buckets a Slack call takes a slot from; ``scale`` multiplies every rate (tests run Slack's clock faster)."""

    scale: float = 1.0

    def buckets(self, method: str, channel: str | None = None) -> list[rates.Bucket]:
        """Per channel and workspace-wide for chat.postMessage; per method at its tier for the rest."""
        if method == "chat.postMessage":
            out = [self._bucket(f"{method} *", POST_WORKSPACE)]
            if channel:
                out.append(self._bucket(f"{method} {channel}", POST_PER_CHANNEL))
            return out
        return [self._bucket(method, TIER_LIMITS[METHOD_TIERS.get(method, DEFAULT_TIER)])]

    def _bucket(self, key: str, limit: Limit) -> rates.Bucket:
        return rates.Bucket(key, 60.0 / (limit.per_minute * self.scale), limit.burst)


class SlackPacer:
    """Takes slots for Slack calls from the shared buckets; for callers outside the outbox (a background check).

    ``wait(method)`` sleeps until the call may go and returns True, or returns False at once when the slot is more
    than ``max_wait`` seconds away (nothing is taken). ``limited(method, seconds)`` records a 429's Retry-After.
    """

    def __init__(self, session_factory: SessionFactory, limits: SlackLimits) -> None:
        self.session_factory = session_factory
        self.limits = limits

    def wait(self, method: str, channel: str | None = None, *, max_wait: float = MAX_SLOT_WAIT) -> bool:
        """Sleep until a slot for ``method`` is ours; False (without waiting) when none is within ``max_wait``."""
        with unit_of_work(self.session_factory) as s:
            slot = rates.take_slot(s, self.limits.buckets(method, channel), max_wait=max_wait)
        if slot.taken and slot.wait > 0:
            time.sleep(slot.wait)
        return slot.taken

    def limited(self, method: str, seconds: float, channel: str | None = None) -> None:
        """Slack answered 429 with this Retry-After: no process calls ``method`` (there) before it has passed."""
        with unit_of_work(self.session_factory) as s:
            rates.block(s, self.limits.buckets(method, channel), seconds)


# ---- outcomes -------------------------------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    skipped: int = 0
    waiting: int = 0  # sent back to the queue uncounted: no slot within reach, or Slack answered 429
    rate_limited: int = 0  # 429s Slack answered (each also counted in waiting)


class Deferred(Exception):
    """The message cannot go yet (its thread's parent has not been posted)."""


class Obsolete(Exception):
    """The message no longer applies (a reminder whose condition ended while it waited): it is not sent."""


class Skip(Exception):
    """The message need not be sent (a newer edit supersedes it, nothing changed, its message is not posted yet)."""


class DiesWith(Exception):
    """The message cannot go because the message it needs is dead: it is dead with it."""

    def __init__(self, root: int, error: str) -> None:
        super().__init__(error)
        self.root, self.error = root, error


class Undeliverable(Exception):
    """The message can never be sent as it is queued (a thread message with no thread): it is dead by itself."""


class NoSlot(Exception):
    """No rate-limit slot within reach: the message goes back to the queue, uncounted."""


class RateLimited(NoSlot):
    """Slack answered 429: the call's buckets are blocked for its Retry-After; the message goes back, uncounted."""


class Stopping(Exception):
    """The process is shutting down while waiting for a slot."""


@dataclass
class Plan:
    """What to call for one message, as prepared from the database."""

    kind: str  # "update" | "post" | "dm" | "permalink"
    channel: str | None = None
    thread_ts: str | None = None
    ts: str | None = None  # the message to edit (update) or to link (permalink)
    message: dict = field(default_factory=dict)
    content_hash: str | None = None
    user: str | None = None  # dm: the recipient


def worker_id() -> str:
    """A name for this process in claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def content_hash(message: dict) -> str:
    """A hash of what a message shows (text and blocks; block ids left out, they may change on every edit)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "block_id"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    body = json.dumps(
        {"text": message.get("text"), "blocks": strip(message.get("blocks"))}, sort_keys=True, default=str
    )
    return hashlib.sha256(body.encode()).hexdigest()


def describe(row: OutboxMessage, channel: str | None = None, *, mrkdwn: bool = True) -> str:
    """What an outbox message is, for people: "the parent message of CR-3 in #C1", "a direct message to @U1"."""

    def chan(c: str | None) -> str:
        if not c:
            return "its channel"
        return f"<#{c}>" if mrkdwn else c

    ref = f"CR-{row.contract_id}" if row.contract_id else None
    key = row.message_key or ""
    if row.op == "dm":
        return f"a direct message to <@{row.target}>" if mrkdwn else f"a direct message to {row.target}"
    if row.op == "permalink":
        return "the link of a contract's parent message"
    if row.op == "update" and ref:
        what = (
            "parent message"
            if key == "parent"
            else f"question {key[2:]}"
            if key.startswith("q:")
            else "message"
        )
        return f"an edit of the {what} of {ref}"
    if key == "parent" and ref:
        return f"the parent message of {ref} in {chan(channel or row.target)}"
    if row.target == queue.THREAD and ref:
        return f"{f'question {key[2:]}' if key.startswith('q:') else 'a message'} in the thread of {ref}"
    return f"a message to {chan(channel or row.target)}"


class OutboxDispatcher:
    """Delivers due outbox rows; call ``deliver_due`` from a loop or a scheduler job."""

    def __init__(
        self,
        session_factory: SessionFactory,
        client,
        clock: Clock,
        render: Renderer,
        calendar,  # noqa: ANN001
        *,
        batch: int = BATCH,
        lease: timedelta = LEASE,
        admin_user_ids: Iterable[str] = (),
        recheck: Callable[[Session, dict], dict | None] | None = None,
        slack_rate_scale: float = 1.0,
        bot_name: str = "contract-bot",
    ) -> None:
        self.admin_user_ids = tuple(admin_user_ids)
        self.recheck = recheck  # re-checks a reminder's conditions at delivery (ReminderSweeper.recheck)
        self.session_factory = session_factory
        self.client = client
        self.clock = clock
        self.render = render
        self.calendar = calendar
        self.batch = batch
        self.lease = lease
        self.limits = SlackLimits(slack_rate_scale)
        self.pacer = SlackPacer(session_factory, self.limits)
        self.bot_name = bot_name
        self.worker = worker_id()
        self._lock = threading.Lock()
        self._paused_until = 0.0  # monotonic: Slack refused the token, nothing is tried before then
        self._blocked: set[str] = set()  # bucket keys with no slot within reach in this pass
        self._stop: Callable[[], bool] = lambda: False

    def deliver_due(
        self,
        max_rounds: int = 100,
        stop: Callable[[], bool] | None = None,
    ) -> DeliveryStats:
        """Send what is due now, in rounds until nothing more can go (per-contract order needs several).

        ``stop`` is asked between messages and while waiting for a slot (shutdown): the rest of the batch is handed
        back at once.
        """
        stats = DeliveryStats()
        with self._lock:  # one pass at a time per process; other processes are kept apart by the claim
            if time.monotonic() < self._paused_until:
                return stats
            self._blocked = set()
            self._stop = stop or (lambda: False)
            for _ in range(max_rounds):
                with unit_of_work(self.session_factory) as s:
                    rows = repo.claim_outbox(
                        s, worker=self.worker, now=self.clock.now(), lease=self.lease, limit=self.batch
                    )
                if not rows:
                    break
                progressed = False
                for index, row in enumerate(rows):
                    if self._stop() or time.monotonic() < self._paused_until:
                        self._release([r.id for r in rows[index:] if r.id is not None])
                        return stats
                    outcome = self._deliver_one(row, stats)
                    setattr(stats, outcome, getattr(stats, outcome) + 1)
                    progressed = progressed or outcome in ("sent", "skipped", "dead")
                if not progressed:
                    break
        return stats

    def _release(self, ids: list[int]) -> None:
        """Give back claimed, unsent messages so another sender (or this one later) takes them at once, uncounted."""
        with unit_of_work(self.session_factory) as s:
            for message in s.execute(select(OutboxMessage).where(col(OutboxMessage.id).in_(ids))).scalars():
                if message.claimed_by == self.worker and message.status == "pending":
                    message.lease_until = None
                    message.attempts = max(message.attempts - 1, 0)  # this claim sent nothing
                    s.add(message)

    # ---- one message ------------------------------------------------------------------------------------

    def _deliver_one(self, row: OutboxMessage, stats: DeliveryStats) -> str:
        assert row.id is not None  # a claimed row
        plan: Plan | None = None
        try:
            with read_only(self.session_factory) as s:
                plan = self._prepare(s, row)
            result_ts = self._send(row, plan)
        except (NoSlot, Stopping) as exc:
            stats.rate_limited += isinstance(exc, RateLimited)
            self._release([row.id])
            return "waiting"
        except Undeliverable as exc:
            return self._dead(row, str(exc))
        except Skip as why:
            return self._finish(row, "skipped", str(why))
        except Obsolete:
            return self._finish(row, "skipped", "no longer applied when sent")
        except DiesWith as dep:
            return self._dead(row, dep.error, depends_on=dep.root)
        except Deferred:
            return self._retry(row, None, delay=timedelta(seconds=2), count=False)
        except SlackApiError as exc:
            error = str(exc.response.get("error") if exc.response is not None else exc) or "unknown_error"
            status = exc.response.status_code if exc.response is not None else None
            if row.op == "permalink":
                return self._permalink_failed(row, error)
            if error in PERMANENT:
                return self._refused(row, plan, error, exc)
            return self._retry(row, f"Slack error {status}: {error}")
        except Exception as exc:  # noqa: BLE001 - connection errors and the like: back off and retry
            log.warning("outbox %s: delivery failed: %s", row.id, exc)
            if row.op == "permalink":
                return self._permalink_failed(row, f"{type(exc).__name__}: {exc}")
            return self._retry(row, f"{type(exc).__name__}: {exc}")
        assert plan is not None  # sent: it was prepared
        with unit_of_work(self.session_factory) as s:
            self._record_sent(s, row, plan, result_ts)
        return "sent"

    def _prepare(self, s: Session, row: OutboxMessage) -> Plan:
        """Decide what to call (reads only). Raises Skip, Obsolete, DiesWith or Deferred when nothing is to be sent."""
        payload = json.loads(row.payload)
        if row.op == "permalink":
            return Plan("permalink", channel=row.target, ts=payload.get("ts"))
        if row.op == "update":
            # NOTE: read the newer edits before the state that is rendered: on PostgreSQL each statement sees what
            # was committed before it, so an edit seen here has its change in the rendering below.
            newer = queue.newer_pending_update(s, row)
            if newer is not None:
                raise Skip(f"superseded by #{newer}, a newer edit of the same message")
        if self.recheck is not None and payload.get("parts"):
            payload = self.recheck(s, payload)
            if payload is None:
                raise Obsolete()
        contract = repo.get_contract(s, row.contract_id) if row.contract_id else None
        plan = Plan("post", channel=row.target)
        if row.op == "dm":
            plan = Plan("dm", channel=dms.get_dm_channel(s, row.target), user=row.target)
        elif row.op == "update":
            ts = self._message_ts(s, contract, row.message_key) if contract else None
            if ts is None:
                self._unposted(s, row, contract)
            channel = (
                contract.channel_id if contract is not None and row.target == queue.THREAD else row.target
            )
            plan = Plan("update", channel=channel, ts=ts)
        elif row.target == queue.THREAD:
            if contract is None:
                raise Undeliverable("a thread message about no contract")
            if contract.parent_ts is None:
                self._parent_missing(s, row, contract)
            plan = Plan("post", channel=contract.channel_id, thread_ts=contract.parent_ts)
        elif row.message_key == "parent" and contract is not None and contract.parent_ts:
            # already posted by an earlier attempt whose bookkeeping committed: turn into an update
            plan = Plan("update", channel=contract.channel_id or row.target, ts=contract.parent_ts)
        # a contract's messages (its parent, its questions) show neither its next reminders, its vendor's screening
        # nor its reviewers (`show` does): six queries a message, under load a third of the process's time
        view = (
            build_contract_view(
                s,
                contract,
                self.calendar.local_date(self.clock.now()),
                with_reminders=False,
                with_vendor=False,
                with_reviewers=False,
            )
            if contract
            else None
        )
        plan.message = self.render(payload, view)
        plan.content_hash = content_hash(plan.message)
        if plan.kind == "update" and row.contract_id is not None and row.message_key:
            if plan.content_hash == queue.last_sent_hash(s, row.contract_id, row.message_key):
                raise Skip("unchanged: the message already shows this")
        return plan

    def _unposted(self, s: Session, row: OutboxMessage, contract: Contract | None) -> None:
        """An edit of a message that is not in Slack: redundant, or dead with the post that died. Always raises."""
        if contract is None or contract.id is None or not row.message_key:
            raise Skip("no message to edit")
        post = queue.message_post(s, contract.id, row.message_key)
        if post is not None and post.status == "dead":
            raise DiesWith(
                queue.root_of(post) or 0, f"not sent: its message was never posted (#{post.id} is dead)"
            )
        if row.message_key != "parent" and contract.parent_ts is None:
            self._parent_missing(s, row, contract)
        raise Skip("superseded: the message is not posted yet, and its post shows the state when it is sent")

    @staticmethod
    def _parent_missing(s: Session, row: OutboxMessage, contract: Contract) -> None:
        """A thread message whose parent is not posted: wait for it, or die with it. Always raises."""
        assert contract.id is not None  # a stored contract
        parent = queue.message_post(s, contract.id, "parent")
        if parent is None:
            raise Undeliverable(f"CR-{contract.id} has no parent message to post a thread message under")
        if parent.status == "dead":
            raise DiesWith(
                queue.root_of(parent) or 0, f"not sent: the thread's parent message #{parent.id} is dead"
            )
        raise Deferred()

    @staticmethod
    def _message_ts(s: Session, contract: Contract, key: str | None) -> str | None:
        if key == "parent":
            return contract.parent_ts
        if key and key.startswith("q:"):
            assert contract.id is not None  # a stored contract
            q = repo.get_question(s, contract.id, key[2:])
            return q.message_ts if q else None
        return None

    # ---- Slack calls, paced -----------------------------------------------------------------------------

    def _call(self, row: OutboxMessage, method: str, channel: str | None, call: Callable[[], Any]) -> Any:
        """Take a slot for ``method`` (and ``channel``), wait for it, and make the call; a 429 blocks the buckets."""
        buckets = self.limits.buckets(method, channel)
        if any(b.key in self._blocked for b in buckets):
            raise NoSlot()
        lease_left = (
            (row.lease_until - self.clock.now() - LEASE_MARGIN).total_seconds()
            if row.lease_until
            else MAX_SLOT_WAIT
        )
        with unit_of_work(self.session_factory) as s:
            slot = rates.take_slot(s, buckets, max_wait=max(min(MAX_SLOT_WAIT, lease_left), 0.0))
        if not slot.taken:
            self._blocked.add(slot.limited_by or buckets[0].key)
            raise NoSlot()
        if slot.wait > 0:
            self._sleep(slot.wait)
            # another process may have been answered 429 while this one waited for its slot
            with read_only(self.session_factory) as s:
                if rates.blocked_for(s, [b.key for b in buckets]) > 0:
                    self._blocked.update(b.key for b in buckets)
                    raise NoSlot()
        try:
            return call()
        except SlackApiError as exc:
            if exc.response is None or exc.response.status_code != 429:
                raise
            retry_after = _retry_after(exc)
            # NOTE: Slack's block covers the method for the workspace (F1.15); for a post, this channel too
            with unit_of_work(self.session_factory) as s:
                rates.block(s, buckets, retry_after)
            self._blocked.update(b.key for b in buckets)
            log.warning(
                "Slack answered 429 to %s (outbox %s): no process calls it for %.0f s; the message waits, uncounted",
                method,
                row.id,
                retry_after,
            )
            raise RateLimited() from exc

    def _sleep(self, seconds: float) -> None:
        """Wait for a slot; the process's shutdown interrupts it."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            if self._stop():
                raise Stopping()
            time.sleep(min(left, 0.05))

    def _send(self, row: OutboxMessage, plan: Plan) -> str | None:
        if plan.kind == "permalink":
            response = self._call(
                row,
                "chat.getPermalink",
                None,
                lambda: self.client.chat_getPermalink(channel=plan.channel, message_ts=plan.ts),
            )
            return response.get("permalink")
        if plan.kind == "update":
            self._call(
                row,
                "chat.update",
                None,
                lambda: self.client.chat_update(
                    channel=plan.channel,
                    ts=plan.ts,
                    text=plan.message["text"],
                    blocks=plan.message.get("blocks"),
                ),
            )
            return plan.ts
        if plan.kind == "dm" and plan.channel is None:
            plan.channel = self._open_dm(row, plan.user or row.target)
        if row.attempts > 1:
            found = self._find_posted(row, plan.channel, plan.thread_ts)
            if found:
                return found
        response = self._call(
            row,
            "chat.postMessage",
            plan.channel,
            lambda: self.client.chat_postMessage(
                channel=plan.channel,
                thread_ts=plan.thread_ts,
                text=plan.message["text"],
                blocks=plan.message.get("blocks"),
                unfurl_links=False,
                unfurl_media=False,
                metadata=_metadata(row),
            ),
        )
        return response["ts"]

    def _open_dm(self, row: OutboxMessage, user: str) -> str:
        """The DM channel with ``user``: conversations.open once, then remembered in the database for every process."""
        response = self._call(
            row, "conversations.open", None, lambda: self.client.conversations_open(users=user)
        )
        channel = response["channel"]["id"]
        try:
            with unit_of_work(self.session_factory) as s:
                dms.record_dm_channel(s, user, channel, at=self.clock.now())
        except IntegrityError:  # another process stored it first: the same channel
            pass
        return channel

    def _find_posted(self, row: OutboxMessage, channel: str | None, thread_ts: str | None) -> str | None:
        """After a crash, find a message an earlier attempt posted (by its metadata) instead of posting again.

        NOTE: no ``oldest`` filter: our clock and Slack's ``ts`` need not agree (a test double's ``ts`` are not
        wall-clock times). The newest LOOKBACK messages of the channel (or the whole thread) are searched; a
        lease expires a minute after the crash, so the earlier attempt's message is among them.
        """
        method = "conversations.replies" if thread_ts else "conversations.history"
        cursor, seen = None, 0
        while seen < LOOKBACK:
            kwargs: dict[str, Any] = {"channel": channel, "limit": 200, "include_all_metadata": True}
            if cursor:
                kwargs["cursor"] = cursor
            if thread_ts:
                read = functools.partial(self.client.conversations_replies, ts=thread_ts, **kwargs)
            else:
                read = functools.partial(self.client.conversations_history, **kwargs)
            response = self._call(row, method, None, read)
            messages = response.get("messages", [])
            seen += len(messages)
            for message in messages:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == METADATA_EVENT and str(payload.get("outbox_id")) == str(row.id):
                    return message.get("ts")
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not messages:
                break
        return None

    # ---- bookkeeping ------------------------------------------------------------------------------------

    def _record_sent(self, s: Session, row: OutboxMessage, plan: Plan, ts: str | None) -> None:
        fresh = s.get(OutboxMessage, row.id)
        assert fresh is not None  # claimed by this worker: the row exists
        fresh.status, fresh.sent_at, fresh.lease_until = "sent", self.clock.now(), None
        if row.op == "permalink":
            contract_id = json.loads(row.payload).get("contract_id")
            contract = repo.get_contract(s, int(contract_id), for_update=True) if contract_id else None
            if contract is not None and ts:
                contract.permalink = ts
                s.add(contract)
            s.add(fresh)
            return
        fresh.result_ts, fresh.content_hash = ts, plan.content_hash
        s.add(fresh)
        if plan.channel and plan.kind in ("post", "update"):
            known = get_channel(s, plan.channel)
            if known is not None and not known.is_member and known.problem in CHANNEL_PROBLEMS:
                # Slack took a message there: whatever was wrong with the channel is fixed
                record_channel(s, plan.channel, is_member=True, problem=None, at=self.clock.now())
        if row.contract_id and row.op == "post" and ts:
            contract = repo.get_contract(s, row.contract_id, for_update=True)
            if row.message_key == "parent":
                assert contract is not None  # the parent message was prepared from it
                if contract.parent_ts is None:
                    contract.parent_ts, contract.channel_id = ts, plan.channel
                    s.add(contract)
                    if contract.permalink is None:
                        # its own row, about no contract: the thread does not wait for the link
                        repo.add_outbox(
                            s,
                            at=self.clock.now(),
                            op="permalink",
                            target=plan.channel or row.target,
                            message_key="parent",
                            payload={"contract_id": row.contract_id, "ts": ts},
                        )
            elif row.message_key and row.message_key.startswith("q:"):
                q = repo.get_question(s, row.contract_id, row.message_key[2:])
                if q is not None and q.message_ts is None:
                    q.message_ts = ts
                    s.add(q)

    def _finish(self, row: OutboxMessage, status: str, why: str) -> str:
        """Close a message without sending it (skipped), saying why."""
        with unit_of_work(self.session_factory) as s:
            fresh = s.get(OutboxMessage, row.id)
            assert fresh is not None  # claimed by this worker: the row exists
            fresh.status, fresh.lease_until, fresh.last_error = status, None, why
            s.add(fresh)
        return status

    def _permalink_failed(self, row: OutboxMessage, error: str) -> str:
        """A permalink is a nicety: retried a few times, then left out (links use the workspace URL)."""
        if row.attempts >= PERMALINK_ATTEMPTS or error in PERMANENT:
            log.warning(
                "outbox %s: no permalink for the parent message (%s); links use the workspace URL",
                row.id,
                error,
            )
            return self._finish(row, "skipped", f"no permalink: {error}")
        return self._retry(row, f"chat.getPermalink: {error}")

    def _retry(
        self, row: OutboxMessage, error: str | None, *, delay: timedelta | None = None, count: bool = True
    ) -> str:
        with unit_of_work(self.session_factory) as s:
            fresh = s.get(OutboxMessage, row.id)
            assert fresh is not None  # claimed by this worker: the row exists
            if count and fresh.attempts >= MAX_ATTEMPTS:
                return self._dead(row, error or "too many attempts", session=s)
            backoff = delay or timedelta(seconds=min(2 ** max(fresh.attempts - 1, 0), 300))
            fresh.next_attempt_at = self.clock.now() + backoff
            fresh.lease_until = None
            if not count:
                fresh.attempts = max(fresh.attempts - 1, 0)
            if error:
                fresh.last_error = error
            s.add(fresh)
        return "retried" if count else "deferred"

    # ---- refused for good -----------------------------------------------------------------------------------

    def _refused(self, row: OutboxMessage, plan: Plan | None, error: str, exc: SlackApiError) -> str:
        """Slack refused the message for good: dead with what depends on it, the channel recorded, people told."""
        channel = plan.channel if plan is not None else None
        if error in TOKEN_PROBLEMS:
            self._paused_until = time.monotonic() + TOKEN_PAUSE
            log.error(
                "Slack refuses the bot's token (%s): nothing can be sent, direct messages included. Give the bot a "
                "valid SLACK_BOT_TOKEN and restart it, then run `contract-bot outbox retry`. Outbox message %s (%s) "
                "is kept as dead; this process tries again in %.0f s.",
                error,
                row.id,
                describe(row, channel, mrkdwn=False),
                TOKEN_PAUSE,
            )
        elif error == "missing_scope":
            needed = exc.response.get("needed") if exc.response is not None else None
            log.error(
                "Slack refused outbox message %s (%s): the app lacks the scope %s; add it to the Slack app and "
                "reinstall it, then run `contract-bot outbox retry`",
                row.id,
                describe(row, channel, mrkdwn=False),
                needed or "(not named)",
            )
        # a channel or token refused: the rest of the thread cannot go either; a parent that cannot be posted takes
        # its thread with it; a post that cannot be posted takes its edits; an edit takes nothing
        whole_thread = error in CHANNEL_PROBLEMS | TOKEN_PROBLEMS or (
            row.op == "post" and row.message_key == "parent"
        )
        return self._dead(
            row,
            f"Slack refused it: {error}",
            error=error,
            channel=channel,
            whole_thread=whole_thread,
            notify=error not in TOKEN_PROBLEMS,
        )

    def _dead(
        self,
        row: OutboxMessage,
        message: str,
        session: Session | None = None,
        *,
        depends_on: int | None = None,
        error: str | None = None,
        channel: str | None = None,
        whole_thread: bool = False,
        notify: bool = True,
    ) -> str:
        if depends_on is None:
            log.error(
                "outbox %s (%s to %s) failed for good and is kept as dead: %s",
                row.id,
                row.op,
                row.target,
                message,
            )

        def mark(s: Session) -> None:
            now = self.clock.now()
            fresh = s.get(OutboxMessage, row.id)
            assert fresh is not None  # claimed by this worker: the row exists
            queue.mark_dead(fresh, message, depends_on=depends_on or None, at=now)
            s.add(fresh)
            if depends_on:
                return  # it died with another message, whose notice covers it
            dependants = (
                []
                if row.op == "update" and not whole_thread
                else queue.mark_dependants_dead(
                    s, fresh, whole_thread=whole_thread, error=error or message, at=now
                )
            )
            news = True
            if error in CHANNEL_PROBLEMS and channel and not channel.startswith("D"):
                news = record_channel(s, channel, is_member=False, problem=error, at=now)
            if row.op == "dm" and error in CHANNEL_PROBLEMS | MESSAGE_PROBLEMS:
                dms.forget_dm_channel(s, row.target)  # a stale DM channel is opened afresh on a retry
            if notify:
                self._report_dead(s, fresh, message, error, channel, dependants, tell_admins=news)

        if session is not None:
            mark(session)
        else:
            with unit_of_work(self.session_factory) as s:
                mark(s)
        return "dead"

    def _report_dead(
        self,
        s: Session,
        row: OutboxMessage,
        message: str,
        error: str | None,
        channel: str | None,
        dependants: list[int],
        *,
        tell_admins: bool,
    ) -> None:
        """Tell the admins and the person who caused it by DM (through the outbox, in this transaction)."""
        payload = json.loads(row.payload) if row.payload else {}
        if payload.get("dead_notice"):
            return  # a notice about a dead message that died itself: the log line is all that is left
        now = self.clock.now()
        what = describe(row, channel)
        held = f", with {len(dependants)} message(s) that need it," if dependants else ""
        total = queue.count_dead_roots(s)
        if error in CHANNEL_PROBLEMS and row.op != "dm":
            where = f"<#{channel}>" if channel else "its channel"
            cause = {
                "not_in_channel": f"the bot is not a member of {where}",
                "is_archived": f"{where} is archived",
                "channel_not_found": f"Slack cannot find {where} (deleted, or private and the bot is not in it)",
            }[error]
            fix = (
                f"type `/invite @{self.bot_name}` in {where}, or set another channel with "
                "`/contract admin set review_channel #channel` (or `manager_channel`)"
            )
            if error == "is_archived":
                fix = f"unarchive {where} or set another channel with `/contract admin set review_channel #channel`"
            admin_text = (
                f":warning: {self.bot_name} could not deliver outbox message #{row.id} ({what}): Slack answered "
                f"`{error}`: {cause}. It was not sent{held} and is kept as dead. To fix it, {fix}; then run "
                f"`contract-bot outbox retry` to send what was held. `contract-bot outbox dead` lists the "
                f"{total} dead message(s)."
            )
        else:
            admin_text = (
                f":warning: {self.bot_name} could not deliver outbox message #{row.id} ({what}) after "
                f"{row.attempts} attempt(s): {message}. It was not sent{held} and is kept as dead. "
                f"{total} dead message(s) in all (`contract-bot outbox dead`); once the cause is fixed, "
                f"`contract-bot outbox retry {row.id}` sends it."
            )
        admins = list(dict.fromkeys([*self.admin_user_ids, *repo.list_users_with_role(s, "admin")]))
        recipients: dict[str, str] = {}
        contract = repo.get_contract(s, row.contract_id) if row.contract_id else None
        if contract is not None and row.op != "dm":
            ref = f"CR-{contract.id}"
            lost = (
                "its review thread"
                if row.message_key == "parent" or dependants
                else "a message of its thread"
            )
            recipients[contract.filed_by] = (
                f":warning: {ref} ({contract.vendor} / {contract.product}) could not be posted in Slack: "
                f"{('Slack answered `' + error + '`') if error else message}, so {lost} is not there yet. "
                "The admins have been told how to fix it; the messages are kept and will be sent once it is fixed."
            )
        if tell_admins:  # a channel's problem that is already known was told before
            for admin in admins:
                recipients[admin] = admin_text
        if tell_admins and not admins:
            log.error("no admin to tell that outbox message %s is dead: set ADMIN_USER_IDS", row.id)
        for user, text in recipients.items():
            repo.add_outbox(
                s, at=now, op="dm", target=user, payload={"render": "text", "text": text, "dead_notice": True}
            )


def _metadata(row: OutboxMessage) -> dict:
    """The message metadata of a post: its outbox row, and what the payload asks to carry (audit checkpoints)."""
    asked = json.loads(row.payload).get("metadata") or {}
    return {
        "event_type": METADATA_EVENT,
        "event_payload": {**(asked.get("event_payload") or {}), "outbox_id": row.id},
    }


def _retry_after(exc: SlackApiError) -> float:
    """The Retry-After of a 429, in seconds (1 when Slack gave none)."""
    headers = exc.response.headers or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is None:
        return 1.0
    try:
        return max(float(raw), 0.0)
    except (TypeError, ValueError):
        return 1.0
