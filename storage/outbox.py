"""Outbox queries for coalescing, dead messages and their dependants (the queue itself: storage.repositories
``add_outbox`` / ``claim_outbox``). Repositories never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from storage.models import OutboxMessage

THREAD = "thread"


def newer_pending_update(s: Session, row: OutboxMessage) -> int | None:
    """The id of a pending edit of the same message queued after ``row``, if any (``row`` is then superseded)."""
    if row.contract_id is None or row.message_key is None:
        return None
    return s.execute(
        select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.contract_id) == row.contract_id,
            col(OutboxMessage.message_key) == row.message_key,
            col(OutboxMessage.id) > row.id,
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.op) == "update",
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    ).scalar_one_or_none()


def message_post(s: Session, contract_id: int, message_key: str) -> OutboxMessage | None:
    """The newest row that posts a contract's message ("parent", "q:CI-4"), whatever its status."""
    return (
        s.execute(
            select(OutboxMessage)
            .where(
                col(OutboxMessage.contract_id) == contract_id,
                col(OutboxMessage.message_key) == message_key,
                col(OutboxMessage.op) == "post",
            )
            .order_by(col(OutboxMessage.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def last_sent_hash(s: Session, contract_id: int, message_key: str) -> str | None:
    """The content hash of what was last sent for a contract's message (its post or its newest edit)."""
    return s.execute(
        select(col(OutboxMessage.content_hash))
        .where(
            col(OutboxMessage.contract_id) == contract_id,
            col(OutboxMessage.message_key) == message_key,
            col(OutboxMessage.status) == "sent",
            col(OutboxMessage.content_hash).is_not(None),
        )
        .order_by(col(OutboxMessage.id).desc())
        .limit(1)
    ).scalar_one_or_none()


def mark_dependants_dead(
    s: Session, root: OutboxMessage, *, whole_thread: bool, error: str, at: datetime
) -> list[int]:
    """Mark the pending messages that cannot go without ``root`` dead with it; their ids, oldest first.

    ``whole_thread``: every pending message of the contract's thread (its parent died, or the channel refused
    it); otherwise only the pending edits of the message ``root`` would have posted.
    """
    if root.contract_id is None or root.id is None:
        return []
    query = select(OutboxMessage).where(
        col(OutboxMessage.contract_id) == root.contract_id,
        col(OutboxMessage.status) == "pending",
        col(OutboxMessage.id) != root.id,
    )
    if whole_thread:
        query = query.where(
            (col(OutboxMessage.target) == THREAD)
            | ((col(OutboxMessage.message_key) == "parent") & (col(OutboxMessage.op) == "update"))
        )
    elif root.message_key is not None:
        query = query.where(
            col(OutboxMessage.message_key) == root.message_key, col(OutboxMessage.op) == "update"
        )
    else:
        return []
    ids = []
    for row in s.execute(query.order_by(col(OutboxMessage.id)).with_for_update(skip_locked=True)).scalars():
        mark_dead(row, f"not sent: it needs #{root.id}, which is dead ({error})", depends_on=root.id, at=at)
        s.add(row)
        assert row.id is not None  # a stored row
        ids.append(row.id)
    return ids


def mark_dead(row: OutboxMessage, error: str, *, depends_on: int | None, at: datetime) -> None:
    """Set a row dead (kept, never retried by itself) with the reason and the message it died with."""
    row.status, row.last_error, row.lease_until, row.depends_on = "dead", error, None, depends_on
    row.next_attempt_at = at


def root_of(row: OutboxMessage) -> int | None:
    """The dead message ``row`` died with (its own id when it died by itself)."""
    return row.depends_on if row.depends_on is not None else row.id


def list_dead(s: Session) -> list[tuple[OutboxMessage, list[OutboxMessage]]]:
    """Dead messages that died by themselves, oldest first, each with the dead messages that died with it."""
    rows = list(
        s.execute(
            select(OutboxMessage).where(col(OutboxMessage.status) == "dead").order_by(col(OutboxMessage.id))
        ).scalars()
    )
    roots = {r.id: r for r in rows if r.depends_on is None}
    dependants: dict[int | None, list[OutboxMessage]] = {}
    orphans = []
    for r in rows:
        if r.depends_on is None:
            continue
        if r.depends_on in roots:
            dependants.setdefault(r.depends_on, []).append(r)
        else:  # its root was retried (and sent, or died again as another root): list it on its own
            orphans.append(r)
    out = [(root, dependants.get(root.id, [])) for root in roots.values()]
    out.extend((r, []) for r in orphans)
    out.sort(key=lambda pair: pair[0].id or 0)
    return out


def revive(s: Session, ids: Sequence[int], *, at: datetime) -> list[OutboxMessage]:
    """Make dead messages pending again, due now, with their attempts reset; the rows revived, oldest first.

    Per-contract order is kept by the claim (oldest pending first), so a parent revived with its thread goes
    first. Rows that are not dead are left alone.
    """
    if not ids:
        return []
    rows = list(
        s.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.id).in_(list(ids)), col(OutboxMessage.status) == "dead")
            .order_by(col(OutboxMessage.id))
            .with_for_update()
        ).scalars()
    )
    for row in rows:
        # due at once for any sender whose clock has reached the moment it died (a test's clock may be behind ours)
        row.status, row.attempts, row.next_attempt_at = "pending", 0, min(row.next_attempt_at, at)
        row.lease_until = row.claimed_by = row.depends_on = None
        row.last_error = f"retried (it had died: {row.last_error})" if row.last_error else "retried"
        s.add(row)
    return rows


def dependants_of(s: Session, root_ids: Sequence[int]) -> list[OutboxMessage]:
    """Dead messages that died with any of ``root_ids``, oldest first."""
    if not root_ids:
        return []
    return list(
        s.execute(
            select(OutboxMessage)
            .where(col(OutboxMessage.depends_on).in_(list(root_ids)), col(OutboxMessage.status) == "dead")
            .order_by(col(OutboxMessage.id))
        ).scalars()
    )


def count_dead_roots(s: Session) -> int:
    """How many dead messages died by themselves (not with another one)."""
    return int(
        s.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.status) == "dead", col(OutboxMessage.depends_on).is_(None))
        ).scalar_one()
    )
