"""Slack's rate limits as buckets in the database (``slack_rate``), so that every bot process shares them.

Slack's limits are per workspace (SLACK-FACTS F1.14, F1.32): two processes that each kept their own count would
together send twice what Slack allows. Each bucket is one row keeping a GCRA "theoretical arrival time" (``tat``):
the moment the bucket is empty again at the sustained rate. Taking a slot locks the rows of the call's buckets
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), reads the
database's clock, and moves ``tat`` on by one interval: the caller is told how long to wait for its slot, then
sends. A 429's ``Retry-After`` is stored as ``blocked_until`` in the same rows, so every process honours it.

Times are seconds since the epoch on the database's clock (PostgreSQL's ``clock_timestamp()``), so processes on
different hosts agree; on SQLite, which only processes on one host can share, it is this host's clock.
Repositories never commit: run each call in its own short unit of work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlmodel import Session, col

from storage.models import SlackRate


@dataclass(frozen=True)
class Bucket:
    """One limit: at most one call per ``interval`` seconds sustained, ``burst`` back to back after a quiet spell."""

    key: str  # "chat.postMessage C123", "chat.postMessage *", "chat.update"
    interval: float  # seconds; 0 paces nothing (only a stored Retry-After holds calls back)
    burst: int = 1

    @property
    def tolerance(self) -> float:
        """How far ahead of the sustained rate a call may go (the burst, in seconds)."""
        return max(self.burst - 1, 0) * self.interval


@dataclass(frozen=True)
class Slot:
    """The outcome of asking for a slot: ``taken`` (wait ``wait`` seconds, then call) or not (one is ``wait`` away)."""

    taken: bool
    wait: float
    limited_by: str | None = None  # the bucket that set the wait (None when the slot is free now)
    at: float = 0.0  # the slot's time on the database's clock


def database_time(s: Session) -> float:
    """Seconds since the epoch on the database's clock (this host's clock for SQLite)."""
    if s.get_bind().dialect.name == "postgresql":
        return float(s.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
    return time.time()


def _locked_rows(s: Session, keys: list[str]) -> dict[str, SlackRate]:
    """The buckets' rows, created if new, locked until the end of the transaction (in key order: no deadlock)."""
    query = (
        select(SlackRate).where(col(SlackRate.key).in_(keys)).order_by(col(SlackRate.key)).with_for_update()
    )
    rows = {r.key: r for r in s.execute(query).scalars()}
    missing = [k for k in keys if k not in rows]
    if missing:
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            s.execute(
                pg_insert(SlackRate)
                .values([{"key": k, "tat": 0.0, "blocked_until": 0.0} for k in missing])
                .on_conflict_do_nothing(index_elements=["key"])
            )
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            s.execute(
                sqlite_insert(SlackRate)
                .values([{"key": k, "tat": 0.0, "blocked_until": 0.0} for k in missing])
                .on_conflict_do_nothing(index_elements=["key"])
            )
        rows = {r.key: r for r in s.execute(query.execution_options(populate_existing=True)).scalars()}
    return rows


def take_slot(s: Session, buckets: Iterable[Bucket], *, max_wait: float) -> Slot:
    """Reserve the next slot that every bucket allows, unless it is more than ``max_wait`` seconds away.

    A taken slot is the caller's: it waits ``wait`` seconds and then makes the call. A slot further away than
    ``max_wait`` is not taken (nothing changes) and ``wait`` says when to ask again.
    """
    wanted = {b.key: b for b in buckets}
    if not wanted:
        return Slot(True, 0.0, at=database_time(s))
    rows = _locked_rows(s, sorted(wanted))
    now = database_time(
        s
    )  # read after the locks: a wait for another process's reservation is not counted twice
    at, limited_by = now, None
    for key, bucket in wanted.items():
        row = rows[key]
        earliest = max(row.tat - bucket.tolerance, row.blocked_until)
        if earliest > at:
            at, limited_by = earliest, key
    if at - now > max_wait:
        return Slot(False, at - now, limited_by, at)
    for key, bucket in wanted.items():
        row = rows[key]
        row.tat = max(row.tat, at) + bucket.interval
        s.add(row)
    return Slot(True, at - now, limited_by, at)


def block(s: Session, buckets: Iterable[Bucket], seconds: float) -> float:
    """Slack answered 429: nothing of these buckets goes before ``seconds`` from now, and then no burst.

    Returns the database time the block ends.
    """
    wanted = {b.key: b for b in buckets}
    if not wanted:
        return database_time(s)
    rows = _locked_rows(s, sorted(wanted))
    until = database_time(s) + max(seconds, 0.0)
    for key, bucket in wanted.items():
        row = rows[key]
        row.blocked_until = max(row.blocked_until, until)
        # Slack's bucket is empty when it answers 429: after the block, calls go at the sustained rate
        row.tat = max(row.tat, until + bucket.tolerance)
        s.add(row)
    return until


def blocked_for(s: Session, keys: Iterable[str]) -> float:
    """Seconds until the stored Retry-Afters of these buckets end (0 when none is in force)."""
    until = s.execute(
        select(func.max(col(SlackRate.blocked_until))).where(col(SlackRate.key).in_(list(keys)))
    ).scalar_one_or_none()
    if until is None:
        return 0.0
    return max(float(until) - database_time(s), 0.0)
