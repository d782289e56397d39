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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.clock import Clock
from bot.services.views import ContractView, build_contract_view
from storage import repositories as repo
from storage.db import SessionFactory, unit_of_work
from storage.models import Contract, OutboxMessage

log = logging.getLogger(__name__)
METADATA_EVENT = "contract_bot_outbox"
MAX_ATTEMPTS = 12
LEASE = timedelta(seconds=60)

# render(payload, view) -> {"text": ..., "blocks": [...]}; view is None for messages about no contract
Renderer = Callable[[dict, ContractView | None], dict]


@dataclass
class DeliveryStats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0


class Deferred(Exception):
    """The message cannot go yet (its thread's parent has not been posted)."""


def worker_id() -> str:
    """A name for this process in claims."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class OutboxDispatcher:
    """Delivers due outbox rows; call ``deliver_due`` from a loop or a scheduler job."""

    def __init__(self, session_factory: SessionFactory, client, clock: Clock, render: Renderer, calendar,  # noqa: ANN001
                 *, batch: int = 50, lease: timedelta = LEASE) -> None:
        self.session_factory = session_factory
        self.client = client
        self.clock = clock
        self.render = render
        self.calendar = calendar
        self.batch = batch
        self.lease = lease
        self.worker = worker_id()
        self._lock = threading.Lock()

    def deliver_due(self, max_rounds: int = 100) -> DeliveryStats:
        """Send what is due now, in rounds until nothing more can go (per-contract order needs several)."""
        stats = DeliveryStats()
        with self._lock:  # one pass at a time per process; other processes are kept apart by the claim
            for _ in range(max_rounds):
                with unit_of_work(self.session_factory) as s:
                    rows = repo.claim_outbox(s, worker=self.worker, now=self.clock.now(), lease=self.lease,
                                             limit=self.batch)
                if not rows:
                    break
                progressed = False
                for row in rows:
                    outcome = self._deliver_one(row)
                    setattr(stats, outcome, getattr(stats, outcome) + 1)
                    progressed = progressed or outcome == "sent"
                if not progressed:
                    break
        return stats

    # ---- one message ------------------------------------------------------------------------------------

    def _deliver_one(self, row: OutboxMessage) -> str:
        try:
            with unit_of_work(self.session_factory) as s:
                channel, thread_ts, ts_to_update, message = self._prepare(s, row)
            result_ts = self._send(row, channel, thread_ts, ts_to_update, message)
        except Deferred:
            return self._retry(row, None, delay=timedelta(seconds=2), count=False)
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else None
            error = exc.response.get("error") if exc.response is not None else str(exc)
            if status == 429:
                retry_after = int(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 1)))
                return self._retry(row, f"rate limited ({error})", delay=timedelta(seconds=max(retry_after, 1)))
            if error in ("channel_not_found", "not_in_channel", "invalid_auth", "account_inactive", "is_archived",
                         "message_not_found", "invalid_blocks", "msg_too_long", "no_text"):
                return self._dead(row, f"Slack refused it: {error}")
            return self._retry(row, f"Slack error {status}: {error}")
        except Exception as exc:  # noqa: BLE001 - connection errors and the like: back off and retry
            log.warning("outbox %s: delivery failed: %s", row.id, exc)
            return self._retry(row, f"{type(exc).__name__}: {exc}")
        with unit_of_work(self.session_factory) as s:
            self._record_sent(s, row, channel, result_ts)
        return "sent"

    def _prepare(self, s: Session, row: OutboxMessage) -> tuple[str, str | None, str | None, dict]:
        payload = json.loads(row.payload)
        contract = repo.get_contract(s, row.contract_id) if row.contract_id else None
        view = build_contract_view(s, contract, self.calendar.local_date(self.clock.now())) if contract else None
        message = self.render(payload, view)
        channel, thread_ts, ts_to_update = row.target, None, None
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
            q = repo.get_question(s, contract.id, key[2:])
            return q.message_ts if q else None
        return None

    def _send(self, row: OutboxMessage, channel: str, thread_ts: str | None, ts_to_update: str | None,
              message: dict) -> str | None:
        if ts_to_update:
            self.client.chat_update(channel=channel, ts=ts_to_update, text=message["text"],
                                    blocks=message.get("blocks"))
            return ts_to_update
        if row.op == "dm":
            channel = self.client.conversations_open(users=row.target)["channel"]["id"]
        if row.attempts > 1:
            found = self._find_posted(row, channel, thread_ts)
            if found:
                return found
        response = self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=message["text"], blocks=message.get("blocks"),
            unfurl_links=False, unfurl_media=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_id": row.id}},
        )
        return response["ts"]

    def _find_posted(self, row: OutboxMessage, channel: str, thread_ts: str | None) -> str | None:
        """After a crash, find a message an earlier attempt posted (by its metadata) instead of posting again."""
        since = row.created_at - timedelta(minutes=1)
        kwargs = {"channel": channel, "limit": 200, "include_all_metadata": True, "oldest": f"{since.timestamp():.6f}"}
        if thread_ts:
            response = self.client.conversations_replies(ts=thread_ts, **kwargs)
        else:
            response = self.client.conversations_history(**kwargs)
        for message in response.get("messages", []):
            meta = message.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("outbox_id") == row.id:
                return message.get("ts")
        return None

    def _record_sent(self, s: Session, row: OutboxMessage, channel: str, ts: str | None) -> None:
        fresh = s.get(OutboxMessage, row.id)
        fresh.status, fresh.sent_at, fresh.result_ts, fresh.lease_until = "sent", self.clock.now(), ts, None
        s.add(fresh)
        if row.contract_id and row.op == "post" and ts:
            contract = repo.get_contract(s, row.contract_id, for_update=True)
            if row.message_key == "parent" and contract.parent_ts is None:
                contract.parent_ts, contract.channel_id = ts, channel
                s.add(contract)
            elif row.message_key and row.message_key.startswith("q:"):
                q = repo.get_question(s, row.contract_id, row.message_key[2:])
                if q is not None and q.message_ts is None:
                    q.message_ts = ts
                    s.add(q)

    def _retry(self, row: OutboxMessage, error: str | None, *, delay: timedelta | None = None, count: bool = True) -> str:
        with unit_of_work(self.session_factory) as s:
            fresh = s.get(OutboxMessage, row.id)
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

    def _dead(self, row: OutboxMessage, error: str, session: Session | None = None) -> str:
        log.error("outbox %s (%s to %s) failed for good and is kept as dead: %s", row.id, row.op, row.target, error)

        def mark(s: Session) -> None:
            fresh = s.get(OutboxMessage, row.id)
            fresh.status, fresh.last_error, fresh.lease_until = "dead", error, None
            s.add(fresh)

        if session is not None:
            mark(session)
        else:
            with unit_of_work(self.session_factory) as s:
                mark(s)
        return "dead"


def now_utc(clock: Clock) -> datetime:
    """The clock's time (helper for callers without a clock of their own)."""
    return clock.now()
