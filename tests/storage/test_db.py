"""storage.db on PostgreSQL: a request's transaction has the short timeouts without a statement of its own for
them, background work the long ones, a request's reads need no transaction, and a pooled connection the server
dropped while it sat idle is replaced before a request gets it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from storage import db as storage_db
from storage.db import (
    BACKGROUND_DB_TIMEOUT_MS,
    REQUEST_DB_TIMEOUT_MS,
    CommitGuard,
    guarded,
    make_engine,
    read_only,
    session_factory,
    unit_of_work,
)

PG_URL = os.environ.get("TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped")


@pytest.fixture
def engine():
    assert PG_URL
    engine = make_engine(PG_URL, pool_size=1)
    yield engine
    engine.dispose()


def timeouts(factory) -> tuple[str, str]:
    with unit_of_work(factory) as s:
        return (
            s.execute(text("SHOW statement_timeout")).scalar_one(),
            s.execute(text("SHOW lock_timeout")).scalar_one(),
        )


def in_ms(setting: str) -> int:
    value = int("".join(ch for ch in setting if ch.isdigit()))
    return value * 1000 if setting.endswith("s") and not setting.endswith("ms") else value


def test_requests_get_the_short_timeouts_and_background_work_the_long_ones(engine):
    factory = session_factory(engine)
    with guarded(CommitGuard()):
        statement, lock = timeouts(factory)
    assert (in_ms(statement), in_ms(lock)) == (REQUEST_DB_TIMEOUT_MS, REQUEST_DB_TIMEOUT_MS)
    statement, lock = timeouts(factory)
    assert (in_ms(statement), in_ms(lock)) == (BACKGROUND_DB_TIMEOUT_MS, BACKGROUND_DB_TIMEOUT_MS)
    with guarded(CommitGuard()):  # SET LOCAL: the background's did not stay on the pooled connection
        statement, _ = timeouts(factory)
    assert in_ms(statement) == REQUEST_DB_TIMEOUT_MS


def test_a_requests_reads_run_without_a_transaction_and_the_background_keeps_its_own(engine):
    factory = session_factory(engine)

    def read() -> tuple[str, bool, str]:
        with read_only(factory) as s:
            s.execute(text("SELECT 1"))
            raw = s.connection().connection.dbapi_connection
            assert raw is not None
            return (
                raw.info.transaction_status.name,
                raw.autocommit,
                s.execute(text("SHOW statement_timeout")).scalar_one(),
            )

    # no BEGIN, no ROLLBACK: under READ COMMITTED a read-only request sees the same
    with guarded(CommitGuard()):
        status, autocommit, statement = read()
    assert (status, autocommit, in_ms(statement)) == ("IDLE", True, REQUEST_DB_TIMEOUT_MS)
    status, autocommit, statement = read()  # background reads keep their transaction and its long timeouts
    assert (status, autocommit, in_ms(statement)) == ("INTRANS", False, BACKGROUND_DB_TIMEOUT_MS)
    with unit_of_work(factory) as s:  # the pooled connection went back to transactions
        s.execute(text("SELECT 1"))
        raw = s.connection().connection.dbapi_connection
        assert raw is not None and raw.info.transaction_status.name == "INTRANS"


def test_a_connection_dropped_while_idle_is_replaced_before_use(engine, monkeypatch):
    assert PG_URL
    factory = session_factory(engine)
    with unit_of_work(factory) as s:
        first = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # the server restarts, or a proxy drops the path, while the bot is idle
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    monkeypatch.setattr(storage_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with guarded(CommitGuard()), unit_of_work(factory) as s:
        second = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert second != first


def test_a_connection_in_steady_use_is_not_pinged(engine, monkeypatch):
    factory = session_factory(engine)
    pings = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection):  # SQLAlchemy's own ping, counted
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    for _ in range(3):
        with unit_of_work(factory) as s:
            s.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(storage_db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with unit_of_work(factory) as s:
        s.execute(text("SELECT 1"))
    assert pings == [1]
