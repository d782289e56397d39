"""Engines, sessions and migrations. One unit of work per request or job: repositories never commit."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SessionFactory = Callable[[], Session]
READ_ONLY = "contract_bot_read_only"


# A request's unit of work must finish within Slack's 3 s, with room for the answer; background work may wait longer.
REQUEST_DB_TIMEOUT_MS = 1500
BACKGROUND_DB_TIMEOUT_MS = 30_000


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> Engine:
    """An engine for ``url``: SQLite gets WAL, busy timeouts and BEGIN IMMEDIATE; PostgreSQL a pool with timeouts.

    Lock and statement timeouts are short inside a request (``CommitGuard`` set) and long in background work, so no
    thread waits on the database without bound; the request's own deadline (``CommitGuard``) covers the rest.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BACKGROUND_DB_TIMEOUT_MS / 1000}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # noqa: ANN001
            # NOTE: take transaction control from pysqlite so that we can BEGIN IMMEDIATE (F4.2): a
            # deferred transaction that reads and then writes fails with SQLITE_BUSY without waiting.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            busy_ms = REQUEST_DB_TIMEOUT_MS if _guard.get() is not None else BACKGROUND_DB_TIMEOUT_MS
            conn.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")
            # A unit of work that may write takes the write lock up front; a read-only one (see `read_only`)
            # must not, or every `show` would queue behind writers (WAL lets it read alongside them).
            conn.exec_driver_sql(
                "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE"
            )

        return engine
    connect_args: dict[str, object] = {
        "connect_timeout": 2,
        # The connection's own timeouts are a request's, so the hot path sends nothing for them; background work
        # raises them per transaction (`_postgresql_begin`).
        "options": f"-c statement_timeout={REQUEST_DB_TIMEOUT_MS} -c lock_timeout={REQUEST_DB_TIMEOUT_MS}"
        " -c idle_in_transaction_session_timeout=60000",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        # A connection whose peer vanished without a word (a dropped network path) is given up after 10 s,
        # not the operating system's 15 minutes: keepalives only probe an idle connection.
        "tcp_user_timeout": 10_000,
    }
    url_options = parsed.query.get("options")  # e.g. ?options=-csearch_path%3Dx: kept, ours come first
    if url_options:
        connect_args["options"] = f"{connect_args['options']} {url_options}"
    if schema:
        connect_args["options"] = f"{connect_args['options']} -csearch_path={schema}"
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=20,
        pool_timeout=2,
        connect_args=connect_args,
    )
    _ping_when_idle(engine)

    @event.listens_for(engine, "begin")
    def _postgresql_begin(conn):  # noqa: ANN001
        # background work: a server that never answers must not hold it for ever either
        if _guard.get() is None:
            conn.exec_driver_sql(
                f"SET LOCAL statement_timeout = {BACKGROUND_DB_TIMEOUT_MS}; "
                f"SET LOCAL lock_timeout = {BACKGROUND_DB_TIMEOUT_MS}"
            )

    return engine


# A pooled connection unused for this long is pinged before it is handed out; one in steady use is not.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle (a restarted server, a dropped path).

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per request. A connection that failed
    during use is discarded by SQLAlchemy itself (and the request answered "nothing recorded").
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):  # noqa: ANN001
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one that was in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool discards it and takes another


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


def session_factory(engine: Engine) -> SessionFactory:
    """A factory of sessions that keep loaded objects usable after commit."""

    def factory() -> Session:
        return Session(engine, expire_on_commit=False)

    return factory


# keys of Session.info holding what one transaction read once (settings, roles, aliases, ...)
_TRANSACTION_READS: set[str] = set()


def kept_for_the_transaction(key: str) -> str:
    """Register ``key`` of Session.info as holding reads of one transaction; returns it."""
    _TRANSACTION_READS.add(key)
    return key


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_transaction_reads(s: Session) -> None:
    # the next transaction of a long-lived session (the reminder job) reads afresh
    for key in _TRANSACTION_READS:
        s.info.pop(key, None)


def core(s: Session) -> Connection:
    """The session's connection, for a read in SQLAlchemy Core on the hot path (a few times cheaper than the ORM's
    statements): what the session holds is flushed first, as the ORM's own reads would."""
    if s.new or s.dirty or s.deleted:
        s.flush()
    return s.connection()


@contextlib.contextmanager
def read_only(factory: SessionFactory) -> Iterator[Session]:
    """A transaction that only reads: on SQLite it does not take the write lock; nothing is committed.

    On PostgreSQL a request's reads run without BEGIN and ROLLBACK, two round trips fewer: under READ COMMITTED each
    statement of a transaction sees what was committed when the statement began, so a transaction that writes
    nothing sees the same without one. Background reads keep their transaction, which raises the timeouts.
    """
    session = factory()
    try:
        options: dict[str, object] = {READ_ONLY: True}
        if _guard.get() is not None and session.get_bind().dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        session.connection(execution_options=options)
        yield session
    finally:
        session.close()  # ends the transaction; unlike rollback() it leaves loaded objects readable


class Abandoned(Exception):
    """The request this unit of work belongs to was already answered "nothing recorded": it must not commit."""


class CommitGuard:
    """Whether a request's units of work may still commit, shared by the request thread and its worker.

    The request thread gives up at its deadline (``abandon``) and tells the user the truth: nothing was recorded,
    unless a commit had already been sent, in which case the outcome is unknown. The worker checks before each
    commit, so work that finishes after the user was told "nothing recorded" is rolled back, never committed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._committing = False

    def begin_commit(self) -> bool:
        """Called before a commit: False (do not commit) when the request was already abandoned."""
        with self._lock:
            if self._abandoned:
                return False
            self._committing = True
            return True

    def abandon(self) -> bool:
        """Give up on the request; True when a commit had already been sent (its outcome is then unknown)."""
        with self._lock:
            self._abandoned = True
            return self._committing

    @property
    def abandoned(self) -> bool:
        """True once the request thread has given up."""
        return self._abandoned

    @property
    def committing(self) -> bool:
        """True once a commit has been sent (its outcome may then be unknown if the database stops answering)."""
        return self._committing


_guard: ContextVar[CommitGuard | None] = ContextVar("contract_bot_commit_guard", default=None)


@contextlib.contextmanager
def guarded(guard: CommitGuard) -> Iterator[CommitGuard]:
    """Run the units of work of one request under its guard (and with the request's short database timeouts)."""
    token = _guard.set(guard)
    try:
        yield guard
    finally:
        _guard.reset(token)


@contextlib.contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """One transaction: commit when the block ends normally, roll back on any exception."""
    session = factory()
    guard = _guard.get()
    try:
        yield session
        if guard is not None and not guard.begin_commit():
            raise Abandoned("the request was answered before this unit of work could commit")
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


def check_writable(engine: Engine) -> None:
    """Take a write (a row in ``seen_request``) and roll it back; raises when the database cannot.

    On SQLite the BEGIN IMMEDIATE takes the write lock, so a database locked by a stuck writer fails here too.
    """
    from sqlalchemy import insert

    from storage.models import SeenRequest

    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(SeenRequest).values(key="healthz", at=datetime.now(UTC)))
        transaction.rollback()


# ---- the database as it is, for the command-line tools -----------------------------------------------------------


class DatabaseUnavailable(Exception):
    """The database a tool was pointed at cannot be used as it is; the message is one line naming it."""


def describe_url(url: str) -> str:
    """A database URL as shown to a person: the password hidden, a SQLite file with its absolute path."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and "mode=memory" not in url:
            return f"{url} ({Path(path).resolve()})"  # a file name carries no password: shown as typed
        return url
    return parsed.render_as_string(hide_password=True)


def schema_head() -> str | None:
    """The newest Alembic revision this version of contract-bot knows."""
    return _script_directory().get_current_head()


def _script_directory():  # noqa: ANN202
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def open_existing(url: str, *, writable: bool = False) -> Engine:
    """An engine on the bot's database as it is: never created, never migrated (the command-line tools).

    ``writable=False`` opens it read-only (SQLite ``mode=ro``; PostgreSQL read-only transactions), so a tool that
    only reads cannot change it even by mistake. ``writable=True`` is for tools that write rows (``outbox retry``)
    or write and roll back (``reminders due``), still without creating a file or a table. Raises DatabaseUnavailable
    when the database does not exist, cannot be opened, holds no contract-bot tables, or is at another schema
    revision than this contract-bot's.
    """
    import sqlite3

    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    shown = describe_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or "mode=memory" in url:
            raise DatabaseUnavailable(f"DATABASE_URL ({url}) is an in-memory database: it holds no records")
        file = Path(path).resolve()
        if not file.is_file():
            raise DatabaseUnavailable(
                f"no database at {file} (DATABASE_URL={url}); nothing was created. Point DATABASE_URL at the "
                "bot's database (the one `contract-bot serve` uses)."
            )
        # NOTE: mode=ro/rw opens only a file that exists: SQLite's default (rwc) would create an empty one.
        uri = f"{file.as_uri()}?mode={'rw' if writable else 'ro'}"
        engine = create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(
                uri, uri=True, check_same_thread=False, timeout=BACKGROUND_DB_TIMEOUT_MS / 1000
            ),
            poolclass=NullPool,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # as in make_engine: we issue BEGIN ourselves
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BACKGROUND_DB_TIMEOUT_MS}")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writable else "BEGIN")

    else:
        engine = make_engine(url, pool_size=1)
        if not writable:

            @event.listens_for(engine, "connect")
            def _postgresql_read_only(dbapi_conn, _record):  # noqa: ANN001
                with dbapi_conn.cursor() as cur:
                    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                dbapi_conn.commit()

    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                raise DatabaseUnavailable(
                    f"the database at {shown} has no contract-bot tables (has the bot ever run on it? "
                    "`contract-bot serve` creates them on its first start)"
                )
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DatabaseUnavailable:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseUnavailable(f"cannot open the database at {shown}: {database_error(exc)}") from None
    head = schema_head()
    if version != head:
        engine.dispose()
        if _known_revision(version):
            raise DatabaseUnavailable(
                f"the database at {shown} is at schema revision {version}, this contract-bot needs {head}: "
                "start the bot (contract-bot serve) once to migrate it, then run this again"
            )
        raise DatabaseUnavailable(
            f"the database at {shown} is at schema revision {version}, which this contract-bot does not know "
            f"(it knows up to {head}): it was written by a newer contract-bot; install that version"
        )
    return engine


def _known_revision(version: str | None) -> bool:
    from alembic.util.exc import CommandError

    if not version:
        return False
    try:
        return _script_directory().get_revision(version) is not None
    except CommandError:
        return False


def database_error(exc: BaseException) -> str:
    """What went wrong with a database, in one line: the driver's own first line, without the SQL."""
    from sqlalchemy.exc import DBAPIError

    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    first = lines[0] if lines else type(cause).__name__
    if (
        first.lower().startswith("(") and ")" in first
    ):  # "(sqlite3.OperationalError) …": the class says nothing
        first = first.split(")", 1)[1].strip()
    return first[:300]
