"""Acknowledged requests: recorded before the acknowledgement, carried out once, replayed after a crash.

Slack gives 3 seconds for the HTTP 200 and a user expects it in far less. A request that changes something is
recorded before the acknowledgement, so once Slack has its 200 the request cannot be lost:

* with a request journal (storage.journal; the default beside a SQLite file) as one line appended to this
  process's journal file; the recorder thread copies the lines into the ``inbox`` table afterwards, in batches, at
  a quiet moment, and a dead process's journal is copied by the next process that looks;
* without one, as a row of the ``inbox`` table, committed by the recorder thread before the acknowledgement.

The transaction that carries a request out also records its key as seen (storage.db.settling), and rows left by a
process that died are taken over when their lease runs out and carried out then, once. A request carried out
before the recorder got to it is never written to the table at all. On SQLite the inbox is a file of its own
(storage.db.inbox_engine): copying a request never waits behind the main database's single write lock.

Carrying out happens in one of two places:

* at once, in the request's own thread pool, when nothing is queued (the result then goes in the
  acknowledgement itself, as a user expects from a quiet system);
* otherwise in order, by one background worker that gives way to acknowledgements: before each job it waits
  (up to ``yield_max`` seconds) until no request has been acknowledged for ``AckGate.settle`` (20 ms). Under a
  burst the acknowledgements keep the interpreter, the queue grows, and it drains as soon as the burst ends;
  the answer reaches the user through ``response_url`` or a direct message.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.clock import Clock
from storage import repositories as repo
from storage.db import InboxItemGone, SessionFactory, session_factory, settling, unit_of_work
from storage.journal import JournalBroken, RequestJournal

__all__ = ["GONE", "AckGate", "Inbox", "InboxItemGone", "InboxJob"]

log = logging.getLogger("contract_bot.inbox")

LEASE = timedelta(seconds=30)  # how long a dead process's requests wait before another takes them over
RENEW_EVERY_SECONDS = 10.0
MAX_ATTEMPTS = 5  # a request whose replay killed the process this often is kept aside, not replayed forever
GONE = object()  # run()'s result when another process already carried the request out


@dataclass
class InboxJob:
    """One request to carry out: its kind (a key of the handlers' job table), what Slack sent, its inbox row."""

    kind: str
    payload: dict
    key: str | None = (
        None  # its inbox row, and "inbox:<key>" in seen_request once carried out; None: not recorded
    )
    replayed: bool = False
    record: _Record | None = field(default=None, repr=False)  # its way into the table (Inbox.record)


class AckGate:
    """Counts the requests being acknowledged, so background work can wait for a quiet moment.

    NOTE: the request side takes no lock. A request thread that blocks on a lock held by a background thread which
    lost the GIL waits for that thread's next turn, and under a burst that turn is milliseconds away; set.add and
    set.discard are single atomic steps. The waiting side polls instead of being notified.
    """

    def __init__(self, settle: float = 0.02) -> None:
        self.settle = settle  # quiet means no request for this long: a burst has gaps between its requests
        self._active: set[object] = set()
        self._last_end = 0.0

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around the handling of one incoming request."""
        token = object()
        self._active.add(token)
        try:
            yield
        finally:
            self._active.discard(token)
            self._last_end = time.monotonic()

    def wait_quiet(self, max_wait: float) -> bool:
        """Wait until no request has been acknowledged for ``settle`` s, at most ``max_wait`` s; True if quiet."""
        deadline = time.monotonic() + max_wait
        while True:
            now = time.monotonic()
            quiet_for = now - self._last_end
            if not self._active and quiet_for >= self.settle:
                return True
            if now >= deadline:
                return False
            # poll at most every settle/2 while requests come in; sleep out the rest of a quiet spell at once
            step = self.settle / 2 if self._active else self.settle - quiet_for
            time.sleep(max(min(step, deadline - now), 0.001))

    @property
    def active(self) -> int:
        """Requests being acknowledged now."""
        return len(self._active)


_ACCEPTED: Future = Future()  # what record() returns for a journaled request: safe at once
_ACCEPTED.set_result(None)


@dataclass
class _Record:
    """One request on its way into the inbox table."""

    job: InboxJob
    journaled: bool  # already in this process's journal (acknowledged without waiting for the table)
    # done once it is in the table (or no longer needs to be); only a request that waits for it has one (a Future
    # is a dozen objects for the garbage collector, and a burst queues tens of thousands of journaled requests)
    stored: Future | None = None
    payload_json: str = ""
    state: str = (
        "pending"  # pending -> writing -> stored | dropped (carried out before the recorder got to it)
    )
    done: bool = False  # carried out; the recorder drops it, or deletes its row once written


@dataclass
class Inbox:
    """The inbox table, the in-order background queue, and the takeover of a dead process's requests."""

    session_factory: SessionFactory  # the main database (where a request's work and its "seen" key commit)
    store_engine: Engine  # where the inbox rows live (storage.db.inbox_engine)
    clock: Clock
    gate: AckGate = field(default_factory=AckGate)
    journal_dir: str | None = None  # where this process's request journal lives (storage.journal); None: none
    lease: timedelta = LEASE
    yield_max: float = 0.25  # under a burst that never pauses, background work still takes a step this often
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    execute: Callable[[InboxJob], object] | None = None  # set by the handlers: run a job, return its reply
    deliver: Callable[[InboxJob, object], None] | None = None  # set by the handlers: send a late reply
    _queue: deque[InboxJob] = field(default_factory=deque)  # appended by request threads without a lock
    _job_ready: threading.Event = field(default_factory=threading.Event)
    _cv: threading.Condition = field(default_factory=threading.Condition)  # among the threads that take jobs
    _busy: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _incoming: deque[_Record] = field(default_factory=deque)  # appended by request threads without a lock
    _record_wake: threading.Event = field(default_factory=threading.Event)
    _record_cv: threading.Condition = field(default_factory=threading.Condition)  # guards _Record.state/done
    _recorder: threading.Thread | None = None
    _closed: bool = False
    _raw: object | None = None  # the SQLite recorder's own DB-API connection
    _last_renew: float = 0.0

    def __post_init__(self) -> None:
        self.store_factory = session_factory(self.store_engine)
        self._key_prefix = secrets.token_hex(6)  # keys: this prefix and a counter (unique across processes)
        self._key_counter = itertools.count(1)
        self.journal: RequestJournal | None = None
        if self.journal_dir is not None:
            try:
                self.journal = RequestJournal(self.journal_dir, self.owner).open()
            except OSError as exc:  # still safe: every request then waits for its row in the table
                log.error(
                    "cannot use the request journal directory %s (%s); requests are recorded in the inbox "
                    "table before each acknowledgement instead",
                    self.journal_dir,
                    exc,
                )

    # ---- the acknowledgement path --------------------------------------------------------------------------

    def record(self, job: InboxJob) -> Future:
        """Record an acknowledged request; the future is done when it is safe to acknowledge.

        With a journal (storage.journal) that is at once: one line appended to this process's file, which survives
        the process being killed; the recorder thread copies it into the table afterwards, at a quiet moment. Without
        one (or when the journal broke) it is when the recorder has committed the request's row. The recorder
        commits whatever has gathered since its last commit in one statement (group commit).
        """
        job.key = f"{self._key_prefix}{next(self._key_counter):010x}"
        rec = _Record(job, journaled=False, payload_json=json.dumps(job.payload, ensure_ascii=False))
        if self.journal is not None and self.journal.usable:
            try:
                self.journal.append(job.key, job.kind, rec.payload_json)
                rec.journaled = True
            except JournalBroken:
                pass  # logged by the journal; this request and the next ones wait for the table instead
        if not rec.journaled:
            rec.stored = Future()
        job.record = rec
        # NOTE: no lock on this path: a request thread that blocked on a lock held by a preempted thread would wait
        # for that thread's next turn with the GIL. deque.append is atomic.
        self._incoming.append(rec)
        self._record_wake.set()
        recorder = self._recorder
        if recorder is None or not recorder.is_alive():
            with self._record_cv:
                if self._recorder is None or not self._recorder.is_alive():
                    self._recorder = threading.Thread(
                        target=self._record_loop, name="inbox-recorder", daemon=True
                    )
                    self._recorder.start()
        return _ACCEPTED if rec.journaled else rec.stored

    def _take_incoming(self) -> list[_Record]:
        batch = []
        while True:
            try:
                batch.append(self._incoming.popleft())
            except IndexError:
                return batch

    def _record_loop(self) -> None:
        retry: list[_Record] = []
        while True:
            self._record_wake.clear()
            if not self._incoming and not retry:
                if self._closed:
                    return
                self._record_wake.wait(timeout=1.0)
                continue
            if self.journal is not None and self.journal.usable and not self._closed:
                # Everything waiting is safe in the journal and already acknowledged: copy it when no request is
                # being acknowledged (bounded, so a burst that never pauses still gets copied).
                self.gate.wait_quiet(self.yield_max)
            batch = retry + self._take_incoming()
            retry = []
            with self._record_cv:
                for rec in batch:
                    rec.state = "dropped" if rec.done else "writing"
            writing = [rec for rec in batch if rec.state == "writing"]
            try:
                if writing:
                    self._insert(
                        [
                            {"key": r.job.key, "kind": r.job.kind, "payload_json": r.payload_json}
                            for r in writing
                        ]
                    )
            except Exception as exc:  # noqa: BLE001
                journaled = [rec for rec in writing if rec.journaled]
                for rec in writing:
                    if (
                        rec.stored is not None
                    ):  # not acknowledged yet: its request is refused (the waiter says so)
                        rec.stored.set_exception(exc)
                if journaled:
                    # Acknowledged already and safe in the journal: keep trying (a stop leaves them in the file,
                    # and the next process copies them from there).
                    log.warning(
                        "could not copy %s journaled request(s) into the inbox table (%s); retrying",
                        len(journaled),
                        exc,
                    )
                    with self._record_cv:
                        for rec in journaled:
                            rec.state = "pending"
                    if self._closed:
                        return
                    time.sleep(0.5)  # the database is locked or down: do not spin
                    retry = journaled
                continue
            with self._record_cv:
                for rec in writing:
                    rec.state = "stored"
                finished = [rec.job.key for rec in writing if rec.done]  # carried out while being written
                for rec in batch:
                    rec.job.record = (
                        None  # from now on the job is a row like any other (or gone): less to track
                    )
            if finished:
                self._delete_rows(finished)
            if self.journal is not None:
                self.journal.committed([rec.job.key for rec in batch if rec.journaled])
            for rec in batch:
                if rec.stored is not None:
                    rec.stored.set_result(rec.job)

    def _insert(self, rows: list[dict]) -> None:
        if self.store_engine.dialect.name == "sqlite":
            self._insert_sqlite(rows)
        else:
            self._insert_postgresql(rows)

    def _insert_postgresql(self, rows: list[dict]) -> None:
        """One COPY: psycopg encodes the rows in C, so a batch costs the acknowledgements little of the GIL
        (SQLAlchemy's multi-row INSERT builds and processes every parameter in Python)."""
        columns, values = repo.inbox_copy_rows(rows, at=self.clock.now(), owner=self.owner, lease=self.lease)
        raw = self.store_engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()
            with cursor.copy(f"COPY inbox ({', '.join(columns)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            raw.driver_connection.commit()
        except BaseException:
            raw.driver_connection.rollback()
            raise
        finally:
            raw.close()  # back to the pool

    def _insert_sqlite(self, rows: list[dict]) -> None:
        """One INSERT statement in autocommit: a single step of SQLite, so the recorder lets go of the GIL (and
        waits to get it back behind every busy thread) once per batch, not once per statement."""
        if self._raw is None:
            self._raw = self.store_engine.raw_connection()  # kept: this file's recorder connection
        at = self.clock.now()
        stmt, params = repo.inbox_insert_sql(rows, at=at, owner=self.owner, lease=self.lease)
        cursor = self._raw.driver_connection.cursor()
        try:
            cursor.execute(
                stmt, params
            )  # pysqlite is in autocommit (storage.db): the statement commits itself
        finally:
            cursor.close()

    def idle(self) -> bool:
        """True when nothing is queued or being carried out in the background."""
        return not self._queue and not self._busy

    def enqueue(self, job: InboxJob) -> None:
        """Queue a job for the background worker (in arrival order)."""
        self._queue.append(job)  # atomic; no lock on the acknowledgement path (see AckGate)
        self._job_ready.set()

    def backlog(self) -> int:
        """Jobs queued or being carried out in the background."""
        return len(self._queue) + self._busy

    # ---- carrying out --------------------------------------------------------------------------------------

    def run(self, job: InboxJob) -> object:
        """Carry out a job, settling its request with its work; returns the reply, or GONE."""
        assert self.execute is not None, "the handlers set Inbox.execute"
        if job.replayed and self._seen(job):
            self._forget(job)  # carried out before the crash; only its row was left
            return GONE
        with settling(job.key):
            try:
                reply = self.execute(job)
            except InboxItemGone:
                log.info("inbox request %s was carried out elsewhere; not repeated", job.key)
                return GONE
        # Settled by the work's own transaction, or the work changed nothing (a refusal that writes nothing, an
        # error): either way the request is answered and its row can go.
        self._forget(job)
        return reply

    def _seen(self, job: InboxJob) -> bool:
        from storage.db import read_only

        with read_only(self.session_factory) as s:
            return repo.inbox_key_seen(s, job.key or "")

    def _forget(self, job: InboxJob) -> None:
        """The job is carried out: its row goes (or, not written yet, is never written)."""
        if job.key is None:
            return
        rec = job.record
        if rec is not None:
            with self._record_cv:
                if rec.state in ("pending", "writing"):
                    rec.done = True  # the recorder drops it, or deletes the row right after writing it
                    return
                if rec.state == "dropped":
                    return
        self._delete_rows([job.key])

    def _delete_rows(self, keys: list[str]) -> None:
        try:
            with unit_of_work(self.store_factory) as s:
                for key in keys:
                    repo.delete_inbox(s, key)
        except Exception:  # noqa: BLE001 - a row left behind is found seen when replayed, and only then deleted
            log.exception("could not delete inbox request(s) %s", ", ".join(keys))

    def drain(self) -> int:
        """Carry out every queued job now, in this thread (tests, the console); returns how many ran."""
        ran = 0
        while True:
            job = self._take_job()
            if job is None:
                return ran
            try:
                self._run_and_deliver(job)
            finally:
                with self._cv:
                    self._busy -= 1
            ran += 1

    def _take_job(self) -> InboxJob | None:
        """The next queued job, counted busy (before it leaves the queue, so idle() never misses it), or None."""
        with self._cv:
            self._busy += 1
            try:
                return self._queue.popleft()
            except IndexError:
                self._busy -= 1
                return None

    def _run_and_deliver(self, job: InboxJob) -> None:
        try:
            reply = self.run(job)
            if reply is not GONE and self.deliver is not None:
                self.deliver(job, reply)
        except Exception:  # noqa: BLE001 - the worker must go on with the next request
            log.exception("inbox job %s (%s) failed", job.kind, job.key)

    # ---- background ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background worker (idempotent); it first takes over requests a dead process left."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="inbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after its current job; queued jobs stay in the table and are replayed later."""
        self._closed = True
        self._record_wake.set()
        if self._recorder is not None:
            self._recorder.join(timeout=timeout)  # it writes what is pending first
        if self._recorder is not None and self._recorder.is_alive():
            # Still copying (the database is locked or down): leave its connection and the journal files to it;
            # the process's exit closes them, and the next process copies what the files hold.
            log.warning(
                "the inbox recorder did not finish in %s s; its journal is left for the next process", timeout
            )
        else:
            if self._raw is not None:
                self._raw.close()
                self._raw = None
            if self.journal is not None:
                self.journal.close(
                    remove=True
                )  # kept (for the next process) if a line never reached the table
        self._stop.set()
        self._job_ready.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        self.recover()
        while not self._stop.is_set():
            self._job_ready.clear()
            job = self._take_job()
            if job is None:
                self._job_ready.wait(timeout=1.0)
            else:
                # Give way to acknowledgements: under a burst this keeps them as fast as doing nothing, and the
                # bound keeps the queue moving even when the burst never pauses.
                self.gate.wait_quiet(self.yield_max)
                try:
                    if not self._stop.is_set():
                        self._run_and_deliver(job)
                finally:
                    with self._cv:
                        self._busy -= 1
            if time.monotonic() - self._last_renew >= RENEW_EVERY_SECONDS:
                self.recover()

    def recover(self) -> int:
        """Renew the leases this process holds and queue the requests of processes that stopped renewing."""
        self._last_renew = time.monotonic()
        now = self.clock.now()
        taken = 0
        try:
            taken += self._adopt_orphan_journals(now)
            with unit_of_work(self.store_factory) as s:
                repo.renew_inbox(s, owner=self.owner, until=now + self.lease)
            while True:
                with unit_of_work(self.store_factory) as s:
                    rows = repo.claim_stale_inbox(s, owner=self.owner, now=now, lease=self.lease, limit=200)
                    for row in rows:
                        if row.attempts > MAX_ATTEMPTS:
                            repo.bury_inbox(s, row.key, "abandoned: its replay failed too often")
                if not rows:
                    break
                for row in rows:
                    if row.attempts > MAX_ATTEMPTS:
                        log.error(
                            "inbox request %s (%s) set aside after %s attempts",
                            row.key,
                            row.kind,
                            row.attempts,
                        )
                        continue
                    self.enqueue(InboxJob(row.kind, json.loads(row.payload), row.key, replayed=True))
                    taken += 1
        except Exception:  # noqa: BLE001 - tried again on the next round
            log.exception("could not renew or recover inbox items")
        if taken:
            log.warning("took over %s acknowledged request(s) left by a stopped process", taken)
        return taken

    def _adopt_orphan_journals(self, now) -> int:  # noqa: ANN001
        """Copy into the table (as this process's) the journaled requests of processes that stopped before their
        recorder did; queue them; delete their files. A row already in the table is left to its lease."""
        if self.journal is None:
            return 0
        taken = 0
        for orphan in self.journal.orphans():
            try:
                keys = [e["key"] for e in orphan.entries]
                with unit_of_work(self.store_factory) as s:
                    have = repo.existing_inbox_keys(s, keys)
                    new = [e for e in orphan.entries if e["key"] not in have]
                    if new:
                        repo.add_inbox(s, new, at=now, owner=self.owner, lease=self.lease)
            except Exception:  # noqa: BLE001 - the file stays; the next round tries again
                orphan.keep()
                log.exception("could not copy the journal %s into the inbox table", orphan.path)
                continue
            orphan.release()
            for e in new:
                self.enqueue(InboxJob(e["kind"], e["payload"], e["key"], replayed=True))
            taken += len(new)
            log.warning(
                "took over %s acknowledged request(s) from the journal of a stopped process (%s)",
                len(new),
                orphan.path.name,
            )
        return taken
