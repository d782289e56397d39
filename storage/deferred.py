"""Rows a unit of work writes only when it commits: the outbox's Slack messages, the signed request's digest and
the audit chain's entries (with the chain's head).

They are written by one ``before_commit`` hook, in that order, the head of the chain locked last: every writer
waits on that lock, so it is held for two statements and the commit, not for the unit of work. On PostgreSQL all
of them go in one statement (data-modifying CTEs over arrays, one per column, so the statement's text does not
change with the number of rows and the server plans it once per connection; the arrays are bound in the binary
format); SQLite gets a statement per table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event, insert, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

_PENDING = "contract_bot_deferred_rows"


@dataclass
class Chained:
    """What the audit chain appends at a commit: its entries' rows, and the head's new (seq, hash)."""

    table: Table
    rows: list[dict[str, Any]]
    head: Table
    seq: int
    hash: str


# The audit chain's part of the commit (storage.audit registers it): it locks the head and returns what to append,
# or None; it may queue a checkpoint's outbox message with ``defer_insert`` first. ``_chain_key``: where in
# Session.info the chain keeps the entries it has to append.
_chain: Callable[[Session], Chained | None] | None = None
_chain_key = ""
# A unique key's clash in a table, as the error the owner of that table wants raised (storage.replays).
_on_conflict: dict[str, Callable[[], Exception]] = {}


def register_chain(fn: Callable[[Session], Chained | None], info_key: str) -> None:
    global _chain, _chain_key
    _chain, _chain_key = fn, info_key


def on_conflict(table: Table, make_error: Callable[[], Exception]) -> None:
    """Raise ``make_error()`` instead of IntegrityError when a deferred row clashes with a unique key of ``table``."""
    _on_conflict[table.name] = make_error


def defer_insert(s: Session, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session's transaction commits (rows of a table keep their order)."""
    pending: dict[str, tuple[Table, list[dict[str, Any]]]] = s.info.setdefault(_PENDING, {})
    pending.setdefault(table.name, (table, []))[1].append(row)


def deferred_rows(s: Session, table: Table) -> list[dict[str, Any]]:
    """The rows deferred for ``table`` so far in this transaction (not to be changed)."""
    pending: dict[str, tuple[Table, list[dict[str, Any]]]] | None = s.info.get(_PENDING)
    return pending[table.name][1] if pending and table.name in pending else []


def write_now(s: Session, table: Table) -> None:
    """Insert the rows deferred for ``table`` now: for a read of that table in the same transaction."""
    pending: dict[str, tuple[Table, list[dict[str, Any]]]] | None = s.info.get(_PENDING)
    if pending and table.name in pending:
        _, rows = pending.pop(table.name)
        s.connection().execute(insert(table), rows)


@event.listens_for(Session, "before_commit")
def _write_deferred(s: Session) -> None:
    if not (s.new or s.dirty or s.deleted or s.info.get(_PENDING) or s.info.get(_chain_key)):
        return
    # the transaction begins here if nothing has run yet: what its after_begin hooks queue (the signed request's
    # digest) must be in the rows taken below, and the ORM flushes only after this hook
    conn = s.connection()
    # the chain first, before the rows are taken: it may queue a checkpoint's message
    chained = _chain(s) if _chain is not None else None
    pending: dict[str, tuple[Table, list[dict[str, Any]]]] = s.info.pop(_PENDING, {})
    if not pending and chained is None:
        return
    try:
        if conn.dialect.name == "postgresql":
            _write_in_one_statement(conn, pending, chained)
        else:
            for table, rows in pending.values():
                conn.execute(insert(table), rows)
            if chained is not None:
                conn.execute(insert(chained.table), chained.rows)
                conn.execute(
                    update(chained.head)
                    .where(chained.head.c.id == 1)
                    .values(seq=chained.seq, hash=chained.hash)
                )
    except IntegrityError as exc:
        clashed = _clashing_table(exc, pending)
        if clashed in _on_conflict:
            raise _on_conflict[clashed]() from None
        raise


@event.listens_for(Session, "after_rollback")
def _forget_deferred(s: Session) -> None:
    if not s.in_nested_transaction():  # a savepoint's rollback keeps what the transaction queued before it
        s.info.pop(_PENDING, None)


def _clashing_table(
    exc: IntegrityError, pending: dict[str, tuple[Table, list[dict[str, Any]]]]
) -> str | None:
    diag = getattr(exc.orig, "diag", None)  # psycopg names the table
    if diag is not None and getattr(diag, "table_name", None):
        return str(diag.table_name)
    message = str(exc.orig)  # sqlite3: "UNIQUE constraint failed: signed_request.digest"
    return next((name for name in pending if f"failed: {name}." in message), None)


# ---- PostgreSQL: one statement --------------------------------------------------------------------------------

# per shape of the rows (tables and their columns): the statement, and each table's parameter prefix and columns
_STATEMENTS: dict[tuple, tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {}


def _write_in_one_statement(
    conn: Connection, pending: dict[str, tuple[Table, list[dict[str, Any]]]], chained: Chained | None
) -> None:
    parts = [(table, rows) for table, rows in pending.values() if rows]
    if chained is not None:
        parts.append((chained.table, chained.rows))
    shape = tuple((table.name, tuple(rows[0])) for table, rows in parts) + ((chained is not None),)
    made = _STATEMENTS.get(shape)
    if made is None:
        made = _STATEMENTS[shape] = _statement(conn.dialect, parts, chained)
    sql, columns = made
    params: dict[str, Any] = {}
    for (table, rows), (prefix, keys) in zip(parts, columns, strict=True):
        for key in keys:
            process = _bind_processor(conn.dialect, table, key)
            values = [row[key] for row in rows]
            params[f"{prefix}{key}"] = [process(v) for v in values] if process else values
    if chained is not None:
        params["head_seq"], params["head_hash"] = chained.seq, chained.hash
    conn.exec_driver_sql(sql, params)


def _statement(
    dialect: Dialect, parts: list[tuple[Table, list[dict[str, Any]]]], chained: Chained | None
) -> tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    ctes, columns = [], []
    for n, (table, rows) in enumerate(parts):
        keys = tuple(rows[0])
        prefix = f"t{n}_"
        names = ", ".join(f'"{k}"' for k in keys)
        # %(…)b: each array is sent in PostgreSQL's binary format, a third of the CPU of the text format, which
        # quotes and escapes every element in Python
        arrays = ", ".join(
            f"CAST(%({prefix}{k})b AS {table.c[k].type.compile(dialect=dialect)}[])" for k in keys
        )
        # WITH ORDINALITY ... ORDER BY: the rows are numbered (their serial ids) in the order they were queued
        ctes.append(
            f'w{n} AS (INSERT INTO "{table.name}" ({names}) SELECT {names} FROM unnest({arrays}) '
            f"WITH ORDINALITY AS u({names}, _ord) ORDER BY _ord)"
        )
        columns.append((prefix, keys))
    if chained is not None:
        final = f'UPDATE "{chained.head.name}" SET seq = %(head_seq)s, hash = %(head_hash)s WHERE id = 1'
    else:
        final = "SELECT 1"
    return "WITH " + ", ".join(ctes) + " " + final, tuple(columns)


_PROCESSORS: dict[tuple[str, str, str], Callable[[Any], Any] | None] = {}


def _bind_processor(dialect: Dialect, table: Table, key: str) -> Callable[[Any], Any] | None:
    found = (dialect.name, table.name, key)
    if found not in _PROCESSORS:
        _PROCESSORS[found] = table.c[key].type.bind_processor(dialect)
    return _PROCESSORS[found]
