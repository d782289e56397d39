"""At most once: the signed requests already carried out, recorded in the same transaction as their change.

Slack's signature check (and Bolt's) accepts a signed request for 5 minutes, so a captured one can be sent again.
A request's digest (of its X-Slack-Request-Timestamp and X-Slack-Signature; the signature covers the body) is
inserted under a unique key by the first unit of work the request commits, in that same transaction. So a replay
collides with it at its commit and rolls back whole, on SQLite and PostgreSQL and across processes, and so does the
later of two copies racing each other; a replay refused before it got to commit (its change is already made) is
told it was already carried out (bot.services.replays.ReplayGuard.carried_out). A request that commits nothing
(a read) leaves no row, and a replay of it changes nothing either.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, event, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.domain.errors import DomainError
from storage.db import SessionFactory
from storage.deferred import defer_insert, on_conflict
from storage.models import SignedRequest, table_of

log = logging.getLogger("contract_bot.security")
_RECORDING = "contract_bot_recording_signed_request"
_MARK = "contract_bot_signed_request_mark"


class AlreadyCarriedOut(DomainError):
    """The same signed request (body, timestamp and signature) was already carried out: a replay changes nothing."""

    def __init__(self) -> None:
        super().__init__(
            "This request was already carried out, so nothing was changed. To do it again, run the command or "
            "press the button again."
        )


@dataclass
class RequestMark:
    """The signed request being carried out: its digest, how long a replay of it could be accepted, whether its
    digest has been committed (by this request's own earlier unit of work)."""

    digest: str
    expires_at: datetime
    recorded: bool = False


_current: ContextVar[RequestMark | None] = ContextVar("contract_bot_signed_request", default=None)


def digest_of(timestamp: str, signature: str) -> str:
    """The key of a signed request: SHA-256 of its timestamp and signature (never stored as they came)."""
    return hashlib.sha256(f"{timestamp}\n{signature}".encode()).hexdigest()


@contextlib.contextmanager
def marked(mark: RequestMark) -> Iterator[RequestMark]:
    """Carry out a request's units of work under its mark (the request's thread; its worker gets a copy)."""
    token = _current.set(mark)
    try:
        yield mark
    finally:
        _current.reset(token)


def current_mark() -> RequestMark | None:
    """The signed request being carried out in this context, if any."""
    return _current.get()


def watching(factory: SessionFactory) -> SessionFactory:
    """Sessions that check for and record the current signed request; outside a request they are plain."""

    def make() -> Session:
        session = factory()
        mark = _current.get()
        if mark is not None:
            # read by the Session-wide hooks below: listeners added to each session slowed all of its events
            session.info[_MARK] = mark
        return session

    return make


@event.listens_for(Session, "after_begin")
def _record_with_the_commit(s: Session, _transaction, _connection) -> None:  # noqa: ANN001
    mark: RequestMark | None = s.info.get(_MARK)
    # recorded by an earlier unit of work, or already queued in this transaction (a savepoint begins again)
    if mark is None or mark.recorded or s.info.get(_RECORDING):
        return
    # inserted with the commit's other deferred rows: a replay clashes there with the key (a copy racing this one,
    # on PostgreSQL, waits on it until we commit or roll back) and rolls back whole, so nothing is looked up first;
    # a replay refused before its commit is told so by `carried_out`
    defer_insert(s, table_of(SignedRequest), {"digest": mark.digest, "expires_at": mark.expires_at})
    s.info[_RECORDING] = True


@event.listens_for(Session, "after_commit")
def _recorded(s: Session) -> None:
    mark: RequestMark | None = s.info.get(_MARK)
    if s.info.pop(_RECORDING, False) and mark is not None:
        mark.recorded = True


@event.listens_for(Session, "after_rollback")
def _not_recorded(s: Session) -> None:
    if not s.in_nested_transaction():
        s.info.pop(_RECORDING, None)


def _a_copy_was_carried_out() -> AlreadyCarriedOut:
    log.warning("refused a replayed signed request (already carried out)")
    return AlreadyCarriedOut()


on_conflict(table_of(SignedRequest), _a_copy_was_carried_out)


def record_signed_request(s: Session, digest: str, expires_at: datetime) -> bool:
    """Record a digest on its own (a request answered "nothing recorded" must not be carried out later by a
    replay); False when it was already there."""
    try:
        with s.begin_nested():
            s.execute(insert(SignedRequest).values(digest=digest, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def is_recorded(s: Session, digest: str) -> bool:
    """True when a signed request with this digest was carried out (and not yet purged)."""
    return s.get(SignedRequest, digest) is not None


def purge_signed_requests(s: Session, now: datetime) -> int:
    """Forget the digests no replay could use any more (Slack would refuse their timestamps); returns how many."""
    result = s.execute(delete(SignedRequest).where(col(SignedRequest.expires_at) < now))
    return int(getattr(result, "rowcount", 0) or 0)
