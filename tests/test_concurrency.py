"""Crash and multi-process tests: real bot processes (tests/support/worker_process.py) on one database.

* A process is SIGKILLed while it sweeps and while it delivers; a restarted one finishes the work: nothing is
  lost and nothing is posted twice (every post carries its outbox id as Slack message metadata, and the Slack
  double holds exactly one message per outbox id).
* Two processes sweep 1,000 due reminders on one PostgreSQL database (SKIP LOCKED) and on one SQLite file
  (BEGIN IMMEDIATE): each reminder is sent exactly once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select

from storage.db import make_engine, migrate, session_factory, unit_of_work
from storage.models import Contract, OutboxMessage, Reminder
from tests.conftest import MANAGERS, REVIEW

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
DUE = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 in New York: due an hour ago
STOPWORK_RE = re.compile(r"stop-work order on \*CR-(\d+)\*")
NOTICE_RE = re.compile(r"§4\(b\) notice to the APNSA for \*CR-(\d+)\*")


class Worker:
    """One bot process (python -m tests.support.worker_process)."""

    def __init__(
        self, database: tuple[str, str | None], api_url: str, start: datetime, batch: int = 100
    ) -> None:
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
            str(batch),
        ]
        if schema:
            cmd += ["--schema", schema]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        self.name: str | None = None

    def ready(self) -> Worker:
        """Block until the process says it is running (a line on its stdout, not a sleep)."""
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"worker did not start: {line!r} (exit {self.proc.poll()})"
        self.name = line.split()[1]
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no goodbye."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.stdout.close()


def seed(database: tuple[str, str | None], double, *, stopworks: int, notices: int = 0) -> list[int]:  # noqa: ANN001
    """Migrate and insert contracts with one due reminder each; returns the ids of the §4(b) ones."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    client = WebClient(token="xoxb-test", base_url=double.api_url)
    notice_ids = []
    # The parents of the §4(b) contracts stand for messages posted long ago, not by the bot under test: they are
    # put in place with the double's rate limits off (the bot's own posts meet them as usual).
    limits, double.limits = double.limits, False
    with unit_of_work(session_factory(engine)) as s:
        for i in range(stopworks + notices):
            excluded = i >= stopworks
            parent_ts = (
                client.chat_postMessage(channel=REVIEW, text=f"parent {i}")["ts"] if excluded else None
            )
            c = Contract(
                vendor=f"Vendor {i}",
                product="Probe",
                agency="FBI",
                filed_by="U1",
                filed_at=START,
                status="intake",
                channel_id=REVIEW,
                parent_ts=parent_ts,
                purpose="excluded" if excluded else "operational",
                awarded_on=date(2026, 10, 25) if excluded else None,
                stopwork_since=None if excluded else date(2026, 11, 23),
            )
            s.add(c)
            s.flush()
            if excluded:
                notice_ids.append(c.id)
                s.add(
                    Reminder(
                        key=f"excluded:{c.id}:30d",
                        kind="excluded-notice",
                        due_at=DUE,
                        contract_id=c.id,
                        data=json.dumps({"label": "30d"}),
                    )
                )
            else:
                s.add(
                    Reminder(
                        key=f"stopwork:{c.id}:2026-11-23:{DUE.isoformat()}",
                        kind="stopwork",
                        due_at=DUE,
                        contract_id=c.id,
                        data=json.dumps({"since": "2026-11-23"}),
                    )
                )
    double.limits = limits
    engine.dispose()
    return notice_ids


def refs(double, pattern: re.Pattern, channel: str = MANAGERS) -> Counter:  # noqa: ANN001
    """How often each contract number appears in reminder messages in a channel (threads included)."""
    found: Counter = Counter()
    for m in double.messages(channel):
        found.update(int(n) for n in pattern.findall(m["text"]))
    return found


def posts_per_outbox_id(double) -> Counter:  # noqa: ANN001
    """Messages Slack holds per outbox row."""
    ids: Counter = Counter()
    for m in double.messages():
        meta = m.get("metadata") or {}
        if meta.get("event_type") == "contract_bot_outbox":
            ids[meta["event_payload"]["outbox_id"]] += 1
    return ids


def db_state(database: tuple[str, str | None]) -> dict:
    """Counts of reminder and outbox rows by status, and who claimed the due reminders."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    with unit_of_work(session_factory(engine)) as s:
        reminders = dict(
            s.execute(
                select(Reminder.status, func.count()).where(Reminder.due_at <= DUE).group_by(Reminder.status)
            ).all()
        )
        outbox = dict(
            s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
        )
        by_worker = Counter(
            dict(
                s.execute(
                    select(Reminder.claimed_by, func.count())
                    .where(Reminder.due_at <= DUE)
                    .group_by(Reminder.claimed_by)
                ).all()
            )
        )
        post_ids = set(
            s.execute(
                select(OutboxMessage.id).where(
                    OutboxMessage.op.in_(("post", "dm")), OutboxMessage.status == "sent"
                )
            ).scalars()
        )
    engine.dispose()
    return {"reminders": reminders, "outbox": outbox, "by_worker": by_worker, "post_ids": post_ids}


@pytest.mark.long
def test_sigkill_while_sweeping_and_delivering_loses_and_doubles_nothing(database, double):
    stopworks, notices = 300, 20
    notice_ids = seed(database, double, stopworks=stopworks, notices=notices)
    api = double.api_url
    # Every post is answered slowly: a kill lands between Slack posting a message and our commit of it.
    double.fail_share(1.0, kinds=("slow",), methods=("chat.postMessage",), slow_seconds=0.1)

    first = Worker(database, api, START, batch=50).ready()
    first.kill()  # at once: most likely inside its first sweep transaction
    second = Worker(database, api, START + timedelta(seconds=5), batch=50).ready()
    double.wait_for_calls("chat.postMessage", count=notices + 30 + 8, timeout=30)
    second.kill()  # in the middle of delivery
    posted_before_restart = len(double.calls("chat.postMessage")) - notices
    third = Worker(database, api, START + timedelta(minutes=5), batch=50).ready()  # past every lease
    try:

        def all_there(d) -> bool:  # noqa: ANN001
            return (
                len(refs(d, STOPWORK_RE)) == stopworks
                and len(refs(d, NOTICE_RE)) == notices
                and len(refs(d, NOTICE_RE, REVIEW)) == notices
            )

        double.wait_for(all_there, timeout=40)
    finally:
        third.stop()
    state = db_state(database)
    manager = refs(double, STOPWORK_RE)
    assert set(manager.values()) == {1} and len(manager) == stopworks
    assert set(refs(double, NOTICE_RE).values()) == {1} and set(refs(double, NOTICE_RE, REVIEW)) == set(
        notice_ids
    )
    assert set(refs(double, NOTICE_RE, REVIEW).values()) == {1}
    per_id = posts_per_outbox_id(double)
    assert set(per_id.values()) == {1}, {k: v for k, v in per_id.items() if v > 1}
    assert set(per_id) == state["post_ids"]
    assert state["reminders"] == {"sent": stopworks + notices}
    assert state["outbox"].get("pending", 0) == 0 and state["outbox"].get("dead", 0) == 0
    print(
        f"\ncrash test ({database[0].split(':')[0]}): {stopworks + notices} reminders, {len(per_id)} messages; "
        f"{posted_before_restart} posts before the second kill, "
        f"{len(double.calls('conversations.history')) + len(double.calls('conversations.replies'))} "
        f"metadata look-ups after it; reminders claimed per process: {dict(state['by_worker'])}"
    )


@pytest.mark.long
def test_two_processes_send_1000_due_reminders_exactly_once(database, double):
    count = 1000
    seed(database, double, stopworks=count)
    workers = [Worker(database, double.api_url, START, batch=100) for _ in range(2)]
    try:
        for w in workers:
            w.ready()
        double.wait_for(lambda d: len(refs(d, STOPWORK_RE)) == count, timeout=40)
    finally:
        for w in workers:
            w.stop()
    state = db_state(database)
    sent = refs(double, STOPWORK_RE)
    assert len(sent) == count and set(sent.values()) == {1}
    per_id = posts_per_outbox_id(double)
    assert set(per_id.values()) == {1} and set(per_id) == state["post_ids"]
    assert state["reminders"] == {"sent": count}
    assert state["outbox"].get("pending", 0) == 0
    by_worker = state["by_worker"]
    pids = Counter()
    for name, n in by_worker.items():
        pids[name.split(":")[1]] += n
    assert set(pids) <= {w.name.split(":")[1] for w in workers}
    print(
        f"\ntwo processes ({database[0].split(':')[0]}): {count} reminders sent once each in {len(per_id)} "
        f"messages; claimed per process (pid: reminders): {dict(pids)}"
    )
