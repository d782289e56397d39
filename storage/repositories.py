"""Repositories: queries and writes on one session. They never commit; the service's unit of work does."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CompoundSelect
from sqlmodel import Session, col

from bot.domain.access import Scope
from storage import configuration
from storage.audit import GENESIS as GENESIS
from storage.audit import audit_hash as audit_hash
from storage.audit import list_audit as list_audit
from storage.audit import record_audit as record_audit
from storage.audit import verify_audit_chain as verify_audit_chain
from storage.db import core, kept_for_the_transaction
from storage.deferred import defer_insert, deferred_rows, write_now
from storage.models import (
    Assignment,
    Contract,
    Notice,
    OutboxMessage,
    Question,
    Reminder,
    RoleGrant,
    SeenRequest,
    Setting,
    table_of,
)

# NOTE: the statements of every request's reads are built once, here, with bound parameters: building one and
# computing its cache key cost about 0.1 ms of CPU each time, a tenth of a request's (bench/README.md).

# ---- contracts, questions, assignments ---------------------------------------------------------------

_CONTRACT = select(Contract).where(col(Contract.id) == bindparam("contract_id"))
_CONTRACT_LOCKED = _CONTRACT.with_for_update()


def get_contract(s: Session, contract_id: int, *, for_update: bool = False) -> Contract | None:
    """The contract with that number, row-locked on PostgreSQL when ``for_update`` (SQLite's BEGIN IMMEDIATE already serialises)."""
    stmt = _CONTRACT_LOCKED if for_update else _CONTRACT
    return s.execute(stmt, {"contract_id": contract_id}).scalars().first()


def get_contracts(s: Session, ids: Sequence[int] | set[int]) -> dict[int, Contract]:
    """Several contracts by number, in one query."""
    if not ids:
        return {}
    return {c.id: c for c in s.execute(select(Contract).where(col(Contract.id).in_(list(ids)))).scalars()}


def list_questions_of(s: Session, ids: Sequence[int] | set[int]) -> dict[int, list[Question]]:
    """Questions asked so far for several contracts, in one query: contract id -> questions in asking order."""
    out: dict[int, list[Question]] = {}
    if ids:
        write_now(s, table_of(Question))  # asked in this transaction, written at its commit
        stmt = select(Question).where(col(Question.contract_id).in_(list(ids))).order_by(col(Question.id))
        for q in s.execute(stmt).scalars():
            out.setdefault(q.contract_id, []).append(q)
    return out


_CONTRACT_ID_BY_SOURCE = select(col(Contract.id)).where(col(Contract.source_key) == bindparam("source_key"))


def get_contract_by_source(s: Session, source_key: str) -> Contract | None:
    """The contract filed from that modal submission (view.id), if any."""
    # usually none: probed without loading a contract
    found = core(s).execute(_CONTRACT_ID_BY_SOURCE, {"source_key": source_key}).scalar()
    return None if found is None else s.get(Contract, found)


# read (or, for the contracts filed, written) once per transaction
_FILED_HERE = kept_for_the_transaction("contract_bot_contracts_filed_here")
_ROLES_READ = kept_for_the_transaction("contract_bot_roles_read")
_ASSIGNMENTS_READ = kept_for_the_transaction("contract_bot_assignments_read")


def add_contract(s: Session, contract: Contract) -> Contract:
    """Insert a contract and return it with its number, held by the session as if loaded (later changes to it are
    written as an UPDATE)."""
    # NOTE: the ORM's flush would name all 54 columns, the unset ones as NULL; of a filing's CPU the flush was a
    # sixth. Only the columns that have a value are sent.
    values = {key: value for key in _CONTRACT_COLUMNS if (value := getattr(contract, key)) is not None}
    inserted = core(s).execute(_INSERT_CONTRACT, values).inserted_primary_key
    assert inserted is not None  # one row inserted
    contract.id = int(inserted[0])
    make_transient_to_detached(contract)
    s.add(contract)
    s.info.setdefault(_FILED_HERE, set()).add(contract.id)
    return contract


_CONTRACT_COLUMNS = tuple(c.key for c in table_of(Contract).columns if not c.primary_key)
_INSERT_CONTRACT = insert(table_of(Contract))


def readable_clause(scope: Scope) -> ColumnElement[bool] | None:
    """The contracts a reader may read (bot.domain.access.Scope: the same rule as ``may_read``) as a WHERE clause;
    None when they may read every contract."""
    if scope.everything:
        return None
    assigned = select(col(Assignment.contract_id)).where(col(Assignment.user_id) == scope.user_id)
    own = or_(col(Contract.filed_by) == scope.user_id, col(Contract.id).in_(assigned))
    return or_(~col(Contract.restricted), own) if scope.unrestricted else own


def visible_ids(s: Session, ids: Sequence[int] | set[int], visible: ColumnElement[bool] | None) -> set[int]:
    """Which of ``ids`` a reader may read (``visible`` from readable_clause)."""
    if visible is None:
        return set(ids)
    if not ids:
        return set()
    stmt = select(col(Contract.id)).where(col(Contract.id).in_(list(ids)), visible)
    return {int(i) for i in s.execute(stmt).scalars()}


def list_restricted_ids(s: Session) -> list[int]:
    """The numbers of the restricted contracts (`restrict CR-n`), oldest first."""
    stmt = select(col(Contract.id)).where(col(Contract.restricted)).order_by(col(Contract.id))
    return [int(i) for i in s.execute(stmt).scalars()]


def list_contracts(
    s: Session,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    open_only: bool = False,
    visible: ColumnElement[bool] | None = None,
) -> list[Contract]:
    """Contracts, newest first, optionally one status, optionally only those a reader may read (``visible``)."""
    stmt = select(Contract).order_by(col(Contract.id).desc()).limit(limit).offset(offset)
    if visible is not None:
        stmt = stmt.where(visible)
    if status:
        stmt = stmt.where(col(Contract.status) == status)
    if open_only:
        stmt = stmt.where(col(Contract.status) != "closed")
    return list(s.execute(stmt).scalars())


def count_contracts(
    s: Session, *, status: str | None = None, visible: ColumnElement[bool] | None = None
) -> int:
    """How many contracts (optionally of one status, optionally only those a reader may read)."""
    stmt = select(func.count()).select_from(Contract)
    if visible is not None:
        stmt = stmt.where(visible)
    if status:
        stmt = stmt.where(col(Contract.status) == status)
    return int(s.execute(stmt).scalar_one())


_QUESTIONS = (
    select(Question).where(col(Question.contract_id) == bindparam("contract_id")).order_by(col(Question.id))
)


def list_questions(s: Session, contract_id: int) -> list[Question]:
    """Questions asked so far for a contract."""
    write_now(s, table_of(Question))  # asked in this transaction, written at its commit
    return list(s.execute(_QUESTIONS, {"contract_id": contract_id}).scalars())


def add_questions(s: Session, rows: list[dict]) -> None:
    """Record questions as asked (contract_id, qid, asked_at), in one multi-row INSERT; those of a contract filed
    in this transaction are written with its commit (storage.deferred), unless a read of them comes first."""
    table = table_of(Question)
    filed_here = s.info.get(_FILED_HERE, ())
    if all(row["contract_id"] in filed_here for row in rows):
        for row in rows:
            defer_insert(s, table, row)
    else:
        s.connection().execute(insert(table), rows)


def get_question(s: Session, contract_id: int, qid: str) -> Question | None:
    """One asked question of a contract."""
    write_now(s, table_of(Question))  # asked in this transaction, written at its commit
    stmt = select(Question).where(col(Question.contract_id) == contract_id, col(Question.qid) == qid)
    return s.execute(stmt).scalars().first()


# ---- notices (the order's paperwork) ---------------------------------------------------------------------


def add_notice(
    s: Session,
    *,
    contract_id: int,
    kind: str,
    event: str,
    actor: str,
    at: datetime,
    sha256: str | None = None,
    on_date: date | None = None,
    ref: str | None = None,
) -> Notice:
    """Record a notice drafted or sent (event "drafted" | "sent")."""
    notice = Notice(
        contract_id=contract_id,
        kind=kind,
        event=event,
        sha256=sha256,
        actor=actor,
        at=at,
        on_date=on_date,
        ref=ref,
    )
    s.add(notice)
    s.flush()
    return notice


def last_notice(s: Session, contract_id: int, kind: str, event: str) -> Notice | None:
    """The latest notice of that kind and event for a contract (the last draft, the last recorded sending)."""
    stmt = (
        select(Notice)
        .where(col(Notice.contract_id) == contract_id, col(Notice.kind) == kind, col(Notice.event) == event)
        .order_by(col(Notice.id).desc())
        .limit(1)
    )
    return s.execute(stmt).scalars().first()


def notice_sent_ids(s: Session, kind: str, ids: Sequence[int] | set[int]) -> set[int]:
    """Which of these contracts have a notice of ``kind`` recorded as sent (one query, for lists of contracts)."""
    if not ids:
        return set()
    stmt = select(col(Notice.contract_id)).where(
        col(Notice.kind) == kind, col(Notice.event) == "sent", col(Notice.contract_id).in_(list(ids))
    )
    return set(s.execute(stmt).scalars())


def list_notices(s: Session, contract_id: int) -> list[Notice]:
    """Every notice drafted or sent for a contract, oldest first."""
    stmt = select(Notice).where(col(Notice.contract_id) == contract_id).order_by(col(Notice.id))
    return list(s.execute(stmt).scalars())


def list_assignments(s: Session, contract_id: int) -> list[str]:
    """User IDs of the reviewers assigned to a contract (read once per transaction: need-to-know and the view
    both ask)."""
    read: dict[int, list[str]] = s.info.setdefault(_ASSIGNMENTS_READ, {})
    if contract_id not in read:
        read[contract_id] = list(core(s).execute(_ASSIGNED, {"contract_id": contract_id}).scalars())
    return list(read[contract_id])


_ASSIGNED = (
    select(col(Assignment.user_id))
    .where(col(Assignment.contract_id) == bindparam("contract_id"))
    .order_by(col(Assignment.id))
)


def add_assignment(s: Session, assignment: Assignment) -> bool:
    """Assign a reviewer; False when already assigned."""
    if s.execute(
        select(col(Assignment.id)).where(
            col(Assignment.contract_id) == assignment.contract_id,
            col(Assignment.user_id) == assignment.user_id,
        )
    ).first():
        return False
    s.add(assignment)
    s.flush()
    s.info.pop(_ASSIGNMENTS_READ, None)  # the next read sees it
    return True


def list_open_questions_for_user(
    s: Session, user_id: str, limit: int = 20
) -> list[tuple[Contract, Question]]:
    """Unanswered questions on open contracts the user is assigned to."""
    stmt = (
        select(Contract, Question)
        .join(Question, col(Question.contract_id) == col(Contract.id))
        .join(
            Assignment,
            and_(col(Assignment.contract_id) == col(Contract.id), col(Assignment.user_id) == user_id),
        )
        .where(
            col(Question.answer).is_(None),
            col(Contract.status) != "closed",
            # a §2(j) re-determination reopens the answers
            or_(col(Contract.determination).is_(None), col(Contract.redetermination_on).is_not(None)),
        )
        .order_by(col(Contract.id), col(Question.id))
        .limit(limit)
    )
    return [(c, q) for c, q in s.execute(stmt).all()]


# ---- roles and settings ---------------------------------------------------------------------------------


def get_roles(s: Session, user_id: str) -> set[str]:
    """Roles granted to a user in the database (read once per transaction: the role check and need-to-know both
    ask)."""
    read: dict[str, set[str]] = s.info.setdefault(_ROLES_READ, {})
    if user_id not in read:
        read[user_id] = set(core(s).execute(_ROLES, {"user_id": user_id}).scalars())
    return set(read[user_id])


_ROLES = select(col(RoleGrant.role)).where(col(RoleGrant.user_id) == bindparam("user_id"))


def read_access(s: Session, user_id: str, contract_id: int) -> None:
    """A person's roles and a contract's assigned reviewers in one statement, kept for the transaction as
    ``get_roles`` and ``list_assignments`` keep them: a read of a contract checks both (need-to-know)."""
    roles: dict[str, set[str]] = s.info.setdefault(_ROLES_READ, {})
    assigned: dict[int, list[str]] = s.info.setdefault(_ASSIGNMENTS_READ, {})
    if user_id in roles and contract_id in assigned:
        return
    held: set[str] = set()
    assignees: list[tuple[int, str]] = []
    for kind, value, order in core(s).execute(_ACCESS, {"user_id": user_id, "contract_id": contract_id}):
        if kind == "role":
            held.add(value)
        else:
            assignees.append((order, value))
    roles[user_id] = held
    assigned[contract_id] = [user for _, user in sorted(assignees)]


# built once; a branch of a UNION cannot have its own ORDER BY, so the assignments' order comes with them
_ACCESS: CompoundSelect[Any] = union_all(
    select(literal("role", String), col(RoleGrant.role), literal(0, Integer)).where(
        col(RoleGrant.user_id) == bindparam("user_id")
    ),
    select(literal("assignee", String), col(Assignment.user_id), col(Assignment.id)).where(
        col(Assignment.contract_id) == bindparam("contract_id")
    ),
)


def add_role(s: Session, grant: RoleGrant) -> bool:
    """Grant a role; False when the user already had it."""
    if grant.role in get_roles(s, grant.user_id):
        return False
    s.add(grant)
    s.flush()
    s.info.pop(_ROLES_READ, None)  # read before the grant: the next read sees it
    return True


def remove_role(s: Session, user_id: str, role: str) -> bool:
    """Revoke a role; False when the user did not have it."""
    # a DELETE gives a CursorResult (rowcount); sqlmodel's Session.execute is annotated as returning plain Result
    result = cast(
        CursorResult[Any],
        s.execute(delete(RoleGrant).where(col(RoleGrant.user_id) == user_id, col(RoleGrant.role) == role)),
    )
    s.info.pop(_ROLES_READ, None)
    return (result.rowcount or 0) > 0


def list_role_grants(s: Session) -> list[RoleGrant]:
    """Every role grant, by role then user."""
    return list(s.execute(select(RoleGrant).order_by(col(RoleGrant.role), col(RoleGrant.user_id))).scalars())


def list_users_with_role(s: Session, role: str) -> list[str]:
    """User IDs holding a role in the database."""
    return list(
        s.execute(
            select(col(RoleGrant.user_id)).where(col(RoleGrant.role) == role).order_by(col(RoleGrant.user_id))
        ).scalars()
    )


def get_settings(s: Session) -> dict[str, str]:
    """All runtime settings, read once per transaction with the channels and list names (storage.configuration)."""
    return dict(configuration.read(s).settings)


def put_setting(s: Session, key: str, value: str, actor: str, at: datetime) -> str | None:
    """Set a runtime setting and return its previous value."""
    configuration.forget(s)
    row = s.get(Setting, key)
    before = row.value if row else None
    if row is None:
        s.add(Setting(key=key, value=value, updated_by=actor, updated_at=at))
    else:
        row.value, row.updated_by, row.updated_at = value, actor, at
    s.flush()
    return before


# ---- audit: moved to storage/audit.py (imported above, so ``repo.record_audit`` and the rest keep working) ----


# ---- outbox ------------------------------------------------------------------------------------------------


def add_outbox(
    s: Session,
    *,
    at: datetime,
    op: str,
    target: str,
    payload: dict,
    contract_id: int | None = None,
    message_key: str | None = None,
) -> None:
    """Queue a message for Slack in the caller's transaction; written, in order, when it commits."""
    defer_insert(
        s,
        table_of(OutboxMessage),
        {
            "created_at": at,
            "contract_id": contract_id,
            "op": op,
            "target": target,
            "message_key": message_key,
            "payload": json.dumps(payload, ensure_ascii=False),
            "next_attempt_at": at,
            "status": "pending",
            "attempts": 0,
        },
    )


def update_parent(s: Session, contract_id: int | None, at: datetime) -> None:
    """Queue an edit of the contract's parent message (its status and progress), rendered when it is sent."""
    add_outbox(
        s,
        at=at,
        op="update",
        target="thread",
        contract_id=contract_id,
        message_key="parent",
        payload={"render": "parent"},
    )


def claim_outbox(
    s: Session, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxMessage]:
    """Claim due messages atomically (SKIP LOCKED on PostgreSQL), oldest first and one at a time per contract."""
    rows = list(s.execute(_claim_outbox(), _claim_params(worker, now, lease, limit)).scalars())
    rows.sort(key=lambda r: r.id)
    return rows


def _claim_params(worker: str, now: datetime, lease: timedelta, limit: int) -> dict[str, object]:
    """The bound values of both claim statements (`_claim_outbox`, `_claim_due_reminders`)."""
    return {"claim_worker": worker, "claim_now": now, "claim_until": now + lease, "claim_limit": limit}


# Built once: the delivery loop claims after every commit, most often finding nothing, and building this statement
# (an alias, a subquery) cost more than running it.
@functools.cache
def _claim_outbox():  # sqlmodel's own Update type
    # the mapper's table is Model.__table__, which SQLModel's class annotations do not declare
    earlier = inspect(OutboxMessage).local_table.alias("earlier")
    blocked = exists().where(
        earlier.c.contract_id == col(OutboxMessage.contract_id),
        earlier.c.status == "pending",
        earlier.c.id < col(OutboxMessage.id),
    )
    now = bindparam("claim_now", type_=table_of(OutboxMessage).c.next_attempt_at.type)
    due = (
        select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.status) == "pending",
            col(OutboxMessage.next_attempt_at) <= now,
            or_(col(OutboxMessage.lease_until).is_(None), col(OutboxMessage.lease_until) < now),
            or_(col(OutboxMessage.contract_id).is_(None), ~blocked),
        )
        .order_by(col(OutboxMessage.id))
        .limit(bindparam("claim_limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(due.scalar_subquery()))
        .values(
            claimed_by=bindparam("claim_worker", type_=table_of(OutboxMessage).c.claimed_by.type),
            lease_until=bindparam("claim_until", type_=table_of(OutboxMessage).c.lease_until.type),
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )


def count_outbox(s: Session, status: str = "pending") -> int:
    """How many outbox messages have a status."""
    return int(
        s.execute(
            select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status) == status)
        ).scalar_one()
    )


# ---- reminders ----------------------------------------------------------------------------------------------


def add_reminder(
    s: Session,
    *,
    key: str,
    kind: str,
    due_at: datetime,
    contract_id: int | None = None,
    data: dict | None = None,
) -> bool:
    """Schedule a reminder unless one with the same key is pending or done; True when added.

    A cancelled row with the same key is revived (it never went out): a stop-work lifted and issued again on
    the same day must ping again. A sent or skipped one is never scheduled twice.
    """
    # Rows added in this transaction are looked up in the session, not flushed for the query: a flush per
    # reminder split a filing's inserts into many round trips (bench/README.md).
    encoded = None if data is None else json.dumps(data, default=str)
    if contract_id is not None and contract_id in s.info.get(_FILED_HERE, ()):
        # a contract filed in this unit of work has no stored reminder (its reminders' keys name it): its own are
        # written with the commit (storage.deferred), unless a read of them comes first
        if any(row["key"] == key for row in deferred_rows(s, table_of(Reminder))):
            return False
        row = {
            "contract_id": contract_id,
            "kind": kind,
            "key": key,
            "due_at": due_at,
            "status": "pending",
            "data": encoded,
        }
        defer_insert(s, table_of(Reminder), row)
        return True
    existing = next((o for o in s.new if isinstance(o, Reminder) and o.key == key), None)
    if existing is None:
        with s.no_autoflush:
            existing = s.execute(select(Reminder).where(col(Reminder.key) == key)).scalars().first()
    if existing is not None:
        if existing.status != "cancelled":
            return False
        existing.status, existing.due_at, existing.data, existing.kind = "pending", due_at, encoded, kind
        existing.claimed_by = existing.lease_until = existing.sent_at = None
        s.add(existing)
        return True
    s.add(Reminder(key=key, kind=kind, due_at=due_at, contract_id=contract_id, data=encoded))
    return True


def postpone_reminders(
    s: Session, *, contract_id: int | None, kind: str, until: datetime, section: str | None = None
) -> int:
    """Move a recurring series' pending occurrences due before ``until`` to ``until`` (a snooze); how many."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    stmt = select(Reminder).where(
        col(Reminder.status) == "pending", col(Reminder.kind) == kind, col(Reminder.due_at) < until
    )
    stmt = stmt.where(
        col(Reminder.contract_id).is_(None)
        if contract_id is None
        else col(Reminder.contract_id) == contract_id
    )
    moved = 0
    for r in s.execute(stmt).scalars():
        if section is not None and (reminder_data(r) or {}).get("section") != section:
            continue
        r.due_at, r.lease_until = until, None
        s.add(r)
        moved += 1
    s.flush()
    return moved


def cancel_reminders(s: Session, contract_id: int, kinds: Sequence[str] | None = None) -> int:
    """Cancel a contract's pending reminders (optionally some kinds); returns how many."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    stmt = update(Reminder).where(col(Reminder.contract_id) == contract_id, col(Reminder.status) == "pending")
    if kinds:
        stmt = stmt.where(col(Reminder.kind).in_(list(kinds)))
    # an UPDATE gives a CursorResult (rowcount); sqlmodel's Session.execute is annotated as returning plain Result
    result = cast(
        CursorResult[Any],
        s.execute(stmt.values(status="cancelled").execution_options(synchronize_session=False)),
    )
    return result.rowcount or 0


def claim_due_reminders(
    s: Session, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Reminder]:
    """Claim due reminders atomically (SKIP LOCKED on PostgreSQL; SQLite serialises writers)."""
    rows = list(s.execute(_claim_due_reminders(), _claim_params(worker, now, lease, limit)).scalars())
    rows.sort(key=lambda r: (r.due_at, r.id))
    return rows


@functools.cache  # built once, as the outbox's claim
def _claim_due_reminders():  # sqlmodel's own Update type
    now = bindparam("claim_now", type_=table_of(Reminder).c.due_at.type)
    due = (
        select(col(Reminder.id))
        .where(
            col(Reminder.status) == "pending",
            col(Reminder.due_at) <= now,
            or_(col(Reminder.lease_until).is_(None), col(Reminder.lease_until) < now),
        )
        .order_by(col(Reminder.due_at), col(Reminder.id))
        .limit(bindparam("claim_limit"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(Reminder)
        .where(col(Reminder.id).in_(due.scalar_subquery()))
        .values(
            claimed_by=bindparam("claim_worker", type_=table_of(Reminder).c.claimed_by.type),
            lease_until=bindparam("claim_until", type_=table_of(Reminder).c.lease_until.type),
        )
        .returning(Reminder)
        .execution_options(synchronize_session=False)
    )


def list_pending_reminders(
    s: Session, *, until: datetime | None = None, contract_id: int | None = None, limit: int = 500
) -> list[Reminder]:
    """Pending reminders, soonest first, optionally due by ``until`` or for one contract."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    stmt = _pending_reminders(until is not None, contract_id is not None)
    params = {"limit": limit, "until": until, "contract_id": contract_id}
    return list(s.execute(stmt, params).scalars())


@functools.cache
def _pending_reminders(by_time: bool, of_contract: bool):  # sqlmodel's own Select type
    stmt = (
        select(Reminder)
        .where(col(Reminder.status) == "pending")
        .order_by(col(Reminder.due_at), col(Reminder.id))
        .limit(bindparam("limit"))
    )
    if by_time:
        stmt = stmt.where(col(Reminder.due_at) <= bindparam("until"))
    if of_contract:
        stmt = stmt.where(col(Reminder.contract_id) == bindparam("contract_id"))
    return stmt


# ---- seen requests (idempotency of retried deliveries) ----------------------------------------------------------


def record_seen(s: Session, key: str, at: datetime) -> bool:
    """Remember a delivery key; False when it was seen before (the caller then does nothing)."""
    if s.get(SeenRequest, key) is not None:
        return False
    try:
        with s.begin_nested():  # add inside the savepoint: begin_nested() flushes what is already pending
            s.add(SeenRequest(key=key, at=at))
            s.flush()
    except IntegrityError:
        return False
    return True


def get_reminder_by_key(s: Session, key: str) -> Reminder | None:
    """One reminder by its key."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    return s.execute(select(Reminder).where(col(Reminder.key) == key)).scalars().first()


def reminder_data(r: Reminder) -> dict | None:
    """A reminder's data as a dict."""
    return json.loads(r.data) if r.data else None


def count_by_status(s: Session, visible: ColumnElement[bool] | None = None) -> dict[str, int]:
    """How many contracts are in each status (optionally only those a reader may read)."""
    stmt = select(col(Contract.status), func.count()).group_by(col(Contract.status))
    rows = s.execute(stmt if visible is None else stmt.where(visible)).all()
    return {status: int(n) for status, n in rows}


def list_stopworks(s: Session, limit: int, visible: ColumnElement[bool] | None = None) -> list[Contract]:
    """Open contracts with a stop-work order in effect, oldest first (optionally only those a reader may read)."""
    stmt = (
        select(Contract)
        .where(col(Contract.stopwork_since).is_not(None), col(Contract.closed_on).is_(None))
        .order_by(col(Contract.stopwork_since))
        .limit(limit)
    )
    return list(s.execute(stmt if visible is None else stmt.where(visible)).scalars())


def list_waiting(
    s: Session, limit: int, today: date | None = None, visible: ColumnElement[bool] | None = None
) -> list[Contract]:
    """Open contracts whose APNSA waiting period is running or just ended. Given ``today``, every open contract whose
    7-day period has not ended by then, also under a stop-work order (where the status says stop-work)."""
    if today is None:
        stmt = (
            select(Contract)
            .where(col(Contract.status) == "waiting")
            .order_by(col(Contract.notice_on))
            .limit(limit)
        )
    else:
        stmt = (
            select(Contract)
            .where(
                col(Contract.notice_on).is_not(None),
                col(Contract.notice_on) >= today - timedelta(days=7),
                col(Contract.cleared_on).is_(None),
                col(Contract.closed_on).is_(None),
            )
            .order_by(col(Contract.notice_on), col(Contract.id))
            .limit(limit)
        )
    return list(s.execute(stmt if visible is None else stmt.where(visible)).scalars())


# ---- records and people (issue 13): held reminders, filing look-alikes --------------------------------------


def hold_reminders(s: Session, contract_id: int) -> int:
    """Hold a closed contract's pending reminders (status "held": never claimed); returns how many."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    stmt = update(Reminder).where(col(Reminder.contract_id) == contract_id, col(Reminder.status) == "pending")
    result = cast(
        CursorResult[Any],
        s.execute(stmt.values(status="held").execution_options(synchronize_session=False)),
    )
    return result.rowcount or 0


def release_held_reminders(s: Session, contract_id: int) -> int:
    """A reopened contract's held reminders are pending again (each re-checks its condition when due)."""
    write_now(s, table_of(Reminder))  # added in this transaction, written at its commit
    stmt = update(Reminder).where(col(Reminder.contract_id) == contract_id, col(Reminder.status) == "held")
    result = cast(
        CursorResult[Any],
        s.execute(stmt.values(status="pending").execution_options(synchronize_session=False)),
    )
    return result.rowcount or 0


def was_seen(s: Session, key: str) -> bool:
    """Whether a key was recorded with record_seen."""
    return s.get(SeenRequest, key) is not None


def find_open_contract_by_filing_key(s: Session, filing_key: str) -> Contract | None:
    """The oldest open (not closed) contract filed with this ``review.filing_fingerprint``."""
    # usually none: probed without loading a contract
    found = core(s).execute(_OPEN_BY_FILING_KEY, {"filing_key": filing_key}).scalar()
    return None if found is None else s.get(Contract, found)


_OPEN_BY_FILING_KEY = (
    select(col(Contract.id))
    .where(col(Contract.filing_key) == bindparam("filing_key"), col(Contract.closed_on).is_(None))
    .order_by(col(Contract.id))
    .limit(1)
)


def list_open_with_deadlines(s: Session, limit: int) -> list[Contract]:
    """Open contracts that may have a dated obligation: a waiver (its expiry, its 72-hour report), an excluded
    purpose (the §4(b) notice), a stop-work order (its lapse) or a period of performance's end, oldest first."""
    stmt = (
        select(Contract)
        .where(
            col(Contract.closed_on).is_(None),
            or_(
                col(Contract.waiver_issued_on).is_not(None),
                col(Contract.purpose) == "excluded",
                col(Contract.stopwork_since).is_not(None),
                col(Contract.term_ends).is_not(None),
            ),
        )
        .order_by(col(Contract.id))
        .limit(limit)
    )
    return list(s.execute(stmt).scalars())


def list_reviews_due(s: Session, limit: int) -> list[Contract]:
    """Open contracts with a §2(j) review due (a vendor event opened it), the longest due first."""
    stmt = (
        select(Contract)
        .where(col(Contract.closed_on).is_(None), col(Contract.review_due_since).is_not(None))
        .order_by(col(Contract.review_due_since), col(Contract.id))
        .limit(limit)
    )
    return list(s.execute(stmt).scalars())


def get_setting_locked(s: Session, key: str) -> str | None:
    """One setting's value, its row locked until the transaction ends (PostgreSQL; SQLite serialises writers)."""
    row = s.execute(select(Setting).where(col(Setting.key) == key).with_for_update()).scalars().first()
    return row.value if row else None


def list_open_assignments_of(s: Session, user_id: str, limit: int = 20) -> list[int]:
    """Numbers of the open (not closed) contracts a user is assigned to review, oldest first."""
    stmt = (
        select(col(Contract.id))
        .join(Assignment, col(Assignment.contract_id) == col(Contract.id))
        .where(col(Assignment.user_id) == user_id, col(Contract.closed_on).is_(None))
        .order_by(col(Contract.id))
        .limit(limit)
    )
    return list(s.execute(stmt).scalars())
