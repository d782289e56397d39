"""Engines, sessions and migrations. One unit of work per request or job: repositories never commit."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
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
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    connect_args = {}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True, connect_args=connect_args)


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


@contextlib.contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
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
