"""The command-line tools that only read (`audit verify`, `export`, `reminders due`, `outbox dead`) never create or
migrate a database (SPEC "Running it"): they name the database they read, and say clearly, in one line and with a
non-zero exit, when it does not exist, is not the bot's, or is at another schema revision."""

from __future__ import annotations

import json
import logging
import os

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.cli import main
from storage.db import MIGRATIONS_DIR, DatabaseUnavailable, make_engine, migrate, open_existing
from tests.conftest import PG_URL

READERS = (
    ("audit", "verify"),
    ("export", "--format", "csv"),
    ("export", "--format", "json"),
    ("reminders", "due"),
    ("outbox", "dead"),
)
TOOLS = (*READERS, ("outbox", "retry"))


@pytest.fixture
def cli(monkeypatch, capsys):
    """run(database_url, *argv) -> (exit code, stdout, stderr), in process."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "ADMIN_USER_IDS", "BOT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)

    def run(url: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("DATABASE_URL", url)
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    handlers, level = logging.root.handlers[:], logging.root.level
    yield run
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def _upgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_no_tool_creates_a_missing_sqlite_database(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default DATABASE_URL is contract-bot.db in the working directory
    for argv in TOOLS:
        code, out, err = cli("sqlite:///contract-bot.db", *argv)
        assert code == 2 and out == "", argv
        assert f"no database at {tmp_path / 'contract-bot.db'}" in err and "nothing was created" in err, argv
        assert err.count("\n") == 1 and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_an_empty_file_is_not_the_bots_and_stays_empty(cli, tmp_path):
    empty = tmp_path / "empty.db"
    create_engine(f"sqlite:///{empty}").connect().close()
    before = empty.read_bytes()
    for argv in TOOLS:
        code, out, err = cli(f"sqlite:///{empty}", *argv)
        assert code == 2 and out == "" and "no contract-bot tables" in err and "contract-bot serve" in err, (
            argv
        )
    assert empty.read_bytes() == before


def test_an_older_schema_is_not_migrated_and_a_newer_one_is_named(cli, tmp_path):
    old = tmp_path / "old.db"
    _upgrade(f"sqlite:///{old}", "0006")
    for argv in TOOLS:
        code, _, err = cli(f"sqlite:///{old}", *argv)
        assert code == 2 and "schema revision 0006" in err and "contract-bot serve" in err, argv
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0006"
        conn.exec_driver_sql(
            "UPDATE alembic_version SET version_num = '9999'"
        )  # a newer contract-bot wrote it
    engine.dispose()
    code, _, err = cli(f"sqlite:///{old}", "audit", "verify")
    assert code == 2 and "9999" in err and "newer contract-bot" in err


def test_the_read_only_tools_cannot_write_even_by_mistake(database):
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    engine.dispose()
    if schema:
        url = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    reader = open_existing(url)
    try:
        with pytest.raises(DBAPIError), reader.begin() as conn:
            conn.execute(text("DELETE FROM audit_entry"))
        with reader.connect() as conn:  # what it reads, it reads
            assert conn.execute(text("SELECT count(*) FROM contract")).scalar() == 0
    finally:
        reader.dispose()
    writer = open_existing(url, writable=True)  # `outbox retry` and `reminders due` (rolled back) may write
    try:
        with writer.begin() as conn:
            conn.execute(text("DELETE FROM audit_entry"))
    finally:
        writer.dispose()


def test_a_tool_names_the_database_it_read(cli, tmp_path):
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    code, out, _ = cli(f"sqlite:///{path}", "audit", "verify")
    assert code == 0 and "0 entries" in out and str(path) in out
    code, out, err = cli(f"sqlite:///{path}", "export", "--format", "json")
    assert code == 0 and json.loads(out)["contracts"] == [] and str(path) in err
    code, _, err = cli(f"sqlite:///{path}", "reminders", "due")
    assert code == 0 and str(path) in err
    code, out, err = cli(
        f"sqlite:///{path}", "export", "--format", "csv", "--out", str(tmp_path / "no" / "x.csv")
    )
    assert code == 2 and out == "" and "cannot write" in err and err.count("\n") == 1


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped (CI sets it)")
def test_postgresql_without_the_bots_tables_or_unreachable_is_said_in_one_line(cli):
    assert PG_URL is not None
    schema = f"empty_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = (
            make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
        )
        for argv in TOOLS:
            code, out, err = cli(url, *argv)
            assert code == 2 and out == "" and "no contract-bot tables" in err, (argv, err)
        with admin.connect() as conn:
            tables = conn.execute(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
            ).scalar()
        assert tables == 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    # a server that does not answer: one line naming it, the password hidden
    nowhere = "postgresql+psycopg://bot:hunter2@127.0.0.1:1/contracts"
    for argv in READERS:
        code, _, err = cli(nowhere, *argv)
        assert code == 2 and "cannot open the database at postgresql+psycopg://bot:***@127.0.0.1:1" in err
        assert "hunter2" not in err and err.count("\n") == 1 and "Traceback" not in err


def test_open_existing_refuses_an_in_memory_database():
    with pytest.raises(DatabaseUnavailable, match="in-memory"):
        open_existing("sqlite:///:memory:")
