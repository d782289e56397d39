"""Shared fixtures: a fresh database per test (SQLite file, and a PostgreSQL schema when TEST_DATABASE_URL is
set), the Slack Web API test double, and the real app served over HTTP by waitress on an ephemeral port."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from waitress import create_server

from bot.app import ContractBot, create_app
from bot.clock import ManualClock
from bot.config import Settings
from bot.console.slack import SlackDouble
from bot.services.deadline import REQUEST_DEADLINE_SECONDS
from storage.db import make_engine, migrate
from tests.support.slack_requests import SlackRequester

SECRET = "test-signing-secret"
REVIEW, MANAGERS = "CREVIEW1", "CMANAGER1"
ADMIN, REVIEWER, MANAGER, OFFICIAL, MEMBER = "UADMIN1", "UREVIEW1", "UMANAGE1", "UOFFICIAL1", "UMEMBER1"
# §2(f): whoever records a determination may not certify it, so a review to the end needs a second official
OFFICIAL2 = "UOFFICIAL2"
# Tuesday 24 Nov 2026, 10:00 in New York
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
PG_URL = os.environ.get("TEST_DATABASE_URL")
# The Slack double enforces Slack's published rate limits with this clock speed-up: the same bursts, 20 times the
# sustained rates (1 post per second per channel becomes 20), so the suite stays under 5 minutes. The bot's own
# pacing must be scaled by the same number in tests; the benchmark and a few e2e tests use Slack's real rates (1).
SLACK_RATE_SCALE = 20
# How long the bot under test waits for a request's work before it answers "nothing was recorded": not the real
# 2 s (bot.services.deadline.REQUEST_DEADLINE_SECONDS), because a functional test checks what is recorded and said,
# not Slack's clock, and the suite runs more workers than the machine has cores, so a request is sometimes starved
# of CPU past 2 s on a busy machine (it then truthfully answers "nothing was recorded" and the test fails for
# nothing it is about). Below SlackRequester's 10 s timeout, so such an answer still arrives. The tests about the
# deadline itself keep the real one: ``@pytest.mark.real_deadline`` (the ``running`` fixture), or an app of their own.
TEST_REQUEST_DEADLINE = 8.0

DB_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped (CI sets it)"
        ),
    ),
]


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's Config and Items
    """The tests marked ``long`` run first, the rest after (each group in its own order). With ``--dist loadgroup``
    (pyproject) a worker takes the next test whenever it is free, so the long ones start at once, spread over the
    workers, instead of one of them still running at the end while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """Give the root logger back its handlers after each test: `contract-bot …` run in process (bot.cli.main)
    points it at that test's captured stderr, which is closed once the test ends (EBADF in a later test)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_admin():
    """One engine per test process for creating and dropping the tests' PostgreSQL schemas (None without PG)."""
    if not PG_URL:
        yield None
        return
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


@pytest.fixture(params=DB_PARAMS)
def database(request, tmp_path, pg_admin, migrated_schema):
    """A fresh database: (url, schema or None). PostgreSQL gets its own schema, dropped afterwards.

    It is empty, except for a test that serves the bot (the ``running`` fixture): that one gets it at the newest
    migration, as the bot's start-up would leave it, and on PostgreSQL a schema emptied for the next such test
    instead of dropped (MigratedSchema)."""
    migrated = "running" in request.fixturenames
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bot.db'}"
        if migrated:
            migrated_schema.copy_sqlite(tmp_path / "bot.db")
        yield url, None
        return
    schema = migrated_schema.take_pg_schema() if migrated else None
    if schema is not None:
        try:
            yield PG_URL, schema
        finally:
            migrated_schema.give_back_pg_schema(schema)
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield PG_URL, schema
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


class MigratedSchema:
    """The schema at Alembic's newest revision for the tests that serve the bot, made once per test process by the
    real migrations: a copy of a migrated SQLite file for each test, and on PostgreSQL a schema made from pg_dump's
    dump of a migrated one and emptied after each test for the next (every table truncated, the migrations' own rows
    put back, every sequence restarted), as a new one would be. The bot's start-up migration then finds it at head.

    Running the migrations anew for every test that serves the bot (over 400) cost 0.1 s of the test process's
    CPU on either database, and on PostgreSQL 0.4 s in all, most of it the server's DDL (replaying the dump still
    took 0.1 s; truncating a few tables takes a fraction of that). The migrations themselves are tested in
    tests/storage/test_migrations.py, and every test still gets exactly the schema they make. Without pg_dump
    (or with one that refuses the server's version) a PostgreSQL test gets a new, empty schema as before."""

    def __init__(self, directory: Path, admin: Engine | None) -> None:
        self.directory = directory
        self.admin = admin
        self._sqlite: Path | None = None
        # the migrated schema the dump was taken of; the dump's statements (naming it); those of them that put the
        # migrations' rows in and restart the sequences; its tables
        self._pg_template: str | None = None
        self._pg_ddl: str | None = None
        self._pg_rows: str | None = None
        self._pg_tables: list[str] = []
        self._pg_tried = False
        self._pg_made: list[str] = []  # schemas made from the dump, to drop at the end
        self._pg_free: list[str] = []  # ... of them emptied, ready for the next test

    def copy_sqlite(self, target: Path) -> None:
        """A migrated SQLite database at ``target`` (a path with nothing there yet)."""
        if self._sqlite is None:
            path = self.directory / "migrated.db"
            engine = make_engine(f"sqlite:///{path}")
            migrate(engine)
            engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
            self._sqlite = path
        src, dst = sqlite3.connect(self._sqlite), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def take_pg_schema(self) -> str | None:
        """A PostgreSQL schema at head holding only the migrations' own rows (None without a dump to make one)."""
        if not self._dump_pg() or self.admin is None or self._pg_ddl is None:
            return None
        if self._pg_free:
            return self._pg_free.pop()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE SCHEMA {schema};\n" + self._pg_ddl.replace(self._pg_template or "", schema)
            )
        self._pg_made.append(schema)
        return schema

    def give_back_pg_schema(self, schema: str) -> None:
        """Empty ``schema`` for the next test: truncate the tables that have rows and those the migrations fill,
        put those rows back, restart every sequence. If that fails, the schema is dropped instead."""
        assert self.admin is not None and self._pg_rows is not None  # a schema was taken
        try:
            with self.admin.connect() as conn:
                used = conn.exec_driver_sql(
                    " UNION ALL ".join(
                        f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {schema}.{t})" for t in self._pg_tables
                    )
                ).scalars()
                tables = ", ".join(f"{schema}.{t}" for t in sorted({*used, *self._seeded_tables()}))
                # one query, so one transaction (the engine autocommits each query)
                conn.exec_driver_sql(
                    f"SET LOCAL lock_timeout = '10s'; TRUNCATE {tables} CASCADE;\n"
                    + self._pg_rows.replace(self._pg_template or "", schema)
                )
        except Exception:  # noqa: BLE001 - a schema that cannot be emptied is not used again
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            self._pg_made.remove(schema)
            return
        self._pg_free.append(schema)

    def drop(self) -> None:
        """Drop this process's PostgreSQL schemas (the template and those made from it)."""
        if self.admin is None:
            return
        for schema in [*self._pg_made, *([self._pg_template] if self._pg_template else [])]:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    def _seeded_tables(self) -> set[str]:
        prefix = f"INSERT INTO {self._pg_template}."
        return {
            line[len(prefix) :].split(" ", 1)[0]
            for line in (self._pg_rows or "").splitlines()
            if line.startswith(prefix)
        }

    def _dump_pg(self) -> bool:
        """Migrate a template schema and take its dump, once (False when pg_dump cannot)."""
        if self._pg_tried or self.admin is None:
            return self._pg_ddl is not None
        self._pg_tried = True
        # a name found nowhere else, so that replacing it in the dump touches nothing but the schema's name
        template = f"tmpl_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{template}"'))
        self._pg_template = template
        engine = make_engine(PG_URL or "", schema=template)
        migrate(engine)
        engine.dispose()
        libpq_url = make_url(PG_URL or "").set(drivername="postgresql").render_as_string(hide_password=False)
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            return False
        dumped = subprocess.run(
            [
                pg_dump,
                f"--dbname={libpq_url}",
                f"--schema={template}",
                "--inserts",
                "--no-owner",
                "--no-privileges",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if dumped.returncode != 0:
            return False
        # Schema-qualified statements only: no psql meta-commands (\restrict), no session settings, no CREATE
        # SCHEMA (take_pg_schema makes its own).
        skip = ("\\", "--", "SET ", "SELECT pg_catalog.set_config(", "CREATE SCHEMA ")
        lines = [line for line in dumped.stdout.splitlines() if not line.startswith(skip)]
        self._pg_ddl = "\n".join(lines)
        self._pg_rows = "\n".join(
            line for line in lines if line.startswith(("INSERT INTO ", "SELECT pg_catalog.setval("))
        )
        table = f"CREATE TABLE {template}."
        self._pg_tables = [line[len(table) :].split(" ", 1)[0] for line in lines if line.startswith(table)]
        return True


@pytest.fixture(scope="session")
def migrated_schema(tmp_path_factory, pg_admin):
    """MigratedSchema for this test process."""
    templates = MigratedSchema(tmp_path_factory.mktemp("migrated"), pg_admin)
    yield templates
    templates.drop()


def slack_rate_scale(request) -> float:  # noqa: ANN001 - pytest's FixtureRequest
    """SLACK_RATE_SCALE, or what the test's ``@pytest.mark.slack_rate_scale(n)`` says."""
    marker = request.node.get_closest_marker("slack_rate_scale")
    return float(marker.args[0]) if marker else float(SLACK_RATE_SCALE)


@pytest.fixture
def double(request):
    """The Slack Web API test double on 127.0.0.1, as strict as Slack (payloads checked with slack_sdk's Block Kit
    models and Slack's size limits, rate limits at SLACK_RATE_SCALE x, channels the bot was not invited to refused).
    The bot is a member of REVIEW and MANAGERS. A test fails if Slack would have refused a payload it sent, unless
    the test says it provokes that on purpose (``double.expect_refusals("msg_blocks_too_long")``).

    A test that is not about Slack's pacing but has the bot send hundreds of messages may run Slack's clock at
    another speed, the double and the ``running`` bot alike, saying why: ``@pytest.mark.slack_rate_scale(n)``,
    faster when it waits for those messages, Slack's own (1) when it need not."""
    with SlackDouble(rate_scale=slack_rate_scale(request), invited=(REVIEW, MANAGERS)) as d:
        yield d
        refused = d.unexpected_refusals()
        assert not refused, "Slack would have refused what the bot sent:\n" + "\n".join(
            f"  {r.method} -> {r.error}: {r.detail[:300]}" for r in refused
        )


@dataclass
class Running:
    """A bot served over HTTP, with what a test needs to drive and inspect it."""

    bot: ContractBot
    slack: SlackRequester
    double: SlackDouble
    clock: ManualClock
    url: str

    def command(self, text: str, user: str = MEMBER, **kw):
        """POST a signed `/contract …` as ``user``."""
        return self.slack.command(text, user_id=user, channel_id=REVIEW, **kw)

    def deliver(self):
        """Run the outbox until nothing more is due (the background loop does this too)."""
        return self.bot.dispatcher.deliver_due()

    def parent(self, ref_id: int) -> dict:
        """The parent message of a contract in the review channel."""
        self.deliver()
        c = self.bot.service.show(ref_id)
        return self.double.message(REVIEW, c.parent_ts)

    def thread(self, ref_id: int) -> list[dict]:
        """Messages in a contract's thread (after delivering the outbox)."""
        self.deliver()
        c = self.bot.service.show(ref_id)
        return self.double.thread(REVIEW, c.parent_ts)


def pg_audit_key_file() -> str:
    """The audit key of the PostgreSQL tests (SQLite ones get ``<db file>.audit-key``): one fixed file, so that every
    process of a test (workers, the command line) seals and verifies with the same key."""
    import tempfile
    from pathlib import Path

    from storage.audit import key_file_text

    path = Path(tempfile.gettempdir()) / "contract-bot-tests.audit-key"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
        tmp.write_text(key_file_text([b"contract-bot test audit key, 32b"]))
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return str(path)


def audit_keys(database_url: str):  # noqa: ANN201 - storage.audit.AuditKeys
    """The audit keys a test's bots sealed ``database_url``'s log with (for checking it from outside the bot)."""
    from pathlib import Path

    from bot.services.seal import default_key_path
    from storage.audit import read_key_file

    path = default_key_path(database_url)
    return read_key_file(Path(pg_audit_key_file()) if path is None else path)


@pytest.fixture
def migrated_engine(database):
    """An engine on the fresh ``database``, migrated to the newest revision; disposed afterwards."""
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    yield engine
    engine.dispose()


def make_settings(double: SlackDouble, database_url: str, **overrides) -> Settings:
    """Settings as an agency would set them, pointed at the test double."""
    values = dict(
        audit_key_file=pg_audit_key_file() if database_url.startswith("postgresql") else None,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=double.api_url,
        database_url=database_url,
        review_channel=REVIEW,
        manager_channel=MANAGERS,
        admin_user_ids=(ADMIN,),
        bot_timezone="America/New_York",
        reminder_interval_seconds=60,
    )
    values.update(overrides)
    return Settings(**values)


def serve_bot(bot: ContractBot):
    """Serve a bot with waitress on an ephemeral loopback port; returns (url, stop)."""
    server = create_server(bot.wsgi, host="127.0.0.1", port=0, threads=64)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop():
        # Close from inside the server's own loop (its trigger): closing from this thread races its poll()
        # (EBADF) and waits out waitress's 1 s loop timeout.
        try:
            server.trigger.pull_trigger(server.close)
        except OSError:  # the loop has already closed its trigger (it ended on its own): close from here
            server.close()
        thread.join(timeout=5)
        # NOTE: waitress stops its worker threads only when run() ends by an exception; closed, they would
        # linger, 64 per test.
        server.task_dispatcher.shutdown()

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def running(request, database, double):
    """The real app over HTTP with roles granted: ADMIN (bootstrap), REVIEWER, MANAGER, OFFICIAL, OFFICIAL2.

    Its request deadline is TEST_REQUEST_DEADLINE, or the real one for a test marked ``real_deadline``."""
    url, schema = database
    clock = ManualClock(START)
    real = request.node.get_closest_marker("real_deadline") is not None
    bot = create_app(
        make_settings(double, url),
        engine=make_engine(url, schema=schema),
        clock=clock,
        slack_rate_scale=slack_rate_scale(request),
        request_deadline=REQUEST_DEADLINE_SECONDS if real else TEST_REQUEST_DEADLINE,
    )
    for user, role in (
        (REVIEWER, "reviewer"),
        (MANAGER, "manager"),
        (OFFICIAL, "official"),
        (OFFICIAL2, "official"),
    ):
        bot.service.grant(ADMIN, user, role)
    bot.start_background(scheduler=False)
    base, stop = serve_bot(bot)
    try:
        yield Running(bot, SlackRequester(base, SECRET, double=double), double, clock, base)
    finally:
        stop()
        bot.stop()


@pytest.fixture
def cli(running, database, monkeypatch, capsys):
    """Run `contract-bot …` in process against the running bot's database; returns (exit code, stdout, stderr)."""
    from urllib.parse import quote

    from bot.cli import main

    url, schema = database
    if schema:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    monkeypatch.setenv("DATABASE_URL", url)
    if schema:
        monkeypatch.setenv("AUDIT_KEY_FILE", pg_audit_key_file())
    for name in ("SLACK_APP_TOKEN", "SLACK_API_URL", "REVIEW_CHANNEL", "MANAGER_CHANNEL", "ADMIN_USER_IDS"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    # main() points the root logger at this test's captured stderr: give it back its handlers afterwards
    handlers, level = logging.root.handlers[:], logging.root.level
    yield run
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
