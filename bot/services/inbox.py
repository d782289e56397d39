"""Acknowledged requests: recorded before the acknowledgement, carried out once, replayed after a crash.

Slack gives 3 seconds for the HTTP 200 and a user expects it in far less. A request that changes something is
written to the ``inbox`` table and committed before the acknowledgement, so once Slack has its 200 the request
cannot be lost: the transaction that carries it out also records the request's key as seen (storage.db.settling),
and rows left by a process that died are taken over when their lease runs out and carried out then, once. On
SQLite the inbox is a file of its own (storage.db.inbox_engine): recording a request never waits behind the main
database's single write lock.

Carrying out happens in one of two places:

* at once, in the request's own thread pool, when nothing is queued (the result then goes in the
  acknowledgement itself, as a user expects from a quiet system);
* otherwise in order, by one background worker that gives way to acknowledgements: before each job it waits
  (up to ``yield_max`` seconds) until no request has been acknowledged for ``AckGate.settle`` (20 ms). Under a
  burst the acknowledgements keep the interpreter, the queue grows, and it drains as soon as the burst ends;
  the answer reaches the user through ``response_url`` or a direct message.
"""

from __future__ import annotations

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
    key: str | None = None  # its inbox row, and "inbox:<key>" in seen_request once carried out; None: not recorded
    replayed: bool = False


class AckGate:
    """Counts the requests being acknowledged, so background work can wait for a quiet moment."""

    def __init__(self, settle: float = 0.02) -> None:
        self.settle = settle  # quiet means no request for this long: a burst has gaps between its requests
        self._active = 0
        self._last_end = 0.0
        self._cv = threading.Condition()

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around the handling of one incoming request."""
        with self._cv:
            self._active += 1
        try:
            yield
        finally:
            with self._cv:
                self._active -= 1
                self._last_end = time.monotonic()
                if self._active == 0:
                    self._cv.notify_all()

    def wait_quiet(self, max_wait: float) -> bool:
        """Wait until no request has been acknowledged for ``settle`` s, at most ``max_wait`` s; True if quiet."""
        deadline = time.monotonic() + max_wait
        with self._cv:
            while True:
                now = time.monotonic()
                if self._active == 0 and now - self._last_end >= self.settle:
                    return True
                if now >= deadline:
                    return False
                wait = deadline - now if self._active else self.settle - (now - self._last_end)
                self._cv.wait(min(wait, deadline - now))

    @property
    def active(self) -> int:
        """Requests being acknowledged now."""
        return self._active


@dataclass
class _PendingRecord:
    job: InboxJob
    future: Future = field(default_factory=Future)


@dataclass
class Inbox:
    """The inbox table, the in-order background queue, and the takeover of a dead process's requests."""

    session_factory: SessionFactory  # the main database (where a request's work and its "seen" key commit)
    store_engine: Engine  # where the inbox rows live (storage.db.inbox_engine)
    clock: Clock
    gate: AckGate = field(default_factory=AckGate)
    lease: timedelta = LEASE
    yield_max: float = 0.25  # under a burst that never pauses, background work still takes a step this often
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}")
    execute: Callable[[InboxJob], object] | None = None  # set by the handlers: run a job, return its reply
    deliver: Callable[[InboxJob, object], None] | None = None  # set by the handlers: send a late reply
    _queue: deque[InboxJob] = field(default_factory=deque)
    _cv: threading.Condition = field(default_factory=threading.Condition)
    _busy: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pending: list[_PendingRecord] = field(default_factory=list)
    _record_cv: threading.Condition = field(default_factory=threading.Condition)
    _recorder: threading.Thread | None = None
    _closed: bool = False
    _raw: object | None = None  # the SQLite recorder's own DB-API connection
    _last_renew: float = 0.0

    def __post_init__(self) -> None:
        self.store_factory = session_factory(self.store_engine)

    # ---- the acknowledgement path --------------------------------------------------------------------------

    def record(self, job: InboxJob) -> Future:
        """Record an acknowledged request; the future is done when it is committed (wait before acknowledging).

        One recorder thread commits whatever has gathered since its last commit in one statement (group commit):
        a burst costs one write per batch, not one per request, and the requests' threads never queue on a lock
        (they only wait for their own future, so they wake together when their batch is in).
        """
        job.key = secrets.token_hex(16)
        pending = _PendingRecord(job)
        with self._record_cv:
            self._pending.append(pending)
            self._record_cv.notify()
            if self._recorder is None or not self._recorder.is_alive():
                self._recorder = threading.Thread(target=self._record_loop, name="inbox-recorder", daemon=True)
                self._recorder.start()
        return pending.future

    def _record_loop(self) -> None:
        while True:
            with self._record_cv:
                while not self._pending:
                    if self._closed:
                        return
                    self._record_cv.wait(timeout=1.0)
                batch, self._pending = self._pending, []
            rows = [{"key": p.job.key, "kind": p.job.kind, "payload": p.job.payload} for p in batch]
            try:
                if self.store_engine.dialect.name == "sqlite":
                    self._insert_sqlite(rows)
                else:
                    with self.store_engine.begin() as conn:
                        repo.add_inbox(conn, rows, at=self.clock.now(), owner=self.owner, lease=self.lease)
            except Exception as exc:  # noqa: BLE001 - each waiter tells its user the request was not accepted
                for p in batch:
                    p.future.set_exception(exc)
                continue
            for p in batch:
                p.future.set_result(p.job)

    def _insert_sqlite(self, rows: list[dict]) -> None:
        """One INSERT statement in autocommit: a single step of SQLite, so the recorder lets go of the GIL (and
        waits to get it back behind every busy thread) once per batch, not once per statement."""
        if self._raw is None:
            self._raw = self.store_engine.raw_connection()  # kept: this file's recorder connection
        at = self.clock.now()
        stmt, params = repo.inbox_insert_sql(rows, at=at, owner=self.owner, lease=self.lease)
        cursor = self._raw.driver_connection.cursor()
        try:
            cursor.execute(stmt, params)  # pysqlite is in autocommit (storage.db): the statement commits itself
        finally:
            cursor.close()

    def idle(self) -> bool:
        """True when nothing is queued or being carried out in the background."""
        return not self._queue and not self._busy

    def enqueue(self, job: InboxJob) -> None:
        """Queue a job for the background worker (in arrival order)."""
        with self._cv:
            self._queue.append(job)
            self._cv.notify()

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
        if job.key is None:
            return
        try:
            with unit_of_work(self.store_factory) as s:
                repo.delete_inbox(s, job.key)
        except Exception:  # noqa: BLE001 - a row left behind is found seen when replayed, and only then deleted
            log.exception("could not delete inbox request %s", job.key)

    def drain(self) -> int:
        """Carry out every queued job now, in this thread (tests, the console); returns how many ran."""
        ran = 0
        while True:
            with self._cv:
                if not self._queue:
                    return ran
                job = self._queue.popleft()
                self._busy += 1
            try:
                self._run_and_deliver(job)
            finally:
                with self._cv:
                    self._busy -= 1
            ran += 1

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
        with self._record_cv:
            self._closed = True
            self._record_cv.notify_all()
        if self._recorder is not None:
            self._recorder.join(timeout=timeout)
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        self.recover()
        while not self._stop.is_set():
            with self._cv:
                if not self._queue:
                    self._cv.wait(timeout=1.0)
                job = self._queue.popleft() if self._queue and not self._stop.is_set() else None
                if job is not None:
                    self._busy += 1
            if job is not None:
                # Give way to acknowledgements: under a burst this keeps them as fast as doing nothing, and the
                # bound keeps the queue moving even when the burst never pauses.
                self.gate.wait_quiet(self.yield_max)
                try:
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
                        log.error("inbox request %s (%s) set aside after %s attempts", row.key, row.kind, row.attempts)
                        continue
                    self.enqueue(InboxJob(row.kind, json.loads(row.payload), row.key, replayed=True))
                    taken += 1
        except Exception:  # noqa: BLE001 - tried again on the next round
            log.exception("could not renew or recover inbox items")
        if taken:
            log.warning("took over %s acknowledged request(s) left by a stopped process", taken)
        return taken
