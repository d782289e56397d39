"""SIGKILL the server in the middle of a burst of 300 filings with reminders due; restart it on the same database:
every filing it answered "Filed CR-n" exists exactly once as CR-n, nothing exists twice, and every reminder and
message is sent at most once (each reminder exactly once).

The bot answers a request only after its work committed (the HTTP 200 carries "Filed CR-n"), so an answered
filing can never be lost to a crash; a request in flight at the kill either committed (it exists, its filer got
no answer) or did not (it does not exist). Nothing is replayed after a restart: there is nothing to replay.

The scenario, on SQLite and on PostgreSQL (the ``database`` fixture):

1. 100 contracts with a due stop-work reminder each are seeded (tests/test_concurrency.py ``seed``).
2. Process A (tests/support/worker_process.py ``--serve``: the real app over HTTP, the reminder sweep and the
   outbox delivery in the background) starts; once it has posted its first reminder message, CLIENTS client
   threads fire 300 ``/contract file vendor="Burst Vendor <i>" product=P<i> agency=ICE`` commands at it, signed
   as Slack signs them, each with its own response_url on the Slack double. The vendor names the filing.
   The double answers ``chat.postMessage`` a little late (after posting), so delivery lags behind the burst and
   a kill can land between Slack posting a message and the bot recording that it did.
3. A is SIGKILLed a random 0-20 ms after the clients have seen KILL_AFTER "Filed" answers, the burst going on
   meanwhile: the requests in flight meet the kill wherever they are (parsing, writing, committing, answering),
   and the rest find the server gone (connection refused). Their filers get no answer.
4. Process B starts on the same database, its business clock past every lease A held (outbox 60 s, reminder
   claims 5 min), answers a few new filings, and takes over what A left: the test polls (with a deadline) until
   the messages A held at the kill (claimed, perhaps already posted to Slack) are sent and every due reminder is
   reported in the managers' channel; then B is stopped. (The rest of the backlog is ordinary delivery, tested
   elsewhere; waiting for all of it takes 30 s at the tests' Slack rates: 600 posts to the review channel at 20 a
   second. The audit checkpoint that the burst's 100th audit entry queues for the managers' channel is behind
   them, so the wait asks Slack which reminders it holds, not whether any message to that channel is pending.)

Checked (the counts are printed and in every assertion message):

* answered "Filed CR-n": the filing exists exactly once, and it is CR-n;
* answered "nothing was recorded": it does not exist; "cannot confirm": it exists at most once; no answer (the
  kill): it exists at most once, and then it had been committed by A (B files nothing by itself); any other
  answer fails the test;
* no vendor exists twice, and only the vendors tried exist; every burst contract has exactly one ``file`` audit
  entry and the audit hash chain is intact; B files new contracts with new, distinct numbers;
* nothing is said through the filings' response_urls (the answer is the 200 itself);
* reminders: each of the 100 is reported in the managers' channel exactly once, and all are ``sent``;
* messages: every outbox row Slack holds a message for holds exactly one (message metadata names the row) and
  is recorded as sent, and every sent row has its message; none is dead; every contract has one parent message
  row, and a sent one is in the review channel exactly once (an unsent one not at all).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.console.slack import SlackDouble
from storage.db import make_engine, session_factory, unit_of_work
from storage.models import AuditEntry, Contract, OutboxMessage, Reminder
from storage.repositories import verify_audit_chain
from tests.conftest import REVIEW, audit_keys
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

FILINGS = 300
REMINDERS = 100
CLIENTS = 6
KILL_AFTER = 100  # "Filed" answers the clients have seen when A is about to be killed
MAX_JITTER = 0.02  # A is killed up to this long after that: anywhere in the requests then in flight
AFTER_RESTART = 5  # filings sent to B
SECRET = "s"  # worker_process's signing secret
# B's business clock starts this far past A's at the kill: past the outbox (60 s) and reminder claim (5 min)
# leases A held.
PAST_LEASES = timedelta(minutes=6)
FILED_RE = re.compile(r"^Filed \*CR-(\d+)\*")
PARENT_RE = re.compile(r"CR-(\d+)")
NOTHING = "nothing was recorded"
UNCONFIRMED = "cannot confirm"
VENDOR = "Burst Vendor {}"


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
    response_url: str
    status: int | None = None  # the HTTP status; None: no answer (the connection was refused or cut)
    answer: str = ""
    error: str | None = None

    @property
    def vendor(self) -> str:
        return VENDOR.format(self.index)

    @property
    def user(self) -> str:
        return f"UFILER{self.index % CLIENTS:02d}"

    @property
    def filed_as(self) -> int | None:
        """n when the answer was "Filed CR-n"."""
        match = FILED_RE.match(self.answer) if self.status == 200 else None
        return int(match.group(1)) if match else None

    @property
    def outcome(self) -> str:
        """filed | nothing recorded | unconfirmed | no answer | unexpected."""
        if self.status is None:
            return "no answer"
        if self.filed_as is not None:
            return "filed"
        if self.status == 200 and NOTHING in self.answer:
            return "nothing recorded"
        if self.status == 200 and UNCONFIRMED in self.answer:
            return "unconfirmed"
        return "unexpected"


def fire(requester: SlackRequester, filing: Filing) -> Filing:
    """Send one filing; never raises (a refused or cut connection is recorded on the filing)."""
    try:
        r = requester.command(
            f'file vendor="{filing.vendor}" product=P{filing.index:04d} agency=ICE',
            user_id=filing.user,
            channel_id=REVIEW,
            response_url=filing.response_url,
        )
        filing.status = r.status
        filing.answer = (r.json or {}).get("text") or r.body
    except Exception as exc:  # noqa: BLE001 - the server was killed: connection refused / reset / cut
        filing.error = f"{type(exc).__name__}: {exc}"
    return filing


def burst_and_kill(
    server: Server, requester: SlackRequester, filings: list[Filing], kill_after: int, jitter: float
) -> float | None:
    """Fire every filing from CLIENTS threads and SIGKILL the server ``jitter`` s after the ``kill_after``-th
    "Filed" answer (the burst goes on meanwhile, so the kill lands at any point of a request: parsing, writing,
    committing, answering); returns when the kill happened (time.monotonic), None if it never did."""
    lock = threading.Lock()
    filed = [0]
    due = threading.Event()
    kill_time: list[float] = []

    def killer() -> None:
        if due.wait(timeout=120):
            time.sleep(jitter)  # not a wait for a result: where in the burst the kill lands
            server.kill()  # SIGKILL, at once
            kill_time.append(time.monotonic())

    def one(filing: Filing) -> Filing:
        fire(requester, filing)  # after the kill: refused at once (nothing listens on the port any more)
        if filing.filed_as is not None:
            with lock:
                filed[0] += 1
                if filed[0] == kill_after:
                    due.set()
        return filing

    thread = threading.Thread(target=killer, name="killer", daemon=True)
    thread.start()
    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="slack-client") as clients:
        for fut in [clients.submit(one, f) for f in filings]:
            fut.result()
    due.set()  # never reached kill_after: let the killer go (it kills a server that is idle by now)
    thread.join(timeout=30)
    return kill_time[0] if kill_time and filed[0] >= kill_after else None


def contracts_by_vendor(database: tuple[str, str | None]) -> dict[str, list[int]]:
    """{vendor: [contract ids]} of the burst's filers' contracts."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        rows = s.execute(
            select(Contract.vendor, Contract.id)
            .where(Contract.filed_by.like("UFILER%"))
            .order_by(Contract.id)
        ).all()
    engine.dispose()
    out: dict[str, list[int]] = {}
    for vendor, cid in rows:
        out.setdefault(vendor, []).append(cid)
    return out


def audit_of_filings(database: tuple[str, str | None]) -> tuple[Counter, str | None]:
    """How many ``file`` audit entries name each contract, and what is wrong with the hash chain (None: intact)."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        per_contract = Counter(
            dict(
                s.execute(
                    select(AuditEntry.contract_id, func.count())
                    .where(AuditEntry.action == "file", AuditEntry.outcome == "ok")
                    .group_by(AuditEntry.contract_id)
                ).all()
            )
        )
        _, broken, why = verify_audit_chain(s, audit_keys(url))
    engine.dispose()
    return per_contract, None if broken is None else f"seq {broken.seq}: {why}"


def claimed(database: tuple[str, str | None]) -> set[int]:
    """Outbox rows pending under a sender's lease: right after the kill, what A was delivering (maybe posted to
    Slack already, not yet recorded as sent)."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        ids = set(
            s.execute(
                select(OutboxMessage.id).where(
                    OutboxMessage.status == "pending", OutboxMessage.lease_until.is_not(None)
                )
            ).scalars()
        )
    engine.dispose()
    return ids


def left_over(database: tuple[str, str | None], double: SlackDouble, rows: set[int]) -> dict[str, int]:
    """What B has yet to finish: ``rows`` still pending, due reminders not yet swept, reminders not yet reported
    in the managers' channel (as Slack holds it); and how many outbox rows are dead (none should be)."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        statuses = Counter(
            s.execute(select(OutboxMessage.status).where(OutboxMessage.id.in_(rows))).scalars()
        )
        reminders = s.execute(
            select(func.count())
            .select_from(Reminder)
            .where(Reminder.due_at <= DUE, Reminder.status == "pending")
        ).scalar_one()
        dead = s.execute(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "dead")
        ).scalar_one()
    engine.dispose()
    unreported = REMINDERS - len(refs(double, STOPWORK_RE))
    return {"claimed": statuses["pending"], "reminders": reminders, "unreported": unreported, "dead": dead}


def dead_rows(database: tuple[str, str | None]) -> list[tuple]:
    """(id, op, target, message_key, last_error) of the outbox rows kept as dead, for assertion messages."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        rows = s.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.op,
                OutboxMessage.target,
                OutboxMessage.message_key,
                OutboxMessage.last_error,
            ).where(OutboxMessage.status == "dead")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


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


def max_contract_id(database: tuple[str, str | None]) -> int:
    url, schema = database
    engine = make_engine(url, schema=schema)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT MAX(id) FROM contract")).scalar_one()
    engine.dispose()
    return int(top or 0)


def wait_until_taken_over(
    database: tuple[str, str | None], double: SlackDouble, process: Worker, rows: set[int], timeout: float
) -> dict[str, int]:
    """Poll (with a deadline) until B has delivered the messages A held at the kill and every due reminder."""
    deadline = time.monotonic() + timeout
    while True:
        left = left_over(database, double, rows)
        if not any(left.values()) or left["dead"]:
            return left
        assert process.proc.poll() is None, (
            f"the restarted process exited ({process.proc.returncode}); left: {left}"
        )
        assert time.monotonic() < deadline, f"not taken over within {timeout} s: {left}"
        time.sleep(0.1)


@pytest.mark.long
def test_sigkill_during_a_burst_of_filings_loses_and_doubles_nothing_answered(database, double):
    t_start = time.monotonic()
    # Slack's rate limits are not what this is about (the outbox's pacing and 429s have tests of their own): off,
    # so that the double never holds delivery back.
    double.limits = False
    seed(database, double, stopworks=REMINDERS)
    filings = [
        Filing(i, double.new_response_url(channel=REVIEW, user=f"UFILER{i % CLIENTS:02d}"))
        for i in range(FILINGS)
    ]
    # Slack posts at once and answers late: delivery lags behind the burst, and a kill can land between Slack
    # posting a message and the bot recording it (the restarted process then finds it by its metadata).
    double.fail_share(1.0, kinds=("slow",), methods=("chat.postMessage",), slow_seconds=0.02)

    a_launched = time.monotonic()
    a = Server(database, double.api_url, START)
    b: Server | None = None
    try:
        a.ready()
        # A sweeps at once and starts reporting the reminders (10 per message): the burst starts on top of that.
        double.wait_for(lambda d: len(d.calls("chat.postMessage")) >= 1, timeout=20)
        t_burst = time.monotonic()
        jitter = random.uniform(0, MAX_JITTER)
        requester = SlackRequester(a.url, SECRET, double=double, timeout=20)
        killed_at = burst_and_kill(a, requester, filings, KILL_AFTER, jitter)
        outcomes = Counter(f.outcome for f in filings)
        assert killed_at is not None, f"A was never killed: {dict(outcomes)}"
        double.fail_share(0)
        a_clock_at_kill = START + timedelta(seconds=killed_at - a_launched)
        reminders_before_kill = sum(refs(double, STOPWORK_RE).values())
        existing_at_kill = contracts_by_vendor(database)
        top_at_kill = max_contract_id(database)

        held_at_kill = claimed(database)  # what A was delivering: maybe posted to Slack, not recorded
        posted_at_kill = set(posts_per_outbox_id(double))

        # ---- restart: B answers new filings and takes over what A held ---------------------------------------
        b = Server(database, double.api_url, a_clock_at_kill + PAST_LEASES).ready()
        t_restart = time.monotonic()
        b_requester = SlackRequester(b.url, SECRET, double=double, timeout=20)
        after = [
            fire(b_requester, Filing(FILINGS + i, double.new_response_url(channel=REVIEW)))
            for i in range(AFTER_RESTART)
        ]
        left = wait_until_taken_over(database, double, b, held_at_kill, timeout=60)
        t_done = time.monotonic()
    finally:
        if a.proc.poll() is None:
            a.kill()
        a.proc.stdout.close()
        if b is not None:
            b.stop()  # SIGTERM: B finishes the message in hand, records it, and hands the rest back

    by_outcome = {o: [f for f in filings if f.outcome == o] for o in outcomes}
    summary = (
        f"filings tried {FILINGS}: {dict(outcomes)}; killed {jitter * 1000:.0f} ms after the {KILL_AFTER}th "
        f"answer; {sum(map(len, existing_at_kill.values()))} existed at the kill; reminders reported before the "
        f"kill {reminders_before_kill}/{REMINDERS}"
    )
    assert not by_outcome.get("unexpected"), (
        f"{summary}; unexpected answers: {[(f.index, f.status, f.answer[:200]) for f in by_outcome['unexpected'][:5]]}"
    )
    assert outcomes["filed"] >= KILL_AFTER and outcomes["no answer"], summary
    assert not any(left.values()), f"{summary}; left: {left}; dead: {dead_rows(database)[:5]}"
    summary += (
        f"; A held {len(held_at_kill)} messages at the kill, {len(held_at_kill & posted_at_kill)} of them already "
        "posted to Slack"
    )

    # ---- answered "Filed CR-n": exists exactly once, as CR-n; nothing exists twice ------------------------
    found = contracts_by_vendor(database)
    tried = {f.vendor for f in filings} | {f.vendor for f in after}
    doubled = {v: ids for v, ids in found.items() if len(ids) > 1}
    assert not doubled, f"{summary}; filed more than once: {doubled}"
    assert set(found) <= tried, f"{summary}; unknown vendors: {sorted(set(found) - tried)[:10]}"
    wrong = {
        f.vendor: (f.filed_as, found.get(f.vendor))
        for f in by_outcome["filed"]
        if found.get(f.vendor) != [f.filed_as]
    }
    assert not wrong, (
        f"{summary}; answered 'Filed CR-n' but not (only) CR-n: {dict(list(wrong.items())[:10])}"
    )
    told_nothing = [f.vendor for f in by_outcome.get("nothing recorded", []) if f.vendor in found]
    assert not told_nothing, f"{summary}; told 'nothing was recorded' but filed: {told_nothing[:10]}"
    in_flight = [f for f in filings if f.outcome in ("no answer", "unconfirmed") and f.vendor in found]
    assert all(found[f.vendor] == existing_at_kill.get(f.vendor) for f in in_flight), summary
    summary += f"; {len(in_flight)} of the unanswered were committed before the kill"

    # ---- B works: new filings, with new and distinct numbers ---------------------------------------------
    numbers = [f.filed_as for f in after]
    assert all(n is not None and n > top_at_kill for n in numbers) and len(set(numbers)) == AFTER_RESTART, (
        f"{summary}; after the restart (top number at the kill {top_at_kill}): {[(f.status, f.answer[:120], f.error) for f in after]}"
    )
    assert all(found[f.vendor] == [f.filed_as] for f in after), summary

    # ---- the audit log agrees with the contracts --------------------------------------------------------
    audited, chain = audit_of_filings(database)
    burst_ids = {cid for ids in found.values() for cid in ids}
    assert chain is None, f"{summary}; audit chain broken at {chain}"
    assert {cid: audited[cid] for cid in burst_ids if audited[cid] != 1} == {}, summary

    # ---- nothing said through response_urls; reminders and messages exactly once ------------------------
    assert not double.responses(), f"{summary}; answered through a response_url: {double.responses()[:3]}"
    reported = refs(double, STOPWORK_RE)
    state = db_state(database)
    assert len(reported) == REMINDERS and set(reported.values()) == {1}, (
        f"{summary}; reminders reported: {len(reported)}, more than once: { {k: v for k, v in reported.items() if v > 1} }"
    )
    assert state["reminders"] == {"sent": REMINDERS}, (summary, state["reminders"])
    per_id = posts_per_outbox_id(double)
    assert set(per_id.values()) == {1}, (
        f"{summary}; posted more than once: { {k: v for k, v in per_id.items() if v > 1} }"
    )
    assert set(per_id) == state["post_ids"], (
        f"{summary}; sent without a message: {sorted(state['post_ids'] - set(per_id))[:20]}, "
        f"a message of no sent row: {sorted(set(per_id) - state['post_ids'])[:20]}"
    )
    assert state["outbox"].get("dead", 0) == 0, (summary, state["outbox"])
    parents = parent_rows(database)
    assert set(parents) == burst_ids, summary
    top_level: Counter = Counter()
    for m in double.messages(REVIEW):
        if m.get("thread_ts") in (None, m["ts"]):
            match = PARENT_RE.search(m["text"])
            top_level[int(match.group(1)) if match else None] += 1
    for cid, (parent_ts, posts) in parents.items():
        assert len(posts) == 1, (summary, cid, posts)  # one parent message per contract in the outbox
        (row_id, status, result_ts) = posts[0]
        if status == "sent":
            assert result_ts == parent_ts and per_id[row_id] == 1 and top_level[cid] == 1, (
                summary,
                cid,
                parent_ts,
                posts,
                top_level[cid],
            )
        else:  # not delivered yet (B was stopped once it had taken over): not in Slack either
            assert status == "pending" and parent_ts is None and top_level[cid] == 0, (
                summary,
                cid,
                posts,
                top_level[cid],
            )
    print(
        f"\nsigkill burst ({database[0].split(':')[0]}): {summary}; {len(found)} filings exist, each once; "
        f"{len(reported)} reminders reported once each; {len(per_id)} outbox messages posted once each; burst "
        f"{killed_at - t_burst:.1f} s, B took over in {t_done - t_restart:.1f} s, test {time.monotonic() - t_start:.1f} s"
    )
