"""Two OutboxDispatchers on one database (two processes' worth: each its own engine, client and name) share Slack's
rate limits through the database: against the strict double (SLACK_RATE_SCALE x) they draw no 429, a 429 one of
them is given holds the other back too, a DM channel is opened once for both, and a message that would wait for
its slot longer than its lease allows goes back to the queue instead of holding the lease."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlmodel import func, select

from bot.clock import ManualClock
from bot.domain.calendar import BusinessCalendar
from bot.services.outbox import OutboxDispatcher
from handlers.blocks import render_outbox
from storage import rates
from storage import repositories as repo
from storage.db import make_engine, migrate, read_only, session_factory, unit_of_work
from storage.models import Contract, OutboxMessage, Question
from tests.conftest import ADMIN, MANAGERS, REVIEW, SLACK_RATE_SCALE, START
from tests.support.slack_double import Fault


@pytest.fixture
def dispatchers(database, double):
    """make(name) -> an OutboxDispatcher on its own engine (a "process"), all on the test database."""
    url, schema = database
    engines = []
    clock = ManualClock(START)

    def make(name: str, **kw) -> OutboxDispatcher:
        engine = make_engine(url, schema=schema)
        migrate(engine)
        engines.append(engine)
        client = WebClient(token="xoxb-test", base_url=double.api_url)  # no retry handlers: the outbox paces
        d = OutboxDispatcher(
            session_factory(engine),
            client,
            clock,
            render_outbox,
            BusinessCalendar("America/New_York"),
            admin_user_ids=(ADMIN,),
            slack_rate_scale=kw.pop("scale", SLACK_RATE_SCALE),
            **kw,
        )
        d.worker = name
        return d

    yield make
    for engine in engines:
        engine.dispose()


def queue(d: OutboxDispatcher, *messages: tuple[str, str]) -> list[int]:
    """Queue (op, target) text messages; their ids."""
    with unit_of_work(d.session_factory) as s:
        last = s.exec(select(func.max(OutboxMessage.id))).one() or 0
        for i, (op, target) in enumerate(messages):
            repo.add_outbox(
                s, at=d.clock.now(), op=op, target=target, payload={"render": "text", "text": f"m{i}"}
            )
    with read_only(d.session_factory) as s:
        return list(
            s.exec(select(OutboxMessage.id).where(OutboxMessage.id > last).order_by(OutboxMessage.id))
        )


def statuses(d: OutboxDispatcher) -> Counter:
    with read_only(d.session_factory) as s:
        return Counter(r.status for r in s.exec(select(OutboxMessage)).all())


def run_until_idle(*ds: OutboxDispatcher, timeout: float = 60.0) -> None:
    """Each dispatcher delivers in its own thread, as separate processes would, until nothing is pending."""
    done = threading.Event()
    errors: list[BaseException] = []

    def loop(d: OutboxDispatcher) -> None:
        try:
            while not done.is_set():
                d.deliver_due()
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(d,)) for d in ds]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    try:
        while statuses(ds[0])["pending"] and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert not statuses(ds[0])["pending"], statuses(ds[0])


def posted_ids(double) -> Counter:  # noqa: ANN001
    """How many messages Slack holds per outbox id (from each post's metadata)."""
    ids: Counter = Counter()
    for m in double.messages():
        meta = m.get("metadata") or {}
        if meta.get("event_type") == "contract_bot_outbox":
            ids[meta["event_payload"]["outbox_id"]] += 1
    return ids


def test_two_dispatchers_share_the_pacing_and_slack_answers_no_429(dispatchers, double):
    a, b = dispatchers("process-a"), dispatchers("process-b")
    users = ["UALPHA1", "UBRAVO1", "UCHARLIE1"]
    ids = queue(
        a,
        *[("post", REVIEW)] * 40,
        *[("post", MANAGERS)] * 12,
        *[("dm", u) for u in users for _ in range(3)],
    )
    started = time.monotonic()
    run_until_idle(a, b)
    elapsed = time.monotonic() - started
    assert double.rate_limited() == [], double.rate_limited_counts()
    assert statuses(a) == Counter({"sent": len(ids)})
    assert posted_ids(double) == Counter({i: 1 for i in ids})  # each exactly once
    # both processes sent: the pacing, not a single sender, kept Slack happy
    with read_only(a.session_factory) as s:
        senders = Counter(r.claimed_by for r in s.exec(select(OutboxMessage)).all())
    assert senders["process-a"] and senders["process-b"], senders
    # 40 posts to one channel at 1 per second (scaled) take at least 39 intervals
    assert elapsed >= 39 / SLACK_RATE_SCALE * 0.95
    opened = Counter(c.params.get("users") for c in double.calls("conversations.open"))
    assert set(opened) == set(users) and max(opened.values()) <= 2  # at most once per process


def test_a_dm_channel_is_opened_once_and_shared_through_the_database(dispatchers, double):
    a = dispatchers("process-a")
    queue(a, *[("dm", "UALPHA1")] * 3, *[("dm", "UBRAVO1")] * 2)
    run_until_idle(a)
    assert len(double.calls("conversations.open")) == 2
    b = dispatchers("process-b")  # another process: it finds the channel in the database
    queue(b, ("dm", "UALPHA1"))
    run_until_idle(b)
    assert len(double.calls("conversations.open")) == 2
    assert len(double.messages(double.dm_channel("UALPHA1"))) == 4


def test_a_429_given_to_one_process_holds_the_other_back_and_costs_no_attempt(dispatchers, double):
    a, b = dispatchers("process-a"), dispatchers("process-b")
    double.script("chat.postMessage", [Fault(status=429, retry_after=1)])
    ids = queue(a, *[("post", REVIEW)] * 12)
    run_until_idle(a, b)
    limited = [c for c in double.calls("chat.postMessage") if c.status == 429]
    assert len(limited) == 1
    assert double.retry_after_violations() == []  # no process posted within Retry-After of the 429
    later = [c.at for c in double.calls("chat.postMessage") if c.at > limited[0].at]
    assert later and min(later) >= limited[0].at + 1.0
    with read_only(a.session_factory) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).all()  # type: ignore[union-attr]
    assert all(r.status == "sent" and r.attempts == 1 for r in rows), [(r.id, r.attempts) for r in rows]


def test_a_slot_beyond_the_lease_sends_the_message_back_uncounted_instead_of_holding_it(dispatchers, double):
    # a lease of 16 s leaves 1 s to wait for a slot (15 s are kept in hand for the call and the bookkeeping)
    a = dispatchers("process-a", lease=timedelta(seconds=16))
    (message,) = queue(a, ("post", MANAGERS))
    with unit_of_work(a.session_factory) as s:  # Slack said "retry after 30 s" to some process
        rates.block(s, a.limits.buckets("chat.postMessage", MANAGERS), 30.0)
    started = time.monotonic()
    stats = a.deliver_due()
    assert time.monotonic() - started < 5.0
    assert stats.waiting == 1 and stats.sent == 0
    assert not double.calls("chat.postMessage")
    with read_only(a.session_factory) as s:
        row = s.get(OutboxMessage, message)
    assert row is not None and row.status == "pending" and row.lease_until is None and row.attempts == 0
    with unit_of_work(a.session_factory) as s:  # the block is over
        for bucket in a.limits.buckets("chat.postMessage", MANAGERS):
            s.exec(select(rates.SlackRate).where(rates.SlackRate.key == bucket.key)).one().blocked_until = 0.0
            s.exec(select(rates.SlackRate).where(rates.SlackRate.key == bucket.key)).one().tat = 0.0
    assert a.deliver_due().sent == 1


def test_an_edit_queued_before_its_message_was_posted_is_skipped_as_superseded(dispatchers, double):
    a = dispatchers("process-a")
    parent = WebClient(token="xoxb-test", base_url=double.api_url).chat_postMessage(
        channel=REVIEW, text="CR-1"
    )
    with unit_of_work(a.session_factory) as s:
        contract = Contract(
            vendor="V",
            product="P",
            agency="A",
            filed_by=ADMIN,
            filed_at=START,
            channel_id=REVIEW,
            parent_ts=parent["ts"],
        )
        s.add(contract)
        s.flush()
        s.add(Question(contract_id=contract.id, qid="SCOPE-1", asked_at=START))
        repo.add_outbox(
            s,
            at=START,
            op="update",
            target="thread",
            contract_id=contract.id,
            message_key="q:SCOPE-1",
            payload={"render": "question", "qid": "SCOPE-1"},
        )
        repo.add_outbox(
            s,
            at=START,
            op="post",
            target="thread",
            contract_id=contract.id,
            message_key="q:SCOPE-1",
            payload={"render": "question", "qid": "SCOPE-1"},
        )
        contract_id = contract.id
    with read_only(a.session_factory) as s:  # queued in that order: the edit first
        edit_id, post_id = s.exec(
            select(OutboxMessage.id)
            .where(OutboxMessage.contract_id == contract_id)
            .order_by(OutboxMessage.id)
        ).all()
    run_until_idle(a)
    with read_only(a.session_factory) as s:
        skipped, sent = s.get(OutboxMessage, edit_id), s.get(OutboxMessage, post_id)
    assert (
        skipped is not None and skipped.status == "skipped" and "not posted yet" in (skipped.last_error or "")
    )
    assert sent is not None and sent.status == "sent"
    assert not double.calls("chat.update")


def test_at_slacks_real_rates_two_processes_post_one_per_second_per_channel(dispatchers, database):
    """Slack's own rates (scale 1), against a double at scale 1: five posts to one channel from two processes
    go one per second, and none is refused.

    "One per second" is checked as a rate limiter would judge it, with no burst: the k-th post (from 0) reaches
    Slack no sooner than k seconds after delivery started. A busy machine can only make a post late, never early,
    so this cannot fail for want of CPU; the gap between two posts can (the first one late, the next on time), and
    Slack's own bucket allows for that with a burst, which the double's no-429 checks."""
    from tests.support.slack_double import SlackDouble

    with SlackDouble(rate_scale=1.0, invited=(REVIEW,)) as real:
        a, b = dispatchers("process-a", scale=1.0), dispatchers("process-b", scale=1.0)
        for d in (a, b):
            d.client = WebClient(token="xoxb-test", base_url=real.api_url)
        queue(a, *[("post", REVIEW)] * 5)
        started = time.monotonic()  # the double's Call.at is time.monotonic() too
        run_until_idle(a, b, timeout=30)
        assert real.rate_limited() == []
        times = sorted(c.at for c in real.calls("chat.postMessage"))
        assert len(times) == 5
        early = {k: round(t - started, 2) for k, t in enumerate(times) if t - started < k * 0.95}
        assert not early, f"posts sooner than one per second (post: seconds after the start): {early}"
