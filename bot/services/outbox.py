"""Outbox delivery: every message the bot sends to Slack, claimed from the database and sent once.

Messages are claimed atomically with a lease (SKIP LOCKED on PostgreSQL), one at a time per contract so
a thread stays in order, and sent with slack-sdk's retry handlers. Each post carries Slack message
metadata naming its outbox row: when a lease expires after a crash between Slack's answer and our commit,
the next sender looks the message up before posting, so nothing is posted twice. A message that keeps
failing is kept as ``dead`` and reported, never dropped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlmodel import Session, col

from bot.clock import Clock
from bot.services.views import ContractView, build_contract_view
from storage import repositories as repo
from storage.db import SessionFactory, read_only, unit_of_work
from storage.models import Contract, OutboxMessage

log = logging.getLogger(__name__)
METADATA_EVENT = "contract_bot_outbox"
MAX_ATTEMPTS = 12
LEASE = timedelta(seconds=60)
LOOKBACK = 1000  # messages searched for an earlier attempt's post after a crash

# render(payload, view) -> {"text": ..., "blocks": [...]}; view is None for messages about no contract
Renderer = Callable[[dict, ContractView | None], dict]


@dataclass
class DeliveryStats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    skipped: int = 0


class Deferred(Exception):
    """The message cannot go yet (its thread's parent has not been posted)."""


class Obsolete(Exception):
    """The message no longer applies (a reminder whose condition ended while it waited): it is not sent."""


def worker_id() -> str:
    """A name for this process in claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


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
        batch: int = 50,
        lease: timedelta = LEASE,
        admin_user_ids: Iterable[str] = (),
        recheck: Callable[[Session, dict], dict | None] | None = None,
    ) -> None:
        self.admin_user_ids = tuple(admin_user_ids)
        self.recheck = recheck  # re-checks a reminder's conditions at delivery (ReminderSweeper.recheck)
        self._blocked_until: dict[str, float] = {}  # Web API method -> monotonic time its Retry-After ends
        self.session_factory = session_factory
        self.client = client
        self.clock = clock
        self.render = render
        self.calendar = calendar
        self.batch = batch
        self.lease = lease
        self.worker = worker_id()
        self._lock = threading.Lock()

    def deliver_due(
        self,
        max_rounds: int = 100,
        stop: Callable[[], bool] | None = None,
        pace: Callable[[], object] | None = None,
    ) -> DeliveryStats:
        """Send what is due now, in rounds until nothing more can go (per-contract order needs several).

        ``stop`` is asked between messages (shutdown): the rest of the batch is handed back at once. ``pace`` is
        called before each message (the background loop lets acknowledgements go first).
        """
        stats = DeliveryStats()
        with self._lock:  # one pass at a time per process; other processes are kept apart by the claim
            for _ in range(max_rounds):
                with unit_of_work(self.session_factory) as s:
                    rows = repo.claim_outbox(
                        s, worker=self.worker, now=self.clock.now(), lease=self.lease, limit=self.batch
                    )
                if not rows:
                    break
                progressed = False
                for index, row in enumerate(rows):
                    if stop is not None and stop():
                        self._release([r.id for r in rows[index:] if r.id is not None])
                        return stats
                    if pace is not None:
                        pace()
                    outcome = self._deliver_one(row)
                    setattr(stats, outcome, getattr(stats, outcome) + 1)
                    progressed = progressed or outcome in ("sent", "skipped", "dead")
                if not progressed:
                    break
        return stats

    def _release(self, ids: list[int]) -> None:
        """Give back claimed, unsent messages so another sender (or this one restarted) takes them at once."""
        with unit_of_work(self.session_factory) as s:
            for message in s.execute(select(OutboxMessage).where(col(OutboxMessage.id).in_(ids))).scalars():
                if message.claimed_by == self.worker and message.status == "pending":
                    message.lease_until = None
                    message.attempts = max(message.attempts - 1, 0)  # this claim sent nothing
                    s.add(message)

    # ---- one message ------------------------------------------------------------------------------------

    def _deliver_one(self, row: OutboxMessage) -> str:
        try:
            with read_only(self.session_factory) as s:
                channel, thread_ts, ts_to_update, message = self._prepare(s, row)
            result_ts = self._send(row, channel, thread_ts, ts_to_update, message)
        except Deferred:
            return self._retry(row, None, delay=timedelta(seconds=2), count=False)
        except Obsolete:
            with unit_of_work(self.session_factory) as s:
                fresh = s.get(OutboxMessage, row.id)
                assert fresh is not None  # claimed by this worker: the row exists
                fresh.status, fresh.lease_until, fresh.last_error = (
                    "skipped",
                    None,
                    "no longer applied when sent",
                )
                s.add(fresh)
            return "skipped"
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else None
            error = exc.response.get("error") if exc.response is not None else str(exc)
            if status == 429:
                retry_after = _retry_after(exc)
                # NOTE: the limit is per method (F1.15): nothing of this method goes out of this process before
                # Retry-After has passed, in real time whatever the injected clock says.
                method = _method_of(exc)
                self._blocked_until[method] = max(
                    self._blocked_until.get(method, 0.0), time.monotonic() + retry_after
                )
                return self._retry(
                    row, f"rate limited ({error})", delay=timedelta(seconds=max(retry_after, 1))
                )
            if error in (
                "channel_not_found",
                "not_in_channel",
                "invalid_auth",
                "account_inactive",
                "is_archived",
                "message_not_found",
                "invalid_blocks",
                "msg_too_long",
                "no_text",
            ):
                return self._dead(row, f"Slack refused it: {error}")
            return self._retry(row, f"Slack error {status}: {error}")
        except Exception as exc:  # noqa: BLE001 - connection errors and the like: back off and retry
            log.warning("outbox %s: delivery failed: %s", row.id, exc)
            return self._retry(row, f"{type(exc).__name__}: {exc}")
        with unit_of_work(self.session_factory) as s:
            self._record_sent(s, row, channel, result_ts)
        return "sent"

    def _prepare(self, s: Session, row: OutboxMessage) -> tuple[str | None, str | None, str | None, dict]:
        payload = json.loads(row.payload)
        if self.recheck is not None and payload.get("parts"):
            payload = self.recheck(s, payload)
            if payload is None:
                raise Obsolete()
        contract = repo.get_contract(s, row.contract_id) if row.contract_id else None
        view = (
            build_contract_view(s, contract, self.calendar.local_date(self.clock.now())) if contract else None
        )
        message = self.render(payload, view)
        channel: str | None = row.target
        thread_ts, ts_to_update = None, None
        if row.target == "thread":
            if contract is None:
                raise RuntimeError("thread message without a contract")
            channel = contract.channel_id
            if row.op == "update":
                ts_to_update = self._message_ts(s, contract, row.message_key)
                if ts_to_update is None:
                    raise Deferred()
            elif row.message_key != "parent":
                if contract.parent_ts is None:
                    raise Deferred()
                thread_ts = contract.parent_ts
        elif row.op == "update":
            ts_to_update = self._message_ts(s, contract, row.message_key) if contract else None
            if ts_to_update is None:
                raise Deferred()
        if row.message_key == "parent" and row.op == "post" and contract is not None and contract.parent_ts:
            # already posted by an earlier attempt whose bookkeeping committed: turn into an update
            ts_to_update = contract.parent_ts
        return channel, thread_ts, ts_to_update, message

    @staticmethod
    def _message_ts(s: Session, contract: Contract, key: str | None) -> str | None:
        if key == "parent":
            return contract.parent_ts
        if key and key.startswith("q:"):
            assert contract.id is not None  # a stored contract
            q = repo.get_question(s, contract.id, key[2:])
            return q.message_ts if q else None
        return None

    def _pace(self, method: str) -> None:
        """Wait out a Retry-After this process was given for ``method`` (our own delivery thread, never Bolt's)."""
        wait = self._blocked_until.get(method, 0.0) - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def _send(
        self,
        row: OutboxMessage,
        channel: str | None,
        thread_ts: str | None,
        ts_to_update: str | None,
        message: dict,
    ) -> str | None:
        if ts_to_update:
            self._pace("chat.update")
            self.client.chat_update(
                channel=channel, ts=ts_to_update, text=message["text"], blocks=message.get("blocks")
            )
            return ts_to_update
        if row.op == "dm":
            self._pace("conversations.open")
            channel = self.client.conversations_open(users=row.target)["channel"]["id"]
        if row.attempts > 1:
            found = self._find_posted(row, channel, thread_ts)
            if found:
                return found
        self._pace("chat.postMessage")
        response = self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=message["text"],
            blocks=message.get("blocks"),
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_id": row.id}},
        )
        return response["ts"]

    def _find_posted(self, row: OutboxMessage, channel: str | None, thread_ts: str | None) -> str | None:
        """After a crash, find a message an earlier attempt posted (by its metadata) instead of posting again.

        NOTE: no ``oldest`` filter: our clock and Slack's ``ts`` need not agree (a test double's ``ts`` are not
        wall-clock times). The newest LOOKBACK messages of the channel (or the whole thread) are searched; a
        lease expires a minute after the crash, so the earlier attempt's message is among them.
        """
        method = "conversations.replies" if thread_ts else "conversations.history"
        cursor, seen = None, 0
        while seen < LOOKBACK:
            kwargs = {"channel": channel, "limit": 200, "include_all_metadata": True}
            if cursor:
                kwargs["cursor"] = cursor
            self._pace(method)
            if thread_ts:
                response = self.client.conversations_replies(ts=thread_ts, **kwargs)
            else:
                response = self.client.conversations_history(**kwargs)
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

    def _record_sent(self, s: Session, row: OutboxMessage, channel: str | None, ts: str | None) -> None:
        fresh = s.get(OutboxMessage, row.id)
        assert fresh is not None  # claimed by this worker: the row exists
        fresh.status, fresh.sent_at, fresh.result_ts, fresh.lease_until = "sent", self.clock.now(), ts, None
        s.add(fresh)
        if row.contract_id and row.op == "post" and ts:
            contract = repo.get_contract(s, row.contract_id, for_update=True)
            if row.message_key == "parent":
                assert contract is not None  # the parent message was prepared from it
                if contract.parent_ts is None:
                    contract.parent_ts, contract.channel_id = ts, channel
                    s.add(contract)
            elif row.message_key and row.message_key.startswith("q:"):
                q = repo.get_question(s, row.contract_id, row.message_key[2:])
                if q is not None and q.message_ts is None:
                    q.message_ts = ts
                    s.add(q)

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

    def _report_dead(self, s: Session, row: OutboxMessage, error: str) -> None:
        """Tell the admins by DM (through the outbox, in the same transaction) that a message was given up on."""
        payload = json.loads(row.payload) if row.payload else {}
        if payload.get("dead_notice"):
            return  # a notice about a dead message that died itself: the log line is all that is left
        admins = list(dict.fromkeys([*self.admin_user_ids, *repo.list_users_with_role(s, "admin")]))
        what = f"{row.op} to {'the thread of CR-' + str(row.contract_id) if row.target == 'thread' else row.target}"
        text = (
            f":warning: contract-bot could not deliver outbox message #{row.id} ({what}) after "
            f"{row.attempts} attempt(s): {error}. It is kept as dead and was not sent. "
            f"{repo.count_outbox(s, 'dead')} dead message(s) in all; fix the cause (e.g. invite the bot to the "
            "channel or correct the channel setting) and re-file or repeat the action."
        )
        for admin in admins:
            repo.add_outbox(
                s,
                at=self.clock.now(),
                op="dm",
                target=admin,
                payload={"render": "text", "text": text, "dead_notice": True},
            )

    def _dead(self, row: OutboxMessage, error: str, session: Session | None = None) -> str:
        log.error(
            "outbox %s (%s to %s) failed for good and is kept as dead: %s", row.id, row.op, row.target, error
        )

        def mark(s: Session) -> None:
            fresh = s.get(OutboxMessage, row.id)
            assert fresh is not None  # claimed by this worker: the row exists
            fresh.status, fresh.last_error, fresh.lease_until = "dead", error, None
            s.add(fresh)
            self._report_dead(s, fresh, error)

        if session is not None:
            mark(session)
        else:
            with unit_of_work(self.session_factory) as s:
                mark(s)
        return "dead"


def _retry_after(exc: SlackApiError) -> float:
    """The Retry-After of a 429, in seconds (at least 1)."""
    headers = exc.response.headers or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is None:
        return 1.0
    try:
        return max(float(raw), 1.0)
    except (TypeError, ValueError):
        return 1.0


def _method_of(exc: SlackApiError) -> str:
    """The Web API method a SlackApiError came from ("chat.postMessage")."""
    url = getattr(exc.response, "api_url", "") or ""
    return url.rstrip("/").rsplit("/", 1)[-1] or "unknown"
