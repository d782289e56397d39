"""Requests carried out within Slack's deadline, honestly: committed and answered, or answered "nothing recorded".

A request's work runs in a worker thread under a ``CommitGuard`` (storage.db) while the request thread waits for
it. Past the deadline the request thread answers at once; the worker, if it ever gets to its commit, rolls back
instead. So the answer is always true: "done" after a commit, "nothing was recorded" when no commit was sent, and
"could not confirm" in the one case where a commit was sent and the database stopped answering before confirming.
A hung database (a locked SQLite file, a PostgreSQL server or network that stops answering) therefore never holds
a request past the deadline, and work that finishes late never lands after the user was told it did not.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.domain.errors import DomainError
from storage.db import Abandoned, CommitGuard, guarded

log = logging.getLogger("contract_bot.requests")

# Slack allows 3 s for the acknowledgement; the rest is for Bolt, the network and the answer.
REQUEST_DEADLINE_SECONDS = 2.0

T = TypeVar("T")

# When the request being served arrived (time.monotonic()): Slack's clock starts when it sends, not when a listener
# gets to its work, so time spent before the work (many requests at once on a busy machine) comes off its deadline.
_arrived: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_arrived", default=None)


@contextmanager
def request_arrived(at: float | None = None) -> Iterator[None]:
    """Within this block, requests' work is given what is left of the deadline counted from ``at`` (now)."""
    token = _arrived.set(time.monotonic() if at is None else at)
    try:
        yield
    finally:
        _arrived.reset(token)


class NothingRecorded(DomainError):
    """The database did not take the request in time or refused it; nothing was written."""

    def __init__(self) -> None:
        super().__init__(
            ":warning: The database did not answer in time, so *nothing was recorded*. Please try again in a "
            "moment; if this keeps happening, tell an admin."
        )


class OutcomeUnknown(DomainError):
    """The commit was sent but the database stopped answering before confirming it."""

    def __init__(self) -> None:
        super().__init__(
            ":warning: The database stopped answering while saving this, so we cannot confirm it was recorded. "
            "Check with `/contract show` or `/contract list` before trying again."
        )


class RequestRunner:
    """Runs each request's work in a worker thread and waits for it at most the deadline."""

    def __init__(self, *, threads: int = 32, deadline: float = REQUEST_DEADLINE_SECONDS) -> None:
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request-work")

    def run(self, fn: Callable[[], T], *, deadline: float | None = None) -> T:
        """``fn()`` within the deadline (``deadline`` or the runner's, and never past the runner's counted from the
        request's arrival); raises NothingRecorded or OutcomeUnknown when the database cannot."""
        wait = self.deadline if deadline is None else deadline
        arrived = _arrived.get()
        if arrived is not None:
            wait = min(wait, self.deadline - (time.monotonic() - arrived))
        if wait <= 0:  # the request waited its whole deadline before its work could start: nothing was tried
            log.warning(
                "a request's deadline had passed before its work started; it was answered 'nothing recorded'"
            )
            raise NothingRecorded()
        guard = CommitGuard()

        def work() -> T:
            if guard.abandoned:  # waited in the queue past its deadline: the user was already answered
                raise Abandoned("the request was answered before its work started")
            with guarded(guard):
                return fn()

        future = self._pool.submit(contextvars.copy_context().run, work)
        try:
            return future.result(timeout=wait)
        except FutureTimeout:
            committing = guard.abandon()
            log.warning(
                "the database did not answer within %.1f s; the request was answered %s",
                wait,
                "'could not confirm'" if committing else "'nothing recorded'",
            )
            raise (OutcomeUnknown() if committing else NothingRecorded()) from None
        except (OperationalError, PoolTimeout) as exc:
            # locked, timed out, or the connection dropped: rolled back, unless the commit itself was cut off
            log.warning(
                "the database refused a request (%s): %s", type(exc).__name__, str(exc).splitlines()[0]
            )
            raise (OutcomeUnknown() if guard.committing else NothingRecorded()) from None

    def shutdown(self) -> None:
        """Stop taking work; does not wait for work stuck on a database that does not answer."""
        self._pool.shutdown(wait=False, cancel_futures=True)
