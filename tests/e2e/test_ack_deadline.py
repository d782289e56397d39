"""Slack's clock with the database locked: 50 simultaneous commands and buttons are answered inside 3 seconds,
each saying truthfully that nothing was recorded; nothing lands later, and the bot works again once the lock goes."""

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


@pytest.mark.real_deadline  # about the deadline: the bot must give up on the locked database within it
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_fifty_commands_answered_in_time_while_database_is_locked(running, database):
    url, _ = database
    running.double.latency = 0.5  # Slack is slow too; no Slack call is in the request, so it does not matter
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
        running.double.latency = 0
    slowest = max(t for _, t in results)
    assert all(r.status == 200 for r, _ in results), [r.status for r, _ in results]
    assert slowest < SLACK_DEADLINE, f"slowest answer took {slowest:.2f}s"
    # every one is told the truth in its answer: nothing was recorded, try again; nothing follows later
    assert all("nothing was recorded" in r.json["text"] for r, _ in results), [r.json for r, _ in results]
    time.sleep(0.5)  # work that finished after its answer would have committed by now
    assert running.bot.service.list_contracts().total == 0
    assert not any(running.double.responses(u) for u in urls)
    # the lock gone, the bot works again by itself
    r = running.command("file vendor=V product=P agency=ICE")
    assert "Filed" in r.json["text"] and running.bot.service.list_contracts().total == 1


@pytest.mark.real_deadline  # about the deadline: the bot must give up on the locked database within it
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_buttons_answered_in_time_while_database_is_locked(running, database):
    url, _ = database
    running.command("file vendor=V product=P agency=ICE")
    q = next(m for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-2"))
    on = {"ts": q["ts"], "channel": REVIEW}  # the question's message, which the buttons are on
    lock = _lock_sqlite(url)
    urls = [running.double.new_response_url(channel=REVIEW, user=REVIEWER) for _ in range(20)]
    try:

        def press(i: int):
            started = time.monotonic()
            r = running.slack.block_action(
                user_id=REVIEWER,
                action_id="answer_yes" if i % 2 else "answer_no",
                value="1:SCOPE-2",
                channel_id=REVIEW,
                response_url=urls[i],
                message=on,
            )
            return r.status, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(press, range(20)))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert all(status == 200 for status, _ in results)
    assert max(t for _, t in results) < SLACK_DEADLINE
    # each presser is told privately that nothing was recorded, and nothing was
    running.double.wait_for(lambda d: all(d.responses(u) for u in urls), timeout=10)
    assert all("nothing was recorded" in running.double.responses(u)[0]["body"]["text"] for u in urls)
    assert running.bot.service.show(1).question("SCOPE-2").answer is None
    r = running.slack.block_action(user_id=REVIEWER, action_id="answer_yes", value="1:SCOPE-2", message=on)
    assert r.status == 200 and running.bot.service.show(1).question("SCOPE-2").answer == "yes"


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
