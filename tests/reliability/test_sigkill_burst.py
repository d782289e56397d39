"""SIGKILL the server during a burst of 500 filings and 200 due reminders; restart: every filing that was
acknowledged exists, every outbox message and reminder is delivered exactly once.

The scenario, on SQLite and on PostgreSQL (the ``database`` fixture):

1. 200 contracts with a due stop-work reminder each are seeded (tests/test_concurrency.py ``seed``).
2. Process A (tests/support/worker_process.py ``--serve``: the real app over HTTP, the sweep and the outbox
   delivery in the background) starts; once it has posted its first reminder message, 16 client threads fire 500
   filings at it, signed as Slack signs them: every other one a ``/contract file … product=P0042 agency=ICE``
   command (each with its own response_url on the Slack double), the others a ``file_contract_modal`` view
   submission (each with its own view id). Each filing carries a unique marker, its product ``P0000``…``P0499``.
   The double answers ``chat.postMessage``, ``chat.update`` and response_url posts slowly (after doing them), so
   delivery lags and a kill lands between Slack doing something and the bot recording that it did.
3. Once ``KILL_AFTER`` filings have been acknowledged (HTTP 200, counted by the clients) A is SIGKILLed; the
   requests still in flight or not yet sent fail to connect and are not acknowledged. Right after the kill the
   test reads what A left: the inbox rows (``<db>.inbox`` on SQLite, the schema's ``inbox`` table on PostgreSQL),
   on SQLite also the journal lines the recorder had not yet copied into the table (``<db>.journal/``: there the
   200 waits only for the line), which of them were already carried out (``seen_request`` "inbox:<key>"), and the
   filings that exist.
4. Process B starts on the same database with its business clock past every lease A held (inbox 30 s, outbox
   60 s, reminder claims 5 min) and carries everything out; the test polls (with a deadline) until no inbox row,
   no outbox row and no due reminder is pending.

Counts checked (printed, and in every assertion message):

* acknowledged: each acknowledged filing exists exactly once (by its marker); no marker exists twice, whether
  its 200 arrived or not; every acknowledged filing existed or was in the inbox at the kill;
* in the inbox at the kill / replayed by B: at least one acknowledged filing was only in the inbox at the kill
  (so the replay is really exercised), and the filings B carried out (filed on B's clock) are exactly the inbox
  rows not yet carried out at the kill;
* reminders: each of the 200 is reported in the managers' channel exactly once, and all 200 rows are ``sent``;
* messages: every contract's parent message is in the review channel exactly once, every outbox row Slack holds
  a message for holds exactly one (Slack message metadata names the row), and no outbox row is left pending or
  dead; no response_url was answered twice and no filing was reported twice by direct message.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from storage.db import inbox_engine, journal_dir, make_engine, migrate, session_factory, unit_of_work
from storage.journal import read_journal
from storage.models import Contract, InboxItem, OutboxMessage, Reminder, SeenRequest
from tests.conftest import REVIEW
from tests.reliability.support import file_form_state
from tests.support.slack_requests import SlackRequester
from tests.test_concurrency import (
    DUE,
    ROOT,
    START,
    STOPWORK_RE,
    Worker,
    db_state,
    posts_per_outbox_id,
    refs,
    seed,
)

FILINGS = 500
REMINDERS = 200
CLIENTS = 16
KILL_AFTER = 200  # acknowledgements the clients have seen when A is killed
SECRET = "s"  # worker_process's signing secret
# B's business clock starts this far past A's at the kill: past the inbox (30 s), outbox (60 s) and reminder
# claim (5 min) leases A held.
PAST_LEASES = timedelta(minutes=6)
MARKER_RE = re.compile(r"\bproduct=(P\d{4})\b")
PARENT_RE = re.compile(r"CR-(\d+)")
FAILED = "Something went wrong"


class Server(Worker):
    """Worker process that also serves the bot over HTTP (worker_process --serve)."""

    def __init__(self, database: tuple[str, str | None], api_url: str, start: datetime) -> None:
        url, schema = database
        cmd = [
            sys.executable,
            "-m",
            "tests.support.worker_process",
            "--db",
            url,
            "--api",
            api_url,
            "--start",
            start.isoformat(),
            "--batch",
            "10",
            "--serve",
        ]
        if schema:
            cmd += ["--schema", schema]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        self.name: str | None = None
        self.url: str | None = None

    def ready(self) -> Server:
        """Block until the process prints ``ready <worker> <url>``."""
        line = self.proc.stdout.readline()
        assert line.startswith("ready") and len(line.split()) == 3, (
            f"server did not start: {line!r} (exit {self.proc.poll()})"
        )
        _, self.name, self.url = line.split()
        return self


@dataclass
class Filing:
    """One filing the clients try, and what became of it."""

    index: int
    kind: str  # "command" | "modal"
    response_url: str | None = None
    status: int | None = None  # the HTTP status; None: no answer (the connection failed or was cut)
    body: str = ""
    error: str | None = None

    @property
    def marker(self) -> str:
        return f"P{self.index:04d}"

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and FAILED not in self.body


def fire(requester: SlackRequester, filing: Filing) -> Filing:
    """Send one filing; never raises (a refused or cut connection is recorded on the filing)."""
    user = f"UFILER{filing.index % CLIENTS:02d}"
    try:
        if filing.kind == "command":
            r = requester.command(
                f'file vendor="Burst Vendor {filing.index}" product={filing.marker} agency=ICE',
                user_id=user,
                channel_id=REVIEW,
                response_url=filing.response_url,
            )
        else:
            r = requester.view_submission(
                user_id=user,
                callback_id="file_contract_modal",
                view_id=f"VBURST{filing.index:04d}",
                state_values=file_form_state(
                    vendor=f"Burst Vendor {filing.index}",
                    product=filing.marker,
                    agency="ICE",
                    purpose="operational",
                ),
            )
        filing.status, filing.body = r.status, r.body
    except Exception as exc:  # noqa: BLE001 - the server was killed: connection refused / reset / cut
        filing.error = f"{type(exc).__name__}: {exc}"
    return filing


def burst_and_kill(
    server: Server, requester: SlackRequester, filings: list[Filing], kill_after: int
) -> float | None:
    """Fire every filing from CLIENTS threads and SIGKILL the server from the client thread that sees the
    ``kill_after``-th acknowledgement; returns when the kill happened (time.monotonic), None if it never did."""
    lock = threading.Lock()
    acks = [0]
    killing, killed = threading.Event(), threading.Event()
    kill_time: list[float] = []

    def one(filing: Filing) -> Filing:
        if killing.is_set():
            # Past the kill point no new request starts before the kill: the requests in flight meet it, and
            # the rest find the server gone, however slow or fast the machine is today.
            killed.wait(timeout=30)
        fire(requester, filing)
        if filing.acknowledged:
            with lock:
                acks[0] += 1
                kill_now = acks[0] == kill_after
            if kill_now:
                killing.set()
                server.kill()  # SIGKILL from this client thread, at once
                kill_time.append(time.monotonic())
                killed.set()
        return filing

    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="slack-client") as clients:
        for fut in [clients.submit(one, f) for f in filings]:
            fut.result()
    return kill_time[0] if kill_time else None


def marker_of(kind: str, payload: dict) -> str:
    """The marker (product) of the filing an inbox row holds."""
    if kind == "command":
        match = MARKER_RE.search(payload.get("text") or "")
        assert match, payload
        return match.group(1)
    assert kind == "file_modal", (kind, payload)
    return payload["form"]["product"]


def contract_markers(database: tuple[str, str | None], since: datetime | None = None) -> Counter:
    """How many contracts exist per filing marker (optionally only those filed on or after ``since``)."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    stmt = (
        select(Contract.product, func.count())
        .where(Contract.filed_by.like("UFILER%"))
        .group_by(Contract.product)
    )
    if since is not None:
        stmt = stmt.where(Contract.filed_at >= since)
    with unit_of_work(session_factory(engine)) as s:
        found = Counter(dict(s.execute(stmt).all()))
    engine.dispose()
    return found


def journaled(engine) -> dict[str, dict]:  # noqa: ANN001
    """The requests in the journal directory (on SQLite, ``<db>.journal``) that never reached the inbox table:
    acknowledged (each line is written before its 200) and not yet copied by the recorder. {key: entry}."""
    directory = journal_dir(engine)
    if directory is None or not os.path.isdir(directory):
        return {}
    return {
        e["key"]: e
        for name in sorted(os.listdir(directory))
        if name.endswith(".journal")
        for e in read_journal(os.path.join(directory, name))
    }


def inbox_at_kill(database: tuple[str, str | None]) -> tuple[dict[str, str], set[str], int]:
    """What the killed process left: {key: marker} of its pending inbox rows and uncommitted journal lines, the
    keys of those already carried out (their work committed with "inbox:<key>" in seen_request; only the row's
    deletion or the journal's "committed" line was missing), and how many were only in the journal."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    store = inbox_engine(engine)
    with unit_of_work(session_factory(store)) as s:
        rows = s.execute(select(InboxItem.key, InboxItem.kind, InboxItem.payload, InboxItem.status)).all()
    assert {r.status for r in rows} <= {"pending"}, Counter(r.status for r in rows)
    pending = {r.key: marker_of(r.kind, json.loads(r.payload)) for r in rows}
    only_journal = {
        k: marker_of(e["kind"], e["payload"]) for k, e in journaled(engine).items() if k not in pending
    }
    pending.update(only_journal)
    with unit_of_work(session_factory(engine)) as s:
        seen = set(s.execute(select(SeenRequest.key).where(SeenRequest.key.like("inbox:%"))).scalars())
    done = {k for k in pending if f"inbox:{k}" in seen}
    if store is not engine:
        store.dispose()
    engine.dispose()
    return pending, done, len(only_journal)


def backlog(database: tuple[str, str | None]) -> dict[str, int]:
    """What is left to carry out: inbox rows, outbox rows (pending/dead) and due reminders not yet sent."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    store = inbox_engine(engine)
    with unit_of_work(session_factory(store)) as s:
        inbox = dict(s.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status)).all())
    with unit_of_work(session_factory(engine)) as s:
        outbox = dict(
            s.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.status.in_(("pending", "dead")))
                .group_by(OutboxMessage.status)
            ).all()
        )
        reminders = s.execute(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.due_at <= DUE, Reminder.status == "pending")
        ).scalar_one()
    if store is not engine:
        store.dispose()
    engine.dispose()
    in_journal = len(journaled(engine))
    return {
        "inbox": sum(inbox.values()) + in_journal,
        "inbox_dead": inbox.get("dead", 0),
        "outbox": outbox.get("pending", 0),
        "outbox_dead": outbox.get("dead", 0),
        "reminders": reminders,
    }


def parent_rows(
    database: tuple[str, str | None],
) -> dict[int, tuple[str | None, list[tuple[int, str, str | None]]]]:
    """Per filed contract (the burst's filers only): its parent_ts and its parent outbox rows (id, status, ts)."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        contracts = dict(
            s.execute(select(Contract.id, Contract.parent_ts).where(Contract.filed_by.like("UFILER%"))).all()
        )
        rows = s.execute(
            select(
                OutboxMessage.contract_id, OutboxMessage.id, OutboxMessage.status, OutboxMessage.result_ts
            ).where(OutboxMessage.message_key == "parent", OutboxMessage.op == "post")
        ).all()
    engine.dispose()
    out: dict[int, tuple[str | None, list]] = {cid: (ts, []) for cid, ts in contracts.items()}
    for r in rows:
        if r.contract_id in out:
            out[r.contract_id][1].append((r.id, r.status, r.result_ts))
    return out


def wait_until_done(database: tuple[str, str | None], process: Worker, timeout: float) -> dict[str, int]:
    """Poll (with a deadline) until nothing is left to carry out."""
    deadline = time.monotonic() + timeout
    while True:
        left = backlog(database)
        if not any(left.values()) or left["inbox_dead"] or left["outbox_dead"]:
            return left
        assert process.proc.poll() is None, (
            f"the restarted process exited ({process.proc.returncode}); left: {left}"
        )
        assert time.monotonic() < deadline, f"not carried out within {timeout} s: {left}"
        time.sleep(0.2)


def test_sigkill_during_a_burst_of_filings_and_due_reminders_loses_and_doubles_nothing(database, double):
    t_start = time.monotonic()
    seed(database, double, stopworks=REMINDERS)
    filings = [Filing(i, "command" if i % 2 == 0 else "modal") for i in range(FILINGS)]
    for f in filings:
        if f.kind == "command":
            f.response_url = double.new_response_url(channel=REVIEW, user=f"UFILER{f.index % CLIENTS:02d}")
    # Slack does the call at once and answers late: delivery lags behind the burst, and a kill can land between
    # Slack posting a message and the bot recording it (the restarted process then finds it by its metadata).
    double.fail_share(
        1.0, kinds=("slow",), methods=("chat.postMessage", "chat.update", "response_url"), slow_seconds=0.05
    )

    a_launched = time.monotonic()
    a = Server(database, double.api_url, START)
    b: Worker | None = None
    try:
        a.ready()
        # A sweeps at once and starts delivering the reminders (10 per message): the burst starts on top of that.
        double.wait_for(lambda d: len(d.calls("chat.postMessage")) >= 1, timeout=20)
        requester = SlackRequester(a.url, SECRET, double=double, timeout=20)
        t_burst = time.monotonic()
        killed_at = burst_and_kill(a, requester, filings, KILL_AFTER)
        assert killed_at is not None, (
            f"only {sum(f.acknowledged for f in filings)} of {FILINGS} filings were acknowledged, A was not killed"
        )
        a_clock_at_kill = START + timedelta(seconds=killed_at - a_launched)
        double.fail_share(0)
        reminders_before_kill = len(refs(double, STOPWORK_RE))

        # ---- what A left -------------------------------------------------------------------------------------
        pending, done_at_kill, only_journal = inbox_at_kill(database)
        existing_at_kill = contract_markers(database)
        acknowledged = {f.marker for f in filings if f.acknowledged}
        unanswered = [f for f in filings if f.status is None]
        refused = [f for f in filings if f.status is not None and not f.acknowledged]
        to_replay = {m for k, m in pending.items() if k not in done_at_kill}
        acked_in_inbox = acknowledged & to_replay
        counts = (
            f"filings tried {FILINGS}, acknowledged {len(acknowledged)}, not answered {len(unanswered)}, "
            f"refused {len(refused)}; at the kill: {len(existing_at_kill)} filed, {len(pending)} in the inbox "
            f"({only_journal} only in the journal, {len(done_at_kill)} already carried out), {len(acked_in_inbox)} "
            f"acknowledged ones only in the inbox; reminders reported before the kill {reminders_before_kill}/{REMINDERS}"
        )
        assert not refused, f"{counts}; refused: {[(f.marker, f.status, f.body[:200]) for f in refused[:5]]}"
        assert len(acknowledged) >= KILL_AFTER and unanswered, counts
        assert acknowledged <= set(existing_at_kill) | to_replay, (
            f"{counts}; acknowledged but neither filed nor in the inbox at the kill: "
            f"{sorted(acknowledged - set(existing_at_kill) - to_replay)[:20]}"
        )
        # The kill must land while acknowledged work is still queued, or this test proves nothing about replay.
        assert acked_in_inbox, counts
        assert not (to_replay & set(existing_at_kill)), (
            counts,
            sorted(to_replay & set(existing_at_kill))[:20],
        )

        # ---- restart -----------------------------------------------------------------------------------------
        b_start = a_clock_at_kill + PAST_LEASES
        b = Worker(database, double.api_url, b_start).ready()
        t_restart = time.monotonic()
        left = wait_until_done(database, b, timeout=90)
        t_done = time.monotonic()
    finally:
        if a.proc.poll() is None:
            a.kill()
        a.proc.stdout.close()
        if b is not None:
            b.stop()
    assert not any(left.values()), f"{counts}; left: {left}"

    # ---- nothing lost, nothing doubled ---------------------------------------------------------------------
    found = contract_markers(database)
    replayed = contract_markers(database, since=b_start)
    counts += (
        f"; replayed by B {sum(replayed.values())} ({len(acknowledged & set(replayed))} acknowledged); "
        f"{sum(found.values())} filings exist"
    )
    doubled = {m: n for m, n in found.items() if n > 1}
    assert not doubled, f"{counts}; filed more than once: {doubled}"
    lost = sorted(acknowledged - set(found))
    assert not lost, f"{counts}; acknowledged but never filed: {lost}"
    assert set(found) <= {f.marker for f in filings}, counts
    assert set(replayed) == to_replay, (
        f"{counts}; B carried out {sorted(set(replayed) - to_replay)[:20]} not left in the inbox, and not "
        f"{sorted(to_replay - set(replayed))[:20]} left there"
    )

    reported = refs(double, STOPWORK_RE)
    state = db_state(database)
    assert len(reported) == REMINDERS and set(reported.values()) == {1}, (
        f"{counts}; reminders reported: {len(reported)}, more than once: "
        f"{ {k: v for k, v in reported.items() if v > 1} }"
    )
    assert state["reminders"] == {"sent": REMINDERS}, (counts, state["reminders"])

    per_id = posts_per_outbox_id(double)
    assert set(per_id.values()) == {1}, (
        f"{counts}; posted more than once: { {k: v for k, v in per_id.items() if v > 1} }"
    )
    assert set(per_id) == state["post_ids"], (
        f"{counts}; sent without a message: {sorted(state['post_ids'] - set(per_id))[:20]}, "
        f"a message of no sent row: {sorted(set(per_id) - state['post_ids'])[:20]}"
    )
    assert state["outbox"].get("pending", 0) == 0 and state["outbox"].get("dead", 0) == 0, (
        counts,
        state["outbox"],
    )

    parents = parent_rows(database)
    top_level = Counter()
    for m in double.messages(REVIEW):
        if m.get("thread_ts") in (None, m["ts"]):
            match = PARENT_RE.search(m["text"])
            top_level[int(match.group(1)) if match else None] += 1
    assert len(parents) == sum(found.values()), counts
    for cid, (parent_ts, posts) in parents.items():
        assert len(posts) == 1 and posts[0][1] == "sent" and posts[0][2] == parent_ts, (
            counts,
            cid,
            parent_ts,
            posts,
        )
        assert per_id[posts[0][0]] == 1 and top_level[cid] == 1, (counts, cid, posts, top_level[cid])
    assert set(top_level) == set(parents), (counts, sorted(set(top_level) - set(parents))[:20])

    replies = Counter(r["url"] for r in double.responses())
    assert set(replies.values()) <= {1}, (
        f"{counts}; response_url answered twice: { {u: n for u, n in replies.items() if n > 1} }"
    )
    dms = Counter(
        int(n)
        for u in range(CLIENTS)
        for m in double.messages(double.dm_channel(f"UFILER{u:02d}"))
        for n in PARENT_RE.findall(m["text"])
    )
    assert set(dms.values()) <= {1}, (
        f"{counts}; a filing reported twice by DM: { {c: n for c, n in dms.items() if n > 1} }"
    )
    deferred_commands = [
        f for f in filings if f.kind == "command" and f.acknowledged and "hourglass" in f.body
    ]
    lookups = len(double.calls("conversations.history")) + len(double.calls("conversations.replies"))
    unreplied = [f.marker for f in deferred_commands if replies[f.response_url] == 0]
    print(
        f"\nsigkill burst ({database[0].split(':')[0]}): {counts}; {len(reported)} reminders reported once each; "
        f"{len(per_id)} outbox messages posted once each; {len(parents)} parents once each; "
        f"{len(deferred_commands)} deferred command replies, {len(unreplied)} never answered; "
        f"{lookups} metadata look-ups for posts of a lapsed claim; burst {killed_at - t_burst:.1f} s, B done in {t_done - t_restart:.1f} s, "
        f"test {time.monotonic() - t_start:.1f} s"
    )


JOURNAL_FILINGS = 120
JOURNAL_KILL_AFTER = 60


def test_sigkill_while_the_inbox_table_is_locked_loses_nothing_acknowledged(database, double):
    """The journal alone carries acknowledged requests: with the inbox table locked (the recorder cannot copy a
    line, the worker cannot renew a lease) A keeps acknowledging from its journal; SIGKILL; B takes A's journal and
    every acknowledged filing exists exactly once (one A carried out before the kill is found seen, not refiled)."""
    url, schema = database
    if not url.startswith("sqlite"):
        pytest.skip(
            "the journal is on by default beside a SQLite file; PostgreSQL records in the table first"
        )
    engine = make_engine(url, schema=schema)
    migrate(engine)
    store = inbox_engine(engine)
    lock = sqlite3.connect(store.url.database, isolation_level=None, timeout=10)
    store.dispose()
    locked = False
    filings = [Filing(i, "command" if i % 2 == 0 else "modal") for i in range(JOURNAL_FILINGS)]
    for f in filings:
        if f.kind == "command":
            f.response_url = double.new_response_url(channel=REVIEW, user=f"UFILER{f.index % CLIENTS:02d}")
    a = Server(database, double.api_url, START)
    b: Worker | None = None
    try:
        a.ready()
        lock.execute("BEGIN IMMEDIATE")  # from now on A cannot write its inbox table
        locked = True
        requester = SlackRequester(a.url, SECRET, double=double, timeout=20)
        killed_at = burst_and_kill(a, requester, filings, JOURNAL_KILL_AFTER)
        assert killed_at is not None, (
            f"only {sum(f.acknowledged for f in filings)} of {JOURNAL_FILINGS} filings were acknowledged"
        )
        lock.execute("ROLLBACK")  # A is dead: what it left can be read
        locked = False
        pending, done_at_kill, only_journal = inbox_at_kill(database)
        existing_at_kill = contract_markers(database)
        acknowledged = {f.marker for f in filings if f.acknowledged}
        to_replay = {m for k, m in pending.items() if k not in done_at_kill}
        counts = (
            f"filings tried {JOURNAL_FILINGS}, acknowledged {len(acknowledged)}; at the kill: "
            f"{len(existing_at_kill)} filed, {only_journal} requests only in the journal "
            f"({len(done_at_kill)} of them carried out already), {len(to_replay)} to carry out"
        )
        assert only_journal == len(pending), f"{counts}: the inbox table was locked, yet it holds rows"
        assert acknowledged <= set(existing_at_kill) | to_replay, (
            f"{counts}; acknowledged but neither filed nor journaled: "
            f"{sorted(acknowledged - set(existing_at_kill) - to_replay)[:20]}"
        )
        assert acknowledged & to_replay, counts  # the replay of journal-only requests is really exercised
        b = Worker(database, double.api_url, START + PAST_LEASES).ready()
        left = wait_until_done(database, b, timeout=60)
    finally:
        if locked:
            lock.execute("ROLLBACK")
        lock.close()
        if a.proc.poll() is None:
            a.kill()
        a.proc.stdout.close()
        if b is not None:
            b.stop()
        engine.dispose()
    assert not any(left.values()), f"{counts}; left: {left}"
    found = contract_markers(database)
    replayed = contract_markers(database, since=START + PAST_LEASES)
    assert not {m: n for m, n in found.items() if n > 1}, f"{counts}; filed more than once"
    assert acknowledged <= set(found), f"{counts}; lost: {sorted(acknowledged - set(found))}"
    assert set(replayed) == to_replay, (counts, sorted(set(replayed) ^ to_replay)[:20])
    directory = journal_dir(make_engine(url, schema=schema))
    assert not [
        n
        for n in os.listdir(directory)
        if n.endswith(".journal") and read_journal(os.path.join(directory, n))
    ]
    print(
        f"\nsigkill with the inbox table locked: {counts}; replayed by B {sum(replayed.values())}; "
        f"{sum(found.values())} filings exist, each once"
    )
