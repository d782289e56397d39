"""storage.rates: Slack's rate limits as buckets in the database, shared by every process (both databases)."""

from __future__ import annotations

import threading

import pytest

from storage import rates
from storage.db import make_engine, migrate, session_factory, unit_of_work
from storage.models import SlackRate


def factory_for(database):  # noqa: ANN001, ANN201
    """A session factory on the test database, migrated (one per "process")."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    return engine, session_factory(engine)


def take(factory, buckets, max_wait: float = 60.0) -> rates.Slot:  # noqa: ANN001
    with unit_of_work(factory) as s:
        return rates.take_slot(s, buckets, max_wait=max_wait)


def test_a_burst_goes_at_once_then_one_per_interval(database):
    engine, factory = factory_for(database)
    bucket = rates.Bucket("chat.postMessage C1", interval=1.0, burst=3)
    waits = [take(factory, [bucket]).wait for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    # each later slot is one interval after the one before (the time spent asking is already behind us)
    for n, wait in enumerate(waits[3:], start=1):
        assert n - 0.2 <= wait <= n + 0.01, waits
    engine.dispose()


def test_a_slot_beyond_max_wait_is_not_taken_and_changes_nothing(database):
    engine, factory = factory_for(database)
    bucket = rates.Bucket("chat.update", interval=10.0, burst=1)
    assert take(factory, [bucket]).wait == 0.0
    with unit_of_work(factory) as s:
        before = s.get(SlackRate, "chat.update").tat
    refused = take(factory, [bucket], max_wait=1.0)
    assert not refused.taken and 9.0 < refused.wait <= 10.0 and refused.limited_by == "chat.update"
    with unit_of_work(factory) as s:
        assert s.get(SlackRate, "chat.update").tat == before
    engine.dispose()


def test_a_call_takes_every_bucket_and_waits_for_the_fullest(database):
    engine, factory = factory_for(database)
    channel = rates.Bucket("chat.postMessage C1", interval=1.0, burst=1)
    workspace = rates.Bucket("chat.postMessage *", interval=0.01, burst=100)
    assert take(factory, [workspace, channel]).wait == 0.0
    other = take(factory, [workspace, rates.Bucket("chat.postMessage C2", interval=1.0, burst=1)])
    assert other.wait == 0.0  # another channel is not held back by C1
    again = take(factory, [workspace, channel])
    assert again.taken and 0.8 < again.wait <= 1.0 and again.limited_by == "chat.postMessage C1"
    engine.dispose()


def test_retry_after_blocks_the_bucket_for_every_process_and_then_no_burst(database):
    engine_a, process_a = factory_for(database)
    engine_b, process_b = factory_for(database)
    bucket = rates.Bucket("chat.update", interval=0.1, burst=5)
    with unit_of_work(process_a) as s:
        rates.block(s, [bucket], 2.0)
    with unit_of_work(process_b) as s:
        assert 1.5 < rates.blocked_for(s, [bucket.key]) <= 2.0
    first = take(process_b, [bucket])
    second = take(process_b, [bucket])
    assert 1.5 < first.wait <= 2.0
    # the bucket is empty after a 429: no burst. Compared on the slots' own times (the database clock), not on
    # the waits, which also hold how long the second request took to arrive on a busy machine
    assert second.at - first.at == pytest.approx(bucket.interval, abs=1e-6)
    with unit_of_work(process_b) as s:
        assert rates.blocked_for(s, ["never.used"]) == 0.0
    engine_a.dispose()
    engine_b.dispose()


def test_two_processes_taking_slots_at_once_never_share_one(database):
    """Two engines (two processes' worth) and four threads reserve 40 slots of one bucket: the reserved times,
    spread over both, keep the bucket's rate (no two slots closer than the interval once the burst is used)."""
    engines = [factory_for(database) for _ in range(2)]
    bucket = rates.Bucket("chat.postMessage C9", interval=0.05, burst=2)
    slots: list[float] = []
    lock = threading.Lock()

    def worker(factory) -> None:  # noqa: ANN001
        for _ in range(10):
            with unit_of_work(factory) as s:
                slot = rates.take_slot(s, [bucket], max_wait=60.0)
            assert slot.taken
            with lock:
                slots.append(slot.at)

    threads = [threading.Thread(target=worker, args=(engines[i % 2][1],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    slots.sort()
    assert len(slots) == 40
    # GCRA: any n+1 consecutive slots span at least (n - (burst - 1)) intervals
    for i in range(len(slots)):
        for j in range(i + 1, len(slots)):
            assert slots[j] - slots[i] >= (j - i - 1) * bucket.interval - 1e-4, (i, j, slots[j] - slots[i])
    for engine, _ in engines:
        engine.dispose()
