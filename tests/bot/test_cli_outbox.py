"""`contract-bot outbox dead` / `outbox retry [ID…]` against the database a running bot wrote (both databases), and
against databases that do not exist or are not the bot's: said so, exit non-zero, nothing created or migrated."""

from __future__ import annotations

import logging
import os
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, inspect
from sqlmodel import select

from bot.cli import main
from storage.db import read_only
from storage.models import OutboxMessage
from tests.conftest import MEMBER, PG_URL, REVIEW

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'


@pytest.fixture
def cli(monkeypatch, capsys):
    """run(database_url, *argv) -> (exit code, stdout, stderr), in process."""
    for name in ("SLACK_APP_TOKEN", "SLACK_API_URL", "REVIEW_CHANNEL", "MANAGER_CHANNEL", "ADMIN_USER_IDS"):
        monkeypatch.delenv(name, raising=False)

    def run(url: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("DATABASE_URL", url)
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse refusing the arguments
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    # main() points the root logger at this test's captured stderr: give it back its handlers afterwards
    handlers, level = logging.root.handlers[:], logging.root.level
    yield run
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture
def bot_url(database) -> str:
    """The URL the command line reaches the running bot's database with (its PostgreSQL schema in the URL)."""
    url, schema = database
    return f"{url}?options={quote(f'-csearch_path={schema}')}" if schema else url


def outbox(running) -> list[OutboxMessage]:  # noqa: ANN001
    with read_only(running.bot.session_factory) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def kill_a_thread(running) -> tuple[OutboxMessage, list[OutboxMessage]]:  # noqa: ANN001
    """File CR-1 while the bot is not in the review channel: its parent dies with the thread."""
    running.double.remove(REVIEW)
    running.command(FILE, user=MEMBER)
    running.deliver()
    rows = [r for r in outbox(running) if r.contract_id == 1]
    root = next(r for r in rows if r.message_key == "parent" and r.op == "post")
    assert root.status == "dead"
    return root, [r for r in rows if r.depends_on == root.id]


def test_dead_lists_each_dead_message_with_what_is_held_with_it(running, cli, bot_url):
    root, held = kill_a_thread(running)
    code, out, err = cli(bot_url, "outbox", "dead")
    assert code == 0, err
    assert "1 dead message(s), and 6 held with them" in out
    assert f"#{root.id}  queued 2026-11-24 10:00 EST  the parent message of CR-1 in {REVIEW}" in out
    assert "error: Slack refused it: not_in_channel" in out
    assert f"held with it (6): {', '.join(f'#{r.id}' for r in held)}" in out
    assert "contract-bot outbox retry" in out


def test_retry_of_a_held_message_retries_its_root_and_everything_held_with_it_in_order(running, cli, bot_url):
    root, held = kill_a_thread(running)
    running.double.invite(REVIEW)
    code, out, err = cli(bot_url, "outbox", "retry", f"#{held[2].id}")
    assert code == 0, err
    assert f"#{held[2].id} is held with #{root.id}" in out and "7 message(s) are pending again" in out
    assert {r.status for r in outbox(running) if r.contract_id == 1} == {"pending"}
    running.deliver()
    assert {r.status for r in outbox(running) if r.contract_id == 1 and r.op != "permalink"} == {"sent"}
    thread = running.thread(1)
    assert [m["text"].split(":")[0] for m in thread if m["text"].startswith("CR-1 SCOPE-")] == [
        f"CR-1 SCOPE-{i}" for i in range(1, 6)
    ]
    code, out, _ = cli(bot_url, "outbox", "retry")
    assert code == 0 and "No dead messages to retry" in out


def test_retry_refuses_ids_that_are_not_dead_and_changes_nothing(running, cli, bot_url):
    root, _ = kill_a_thread(running)
    sent = next(r for r in outbox(running) if r.status == "sent")  # a DM telling someone about it
    code, _, err = cli(bot_url, "outbox", "retry", str(root.id), str(sent.id), "99999")
    assert code == 1
    assert f"#{sent.id} is not dead (it is sent)" in err and "#99999 is not an outbox message" in err
    assert "nothing was retried" in err
    assert root.status == next(r for r in outbox(running) if r.id == root.id).status == "dead"
    code, _, err = cli(bot_url, "outbox", "retry", "twelve")
    assert code == 2 and "positive number" in err
    code, _, err = cli(bot_url, "outbox", "retry", "0")
    assert code == 2


def test_nothing_dead_is_said_plainly(running, cli, bot_url):
    running.command(FILE)
    running.deliver()
    code, out, _ = cli(bot_url, "outbox", "dead")
    assert code == 0 and "No dead messages" in out


def test_a_sqlite_database_that_does_not_exist_is_named_and_not_created(cli, tmp_path):
    path = tmp_path / "nowhere" / "bot.db"
    for command in (("outbox", "dead"), ("outbox", "retry")):
        code, out, err = cli(f"sqlite:///{path}", *command)
        assert code == 2 and str(path) in err and "nothing was created" in err and out == ""
    assert not path.exists() and not path.parent.exists()
    code, _, err = cli("sqlite:///:memory:", "outbox", "dead")
    assert code == 2 and "in-memory" in err


def test_a_database_that_is_not_the_bots_or_not_migrated_is_refused_untouched(cli, tmp_path):
    empty = tmp_path / "empty.db"
    create_engine(f"sqlite:///{empty}").connect().close()  # an empty SQLite file
    code, _, err = cli(f"sqlite:///{empty}", "outbox", "dead")
    assert code == 2 and "no contract-bot tables" in err
    assert inspect(create_engine(f"sqlite:///{empty}")).get_table_names() == []  # nothing created
    old = tmp_path / "old.db"
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    code, _, err = cli(f"sqlite:///{old}", "outbox", "retry")
    assert code == 2 and "schema revision 0006" in err and "contract-bot serve" in err
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0006"
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped (CI sets it)")
def test_a_postgresql_database_that_does_not_exist_is_refused_without_its_password(cli):
    assert PG_URL is not None
    url = PG_URL.replace("@", ":hunter2@", 1).rsplit("/", 1)[0] + f"/no_such_db_{os.getpid()}"
    code, _, err = cli(url, "outbox", "dead")
    assert code == 2 and "cannot open the database" in err and "hunter2" not in err
