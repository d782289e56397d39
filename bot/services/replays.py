"""At most once: a signed request is carried out once, however often it is sent (storage/replays.py records it).

Slack signs a request with its timestamp, and Slack's check (Bolt's too) accepts it while that timestamp is within
5 minutes of the receiving host's clock. So a digest is kept for those 5 minutes plus ``CLOCK_SKEW_SECONDS`` past
the timestamp: several bot processes on hosts whose clocks disagree by up to that much all still recognise a replay.
The window is measured on the wall clock, as Bolt measures it, not on the bot's (injectable) business clock.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from storage.db import SessionFactory, read_only, unit_of_work
from storage.replays import (
    AlreadyCarriedOut,
    RequestMark,
    current_mark,
    digest_of,
    is_recorded,
    marked,
    purge_signed_requests,
    record_signed_request,
)

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "SIGNATURE_WINDOW_SECONDS",
    "AlreadyCarriedOut",
    "ReplayGuard",
    "current_mark",
]

log = logging.getLogger("contract_bot.security")

# Slack refuses a request signed more than 5 minutes away from its own clock (F1.3); so does Bolt.
SIGNATURE_WINDOW_SECONDS = 300
# How far the clocks of the hosts running the bot may disagree (NTP keeps them far closer).
CLOCK_SKEW_SECONDS = 300


class ReplayGuard:
    """Marks each signed request so that its units of work record it with their change and refuse a replay."""

    def __init__(self, session_factory: SessionFactory, *, wall: Callable[[], float] = time.time) -> None:
        self.session_factory = session_factory  # a plain factory (not ``watching``): burns and purges
        self.wall = wall

    def expires_at(self, timestamp: int) -> datetime:
        """When no process could accept a request signed at ``timestamp`` any more."""
        return datetime.fromtimestamp(timestamp + SIGNATURE_WINDOW_SECONDS + CLOCK_SKEW_SECONDS, UTC)

    @contextlib.contextmanager
    def once(self, timestamp: str | None, signature: str | None) -> Iterator[RequestMark | None]:
        """Carry out a signed request at most once; a request without signing headers (Socket Mode, whose
        connection is authenticated instead) is carried out unmarked."""
        if not timestamp or not signature or not timestamp.isdigit():
            yield None
            return
        mark = RequestMark(digest_of(timestamp, signature), self.expires_at(int(timestamp)))
        with marked(mark):
            yield mark

    def carried_out(self) -> bool:
        """Whether the current request was carried out before (a replay): asked when its work is refused, since a
        replay is otherwise found only by its commit, which a refusal never reaches."""
        mark = current_mark()
        if mark is None or mark.recorded:
            return False
        with read_only(self.session_factory) as s:
            return is_recorded(s, mark.digest)

    def burn(self, mark: RequestMark | None = None) -> None:
        """Record the current request as carried out although it was answered "nothing recorded" (or "could not
        confirm"): the person was told to try again, with a new request; a replay of this one must not land later.
        """
        mark = mark or current_mark()
        if mark is None or mark.recorded:
            return
        try:
            with unit_of_work(self.session_factory) as s:
                record_signed_request(s, mark.digest, mark.expires_at)
            mark.recorded = True
        except Exception:  # noqa: BLE001 - the database is failing; the request itself was not carried out
            log.warning("could not record a request answered 'nothing recorded' as used", exc_info=True)

    def purge(self) -> int:
        """Forget the digests whose window has passed (background work); returns how many."""
        now = datetime.fromtimestamp(self.wall(), UTC)
        with unit_of_work(self.session_factory) as s:
            return purge_signed_requests(s, now)
