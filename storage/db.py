"""Engines, sessions and migrations. One unit of work per request or job: repositories never commit."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SessionFactory = Callable[[], Session]
READ_ONLY = "contract_bot_read_only"


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> Engine:
    """An engine for ``url``: SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE; PostgreSQL a pool."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        write_lock = threading.Lock()

        class WriterConnection(sqlite3.Connection):
            """Holds this process's write lock from BEGIN IMMEDIATE to COMMIT/ROLLBACK.

            SQLite's busy handler retries a locked database by sleeping 1, 2, 5 … 100 ms, with no order among the
            waiters: under a burst one writer can lose for a second. Threads of one process queue on a lock
            instead and go the instant it is free; other processes still meet SQLite's own lock.
            """

            holds_write_lock = False

            def take_write_lock(self) -> None:
                if not write_lock.acquire(timeout=30):
                    raise sqlite3.OperationalError(
                        "database is locked (waited 30 s for this process's writers)"
                    )
                self.holds_write_lock = True

            def _release(self) -> None:
                if self.holds_write_lock:
                    self.holds_write_lock = False
                    write_lock.release()

            def commit(self) -> None:
                try:
                    super().commit()
                finally:
                    self._release()

            def rollback(self) -> None:
                try:
                    super().rollback()
                finally:
                    self._release()

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    self._release()

        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "factory": WriterConnection}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # noqa: ANN001
            # NOTE: take transaction control from pysqlite so that we can BEGIN IMMEDIATE (F4.2): a
            # deferred transaction that reads and then writes fails with SQLITE_BUSY without waiting.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # A unit of work that may write takes the write lock up front; a read-only one (see `read_only`)
            # must not, or every `show` would queue behind writers (WAL lets it read alongside them).
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            dbapi_conn = conn.connection.dbapi_connection
            dbapi_conn.take_write_lock()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                dbapi_conn.rollback()  # releases the lock; there is no transaction to end
                raise

        return engine
    connect_args = {}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(
        url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True, connect_args=connect_args
    )


def sqlite_file(engine: Engine) -> str | None:
    """The file of a SQLite database on disk; None for another database or an in-memory one."""
    url = engine.url
    if (
        url.get_backend_name() != "sqlite"
        or url.database in (None, "", ":memory:")
        or "mode=memory" in str(url)
    ):
        return None
    return url.database


def inbox_engine(engine: Engine) -> Engine:
    """Where acknowledged requests are recorded: on a SQLite file, a file of its own beside it (``<file>.inbox``),
    so recording one never waits behind the main database's single write lock; otherwise the same database."""
    path = sqlite_file(engine)
    if path is None:
        return engine
    from storage.models import InboxItem

    inbox = make_engine(str(engine.url.set(database=f"{path}.inbox")))
    InboxItem.__table__.create(inbox, checkfirst=True)  # a spool, not part of the migrated schema
    return inbox


def journal_dir(engine: Engine, setting: str | None = None) -> str | None:
    """Where acknowledged requests are journaled (storage.journal): ``setting`` (INBOX_JOURNAL_DIR) when given,
    "off" for none; by default a directory beside a SQLite file (``<file>.journal``) and none otherwise (a
    PostgreSQL deployment may run where the local disk does not outlive the process, so it opts in)."""
    if setting:
        return None if setting.strip().lower() == "off" else setting
    path = sqlite_file(engine)
    return None if path is None else f"{path}.journal"


def session_factory(engine: Engine) -> SessionFactory:
    """A factory of sessions that keep loaded objects usable after commit."""

    def factory() -> Session:
        return Session(engine, expire_on_commit=False)

    return factory


@contextlib.contextmanager
def read_only(factory: SessionFactory) -> Iterator[Session]:
    """A transaction that only reads: on SQLite it does not take the write lock; nothing is committed."""
    session = factory()
    try:
        session.connection(execution_options={READ_ONLY: True})
        yield session
    finally:
        session.close()  # ends the transaction; unlike rollback() it leaves loaded objects readable


class InboxItemGone(Exception):
    """The acknowledged request this work carries out was already carried out (by another process): roll back."""


@dataclass
class Settlement:
    """The acknowledged request (inbox key) the current thread is carrying out, and whether a commit settled it."""

    key: str
    settled: bool = False


_settlement: ContextVar[Settlement | None] = ContextVar("contract_bot_settlement", default=None)


@contextlib.contextmanager
def settling(key: str | None) -> Iterator[Settlement | None]:
    """Carry out an inbox request: the first unit of work that commits in this block records the request's key as
    seen in its own transaction, so the work and "it is done" are one atomic fact (a crash replays it once)."""
    settlement = Settlement(key) if key is not None else None
    token = _settlement.set(settlement)
    try:
        yield settlement
    finally:
        _settlement.reset(token)


@contextlib.contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    session = factory()
    settlement = _settlement.get()
    try:
        yield session
        if settlement is not None and not settlement.settled:
            from storage.repositories import record_seen

            if not record_seen(session, f"inbox:{settlement.key}", datetime.now(UTC)):
                raise InboxItemGone(f"inbox request {settlement.key} was already carried out")
        session.commit()
        if settlement is not None:
            settlement.settled = True
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision (safe with several processes starting)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Several replicas may start at once: one migrates, the others wait and then find nothing to do.
            conn.execute(text("SELECT pg_advisory_lock(140930)"))
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
            if conn.dialect.name == "sqlite":
                # Give SQLite's planner statistics, or it may walk the wrong index as tables grow.
                conn.exec_driver_sql("PRAGMA optimize")
                conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(140930)"))
                conn.commit()


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - health check reports, never raises
        log.warning("database ping failed", exc_info=True)
        return False
