"""Outbox delivery under Slack faults: 429 honours Retry-After, 5xx and dropped connections are retried,
every message is delivered exactly once, and a message Slack keeps refusing is kept as dead and reported."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest

from bot.services.outbox import Plan
from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import ADMIN, MANAGER, MANAGERS, REVIEW, REVIEWER
from tests.support.slack_double import Fault

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'


def outbox_counts(running) -> dict[str, int]:  # noqa: ANN001
    """Outbox rows by status."""
    with unit_of_work(running.bot.session_factory) as s:
        return {status: repo.count_outbox(s, status) for status in ("pending", "sent", "dead")}


def drain(running, rounds: int = 60) -> None:  # noqa: ANN001
    """Deliver until nothing is pending, moving the injected clock past each back-off (never sleeping)."""
    for _ in range(rounds):
        running.deliver()
        if outbox_counts(running)["pending"] == 0:
            return
        running.clock.advance(timedelta(minutes=6))
    raise AssertionError(f"outbox not drained: {outbox_counts(running)}")


def posts_per_outbox_id(running) -> Counter:  # noqa: ANN001
    """How many messages Slack holds for each outbox row (every post carries its outbox id as metadata)."""
    ids: Counter = Counter()
    for m in running.double.messages():
        meta = m.get("metadata") or {}
        if meta.get("event_type") == "contract_bot_outbox":
            ids[meta["event_payload"]["outbox_id"]] += 1
    return ids


def sent_post_ids(running) -> set[int]:  # noqa: ANN001
    """Outbox ids of every post or DM the bot recorded as sent."""
    from sqlmodel import select

    from storage.models import OutboxMessage

    with unit_of_work(running.bot.session_factory) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.status == "sent")).all()
        return {r.id for r in rows if r.op in ("post", "dm")}


def test_429_waits_retry_after_and_delivers_once(running):
    running.double.script("chat.postMessage", [Fault(status=429, retry_after=1)] * 3)
    running.command(FILE)
    drain(running)
    assert running.double.retry_after_violations() == []
    assert len([c for c in running.double.calls("chat.postMessage") if c.status == 429]) == 3
    counts = posts_per_outbox_id(running)
    assert counts and set(counts.values()) == {1}
    assert outbox_counts(running)["dead"] == 0


@pytest.mark.long
def test_server_errors_and_dropped_connections_are_retried(running):
    running.double.script(
        "chat.postMessage",
        [
            Fault(drop=True),
            Fault(status=503),
            Fault(status=500),
            Fault(drop=True),
            Fault(status=502),
            Fault(status=503),
        ],
    )
    running.command(FILE)
    drain(running)
    counts = posts_per_outbox_id(running)
    assert len(counts) == 7 and set(counts.values()) == {1}  # parent, section header, 5 questions
    thread = running.thread(1)
    assert [m["text"].split(":")[0] for m in thread if m["text"].startswith("CR-1 SCOPE-")] == [
        f"CR-1 SCOPE-{i}" for i in range(1, 6)
    ]  # per-contract order survived the retries


@pytest.mark.long
def test_thirty_percent_faults_deliver_every_message_exactly_once(running):
    running.double.fail_share(0.3, kinds=("429", "503", "slow"), seed=7, slow_seconds=0.1)
    for i in range(4):
        running.command(FILE.replace("Graphite", f"Graphite{i}"))
        running.command(f'stopwork CR-{i + 1} reason="hold"', user=MANAGER)
    for i in range(1, 6):
        running.command(f"answer CR-1 SCOPE-{i} yes", user=REVIEWER)
    drain(running)
    running.clock.set(running.clock.now() + timedelta(days=1))
    running.bot.sweeper.sweep()
    drain(running)
    running.double.fail_share(0)
    assert running.double.retry_after_violations() == []
    assert outbox_counts(running) == {"pending": 0, "sent": outbox_counts(running)["sent"], "dead": 0}
    counts = posts_per_outbox_id(running)
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
    assert sent_post_ids(running) == set(counts)
    faults = Counter(c.fault for c in running.double.calls() if c.fault)
    assert faults["429"] and faults["503"]  # the faults really happened
    reminders = [m for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]]
    assert len(reminders) == 1 and all(f"*CR-{i}*" in reminders[0]["text"] for i in range(1, 5))
    assert [m["text"].split(":")[0] for m in running.thread(1) if m["text"].startswith("CR-1 PROC-")] == [
        f"CR-1 PROC-{i}" for i in range(1, 5)
    ]


def test_message_slack_keeps_refusing_is_kept_dead_and_reported_to_admins(running, caplog):
    running.command(FILE)
    running.command('stopwork CR-1 reason="hold"', user=MANAGER)
    drain(running)
    running.clock.set(running.clock.now() + timedelta(days=1))
    running.double.script(
        "chat.postMessage", [Fault(status=200, body={"ok": False, "error": "channel_not_found"})]
    )
    running.bot.sweeper.sweep()
    with caplog.at_level(logging.ERROR, logger="bot.services.outbox"):
        drain(running)
    assert outbox_counts(running)["dead"] == 1
    assert any(
        "kept as dead" in r.getMessage() and "channel_not_found" in r.getMessage() for r in caplog.records
    )
    assert not [m for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]]
    dm = running.double.messages(running.double.dm_channel(ADMIN))
    assert len(dm) == 1 and "could not deliver" in dm[0]["text"] and "channel_not_found" in dm[0]["text"]
    assert f"to <#{MANAGERS}>" in dm[0]["text"]
    # the thread and everything after the dead message still flows
    running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER)
    drain(running)
    assert outbox_counts(running)["pending"] == 0
    assert REVIEW in {m.get("channel", REVIEW) for m in running.double.messages(REVIEW)}


def test_crash_between_post_and_commit_is_found_by_metadata_not_reposted(running):
    """A post whose bookkeeping was lost (lease expired, attempts > 1) is looked up, not posted again."""
    running.command(FILE)
    running.deliver()
    # NOTE: the fixture's background delivery loop passes every second: holding its lock keeps it from claiming the
    # message between its commit and this claim (a pass already running ends first)
    with running.bot.dispatcher._lock:
        with unit_of_work(running.bot.session_factory) as s:
            repo.add_outbox(
                s, at=running.clock.now(), op="post", target=MANAGERS, payload={"render": "text", "text": "x"}
            )
        # first attempt: Slack posts it, then the process "dies" before recording it (we drop the outcome)
        with unit_of_work(running.bot.session_factory) as s:
            rows = repo.claim_outbox(
                s, worker="dying", now=running.clock.now(), lease=timedelta(seconds=60), limit=5
            )
    row = next(r for r in rows if r.target == MANAGERS)
    running.bot.dispatcher._send(row, Plan("post", channel=MANAGERS, message={"text": "x"}))
    assert len(running.double.messages(MANAGERS)) == 1
    running.clock.advance(timedelta(minutes=2))  # the lease expires
    running.deliver()
    assert len(running.double.messages(MANAGERS)) == 1
    assert outbox_counts(running)["pending"] == 0
    assert running.double.calls("conversations.history")
