"""The inbox of acknowledged requests: recorded before the acknowledgement, carried out once, in order, and taken
over from a process that died (bot/services/inbox.py). Real app over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.app import create_app
from bot.clock import ManualClock
from bot.services.inbox import GONE, AckGate, Inbox, InboxJob
from storage.db import journal_dir, make_engine
from storage.journal import RequestJournal, read_journal
from tests.conftest import MEMBER, REVIEW, REVIEWER, SECRET, START, make_settings, serve_bot
from tests.support.replies import flat
from tests.support.slack_requests import SlackRequester

FILE_ICE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE'


def inbox_rows(running) -> list[dict]:
    """Every row of the inbox (a file of its own on SQLite)."""
    with running.bot.inbox_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(text("SELECT key, kind, status, owner FROM inbox ORDER BY id")).mappings()
        ]


def contracts_named(running, product: str) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM contract WHERE product = :p"), {"p": product}
        ).scalar_one()


def dead_process_inbox(running) -> Inbox:
    """The inbox of another process on the same database, which records a request and then dies (never runs it)."""
    bot = running.bot
    return Inbox(bot.inbox.session_factory, bot.inbox_engine, running.clock, AckGate(), owner="dead-process")


def record(inbox: Inbox, kind: str, payload: dict) -> InboxJob:
    job = InboxJob(kind, payload)
    inbox.record(job).result(timeout=10)
    return job


def test_sqlite_inbox_is_a_file_of_its_own_and_postgresql_uses_the_table(running, database):
    url, _ = database
    if url.startswith("sqlite"):
        assert running.bot.inbox_engine.url.database.endswith("bot.db.inbox")
    else:
        assert running.bot.inbox_engine is running.bot.engine


def test_a_filing_is_recorded_before_the_ack_and_forgotten_once_carried_out(running):
    r = running.command(FILE_ICE)
    assert "Filed *CR-1*" in r.json["text"]
    with running.bot.engine.connect() as conn:
        seen = conn.execute(text("SELECT count(*) FROM seen_request WHERE key LIKE 'inbox:%'")).scalar_one()
    assert seen == 1  # the filing's transaction marked its request carried out
    assert inbox_rows(running) == []


def test_reads_are_not_recorded(running):
    running.command(FILE_ICE)
    running.command("show CR-1")
    running.command("list")
    with running.bot.engine.connect() as conn:
        seen = conn.execute(text("SELECT count(*) FROM seen_request WHERE key LIKE 'inbox:%'")).scalar_one()
    assert seen == 1  # only the filing


def test_requests_of_a_dead_process_are_taken_over_after_its_lease_and_answered(running):
    url = running.double.new_response_url()
    dead = dead_process_inbox(running)
    record(
        dead,
        "command",
        {
            "text": "file vendor=Acme product=LOST-1 agency=ICE",
            "user": MEMBER,
            "channel": REVIEW,
            "response_url": url,
        },
    )
    assert [r["owner"] for r in inbox_rows(running)] == ["dead-process"]
    assert running.bot.inbox.recover() == 0  # its lease still runs: the other process may be alive
    running.clock.advance(timedelta(seconds=31))
    assert running.bot.inbox.recover() == 1
    running.double.wait_for(lambda d: any("Filed" in (p["body"].get("text") or "") for p in d.responses(url)))
    assert contracts_named(running, "LOST-1") == 1
    assert inbox_rows(running) == []
    running.clock.advance(timedelta(seconds=31))
    assert running.bot.inbox.recover() == 0  # nothing is carried out twice


def test_a_request_carried_out_before_a_crash_is_not_repeated_when_its_row_is_found(running):
    dead = dead_process_inbox(running)
    job = record(
        dead,
        "command",
        {
            "text": "file vendor=Acme product=ONCE-1 agency=ICE",
            "user": MEMBER,
            "channel": REVIEW,
            "response_url": running.double.new_response_url(),
        },
    )
    # The dead process carried it out (its transaction committed) but died before deleting the row.
    running.bot.inbox.run(InboxJob(job.kind, job.payload, key=job.key))
    with dead.store_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO inbox (key, kind, payload, received_at, status, owner, lease_until, attempts) "
                "VALUES (:k, 'command', '{}', :t, 'pending', 'dead-process', :t, 0)"
            ),
            {"k": job.key, "t": running.clock.now() - timedelta(minutes=5)},
        )
    calls_before = len(running.double.calls())
    running.bot.inbox.stop()  # carry it out in this thread, to look right after
    assert running.bot.inbox.recover() == 1
    running.bot.inbox.drain()
    assert contracts_named(running, "ONCE-1") == 1
    assert inbox_rows(running) == []
    assert not [c for c in running.double.calls()[calls_before:] if c.method == "response_url"]


def test_the_same_request_carried_out_twice_at_once_takes_effect_once(running):
    dead = dead_process_inbox(running)
    job = record(
        dead,
        "command",
        {
            "text": "file vendor=Acme product=RACE-1 agency=ICE",
            "user": MEMBER,
            "channel": REVIEW,
            "response_url": running.double.new_response_url(),
        },
    )
    results = []
    barrier = threading.Barrier(2)

    def carry_out() -> None:
        barrier.wait()
        results.append(running.bot.inbox.run(InboxJob(job.kind, job.payload, key=job.key)))

    threads = [threading.Thread(target=carry_out) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert contracts_named(running, "RACE-1") == 1
    assert sum(1 for r in results if r is GONE) == 1, results


def test_under_a_backlog_requests_are_acknowledged_at_once_and_answered_in_order(running):
    running.command(FILE_ICE)
    running.thread(1)
    running.bot.inbox.stop()  # the background worker is away: everything queues
    url = running.double.new_response_url()
    running.bot.inbox.enqueue(InboxJob("command", {"text": "show CR-1", "user": MEMBER, "response_url": url}))
    answer = running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER, response_url=url)
    show = running.command("show CR-1", response_url=url)
    assert "Working on it" in answer.json["text"] and "Working on it" in show.json["text"]
    assert running.bot.service.show(1).answered == 0
    assert running.bot.inbox.drain() == 3
    bodies = [flat(p["body"]) for p in running.double.responses(url)]
    assert len(bodies) == 3
    assert "answered 0 of" in bodies[0], bodies[0]
    assert "Recorded" in bodies[1], bodies[1]
    assert "answered 1 of" in bodies[2], bodies[2]  # the show queued after the answer sees it


def test_a_modal_filing_behind_a_backlog_closes_the_form_and_sends_the_reference_by_dm(running):
    running.bot.inbox.stop()
    running.bot.inbox.enqueue(InboxJob("command", {"text": "list", "user": MEMBER, "response_url": None}))
    state = {
        "vendor": {"vendor": {"type": "plain_text_input", "value": "Paragon Solutions"}},
        "product": {"product": {"type": "plain_text_input", "value": "Graphite"}},
        "agency": {"agency": {"type": "plain_text_input", "value": "ICE"}},
    }
    r = running.slack.view_submission(user_id=MEMBER, callback_id="file_contract_modal", state_values=state)
    assert r.json["response_action"] == "update" and "Filing" in str(r.json["view"])
    running.bot.inbox.drain()
    running.double.wait_for(
        lambda d: any(
            "CR-1" in (c.params.get("text") or "")
            for c in d.calls("chat.postMessage")
            if c.params.get("channel") == MEMBER
        )
    )


def test_background_work_waits_for_a_quiet_moment_but_not_forever():
    gate = AckGate()
    assert gate.wait_quiet(0.0)
    with gate.request():
        assert gate.active == 1
        assert not gate.wait_quiet(0.01)  # a request is being acknowledged: bounded wait, then go on
        released = []
        waiter = threading.Thread(target=lambda: released.append(gate.wait_quiet(10)))
        waiter.start()
    waiter.join(timeout=10)
    assert released == [True] and gate.active == 0


def test_the_journal_is_beside_a_sqlite_file_and_on_postgresql_only_when_asked(running, database, tmp_path):
    url, _ = database
    bot = running.bot
    if url.startswith("sqlite"):
        assert bot.inbox.journal is not None and bot.inbox.journal.usable
        assert bot.inbox.journal.path.parent.name == "bot.db.journal" and bot.inbox.journal.path.exists()
    else:
        assert bot.inbox.journal is None  # the local disk may not outlive the process: opt in
    assert journal_dir(bot.engine, "off") is None
    assert journal_dir(bot.engine, str(tmp_path / "j")) == str(tmp_path / "j")
    assert journal_dir(make_engine("sqlite://")) is None  # nothing outlives an in-memory database anyway


def test_journaled_requests_of_a_stopped_process_are_taken_over_at_once_and_carried_out_once(
    running, tmp_path
):
    """A process died with requests in its journal that never reached the table: the next look takes them (no lease
    to wait for: nobody holds the file), except those whose "committed" line says the table has them."""
    bot = running.bot
    inbox = Inbox(
        bot.inbox.session_factory, bot.inbox_engine, running.clock, AckGate(), journal_dir=str(tmp_path / "j")
    )
    inbox.execute, inbox.deliver = bot.inbox.execute, bot.inbox.deliver
    url = running.double.new_response_url()
    dead = RequestJournal(tmp_path / "j", "dead-process").open()
    lost = {
        "text": "file vendor=Acme product=JOURNAL-1 agency=ICE",
        "user": MEMBER,
        "channel": REVIEW,
        "response_url": url,
    }
    in_table = {**lost, "text": "file vendor=Acme product=JOURNAL-2 agency=ICE"}
    dead.append("k-lost", "command", json.dumps(lost))
    dead.append("k-in-table", "command", json.dumps(in_table))
    dead.committed(["k-in-table"])  # its row reached the table (and was carried out and deleted since)
    dead.close(remove=True)  # a line is uncommitted: the file stays
    try:
        assert inbox.recover() == 1
        assert inbox.drain() == 1
        assert contracts_named(running, "JOURNAL-1") == 1 and contracts_named(running, "JOURNAL-2") == 0
        assert any("Filed" in (p["body"].get("text") or "") for p in running.double.responses(url))
        assert not dead.path.exists() and inbox_rows(running) == []
        assert inbox.recover() == 0 and inbox.drain() == 0  # nothing is carried out twice
    finally:
        inbox.stop()


def test_with_both_databases_locked_a_filing_is_acknowledged_from_the_journal_and_carried_out_later(
    running, database
):
    """The acknowledgement waits for neither the inbox table nor the contract tables; the line in the journal is
    what makes it safe. Once the locks go, the filing is carried out once and the journal is cut back."""
    url, _ = database
    if not url.startswith("sqlite"):
        pytest.skip("the journal is on by default beside a SQLite file")
    locks = [
        sqlite3.connect(path, isolation_level=None, timeout=10)
        for path in (running.bot.engine.url.database, running.bot.inbox_engine.url.database)
    ]
    for lock in locks:
        lock.execute("BEGIN IMMEDIATE")
    response_url = running.double.new_response_url()
    journal = running.bot.inbox.journal
    try:
        started = time.monotonic()
        r = running.command("file vendor=Acme product=LOCKED-1 agency=ICE", response_url=response_url)
        assert (
            time.monotonic() - started < 3 and "Working on it" in r.json["text"]
        )  # the budget, not the lock
        assert [e["payload"]["text"] for e in read_journal(journal.path)] == [
            "file vendor=Acme product=LOCKED-1 agency=ICE"
        ]
        assert inbox_rows_unlocked(locks[1]) == []  # the table could not take it
    finally:
        for lock in locks:
            lock.execute("ROLLBACK")
            lock.close()
    running.double.wait_for(
        lambda d: any("Filed" in (p["body"].get("text") or "") for p in d.responses(response_url))
    )
    assert contracts_named(running, "LOCKED-1") == 1
    deadline = time.monotonic() + 10  # the recorder copies the line, sees it carried out, deletes the row
    while read_journal(journal.path) or inbox_rows(running):
        assert time.monotonic() < deadline, (read_journal(journal.path), inbox_rows(running))
        time.sleep(0.02)


def inbox_rows_unlocked(conn) -> list:  # noqa: ANN001
    """The inbox rows, read through the connection that holds the inbox file's write lock."""
    return conn.execute("SELECT key FROM inbox").fetchall()


def test_a_journal_directory_that_cannot_be_used_is_reported_and_requests_wait_for_the_table(
    database, double, tmp_path, caplog
):
    url, schema = database
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings = make_settings(double, url, inbox_journal_dir=str(blocker / "journal"))
    with caplog.at_level(logging.ERROR, logger="contract_bot.inbox"):
        bot = create_app(settings, engine=make_engine(url, schema=schema), clock=ManualClock(START))
    assert bot.inbox.journal is None
    assert any("cannot use the request journal directory" in r.getMessage() for r in caplog.records)
    bot.start_background(scheduler=False)
    base, stop = serve_bot(bot)
    try:
        r = SlackRequester(base, SECRET, double=double).command(
            "file vendor=Acme product=NOJOURNAL-1 agency=ICE", user_id=MEMBER, channel_id=REVIEW
        )
        assert r.status == 200 and "Filed *CR-1*" in r.json["text"]
    finally:
        stop()
        bot.stop()
