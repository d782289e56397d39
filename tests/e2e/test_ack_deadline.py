"""Slack's clock under load: 50 simultaneous commands, buttons and modal submissions are acknowledged inside
3 seconds while the database is locked and Slack is slow; the work then completes and nothing is lost."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REVIEW, REVIEWER

SLACK_DEADLINE = 3.0


def _lock_sqlite(url: str):
    """Hold SQLite's write lock from another connection (a slow or busy database) until released."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    return conn


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_fifty_commands_acked_in_time_while_database_is_locked(running, database):
    url, _ = database
    running.double.latency = 0.5  # Slack is slow too
    lock = _lock_sqlite(url)
    urls = [running.double.new_response_url() for _ in range(50)]

    def send(i: int):
        started = time.monotonic()
        r = running.slack.command(
            f'file vendor="Vendor {i}" product=P{i} agency=ICE',
            user_id=f"UUSER{i:03d}",
            channel_id=REVIEW,
            response_url=urls[i],
        )
        return r, time.monotonic() - started

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(send, range(50)))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        running.double.latency = 0  # the acks were timed against a slow Slack; the late replies need not wait
    slowest = max(t for _, t in results)
    assert all(r.status == 200 for r, _ in results), [r.status for r, _ in results]
    assert slowest < SLACK_DEADLINE, f"slowest ack took {slowest:.2f}s"
    assert all("Working on it" in r.json["text"] or "Filed" in r.json["text"] for r, _ in results)
    # Once the database is free, every filing completes and its requester is told privately.
    running.double.wait_for(
        lambda d: all(
            any("Filed" in (p["body"].get("text") or "") for p in d.responses(u))
            or any("Filed" in (r.json or {}).get("text", "") for r, _ in results[i : i + 1])
            for i, u in enumerate(urls)
        ),
        timeout=60,
    )
    assert running.bot.service.list_contracts().total == 50


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_buttons_acked_in_time_while_database_is_locked(running, database):
    url, _ = database
    running.command("file vendor=V product=P agency=ICE")
    running.thread(1)
    lock = _lock_sqlite(url)
    try:

        def press(i: int):
            started = time.monotonic()
            r = running.slack.block_action(
                user_id=REVIEWER, action_id="answer_yes" if i % 2 else "answer_no", value="1:SCOPE-2"
            )
            return r.status, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(press, range(50)))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert all(status == 200 for status, _ in results)
    assert max(t for _, t in results) < SLACK_DEADLINE
    running.double.wait_for(
        lambda d: running.bot.service.show(1).question("SCOPE-2").answer in ("yes", "no"), timeout=60
    )


def test_concurrent_filings_get_distinct_references(running):
    urls = [running.double.new_response_url() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        acks = list(
            pool.map(
                lambda i: running.command(f"file vendor=V{i} product=P agency=A", response_url=urls[i]).json[
                    "text"
                ],
                range(20),
            )
        )

    def replies() -> list[str]:
        late = [p["body"].get("text", "") for u in urls for p in running.double.responses(u)]
        return [t for t in acks + late if t.startswith("Filed")]

    running.double.wait_for(lambda d: len(replies()) == 20, timeout=30)
    refs = {
        word.strip("*:") for text in replies() for word in text.split() if word.strip("*:").startswith("CR-")
    }
    assert len(refs) == 20, replies()
    assert running.bot.service.list_contracts().total == 20
