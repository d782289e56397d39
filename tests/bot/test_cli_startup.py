"""What `contract-bot` says when it cannot start, and what `serve` warns about when it can: one line that says whose
fault it is (Slack unreachable, a token refused, the database, the port, the .env file), never a traceback."""

from __future__ import annotations

import http.server
import logging
import socket
import threading

import pytest

from bot.app import create_app
from bot.cli import main
from bot.clock import ManualClock
from bot.serve import startup_warnings
from storage.db import make_engine, migrate
from tests.conftest import ADMIN, PG_URL, SECRET, START, make_settings

SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "REVIEW_CHANNEL",
    "MANAGER_CHANNEL",
    "ADMIN_USER_IDS",
    "PORT",
)


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    """run(*argv, **env) -> (exit code, stdout, stderr): `contract-bot …` in process, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    handlers, level = logging.root.handlers[:], logging.root.level

    def go(*argv: str, **env: str) -> tuple[int, str, str]:
        for name in SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # --version, or argparse refusing the arguments
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    yield go
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(err: str) -> str:
    """The one line that says what went wrong (serve may have logged "connected to Slack" before it)."""
    said = [
        line
        for line in err.splitlines()
        if not line.endswith("connected to Slack as contract-bot in Team One")
    ]
    assert len(said) == 1 and said[0].startswith("contract-bot: ") and "Traceback" not in err, err
    return err


def test_version(run):
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("contract-bot ") and len(out.split()) == 2


def test_slack_unreachable_is_not_blamed_on_the_token(run):
    url = f"http://127.0.0.1:{_closed_port()}/api/"
    code, _, err = run("serve", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_API_URL=url)
    assert code == 2 and f"Slack cannot be reached at {url}" in _one_line(err)
    assert "refused SLACK_BOT_TOKEN" not in err and "SLACK_BOT_TOKEN was not checked" in err


def test_a_proxy_answering_instead_of_slack_is_not_blamed_on_the_token(run):
    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>Bad Gateway</html>")

        def log_message(self, *args):  # noqa: ANN002
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/"
        code, _, err = run("serve", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_API_URL=url)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and f"Slack cannot be reached at {url}" in _one_line(err) and "HTTP 502" in err


def test_a_refused_token_is_said_to_be_the_token(run, double):
    double.on("auth.test", lambda _params: {"ok": False, "error": "invalid_auth"})
    code, _, err = run(
        "serve", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_API_URL=double.api_url
    )
    assert code == 2 and "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in _one_line(err)
    assert "xoxb-1" not in err


def test_a_refused_app_token_is_said_to_be_the_app_token(run, double):
    double.on("apps.connections.open", lambda _params: {"ok": False, "error": "invalid_auth"})
    code, _, err = run(
        "serve", SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=double.api_url
    )
    assert code == 2 and "Slack refused SLACK_APP_TOKEN (invalid_auth)" in _one_line(err)


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL tests skipped (CI sets it)")
def test_an_unreachable_database_is_one_line_naming_database_url(run, double):
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": double.api_url}
    nowhere = f"postgresql+psycopg://bot:hunter2@127.0.0.1:{_closed_port()}/contracts"
    code, _, err = run("serve", DATABASE_URL=nowhere, **slack)
    assert code == 2 and "DATABASE_URL=postgresql+psycopg://bot:***@127.0.0.1" in _one_line(err)
    assert "hunter2" not in err and "refused" in err.lower()


def test_a_sqlite_file_in_a_missing_folder_is_one_line(run, double, tmp_path):
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": double.api_url}
    code, _, err = run("serve", DATABASE_URL=f"sqlite:///{tmp_path}/no/such/folder/bot.db", **slack)
    assert code == 2 and "DATABASE_URL=sqlite:///" in _one_line(err) and "does its folder exist" in err


def test_a_database_from_a_newer_contract_bot_is_one_line(run, double, tmp_path):
    url = f"sqlite:///{tmp_path}/bot.db"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    slack = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": double.api_url}
    code, _, err = run("serve", DATABASE_URL=url, **slack)
    assert code == 2 and "9999" in _one_line(err) and "newer contract-bot" in err


def test_a_port_in_use_is_one_line(run, double, tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(
            "serve",
            SLACK_BOT_TOKEN="xoxb-1",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=double.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/bot.db",
            PORT=str(port),
        )
    assert code == 2 and f"cannot listen on 0.0.0.0:{port}" in err and "set PORT" in err
    assert "Traceback" not in err


def test_an_unreadable_env_file_is_one_line(run, tmp_path):
    (tmp_path / ".env").write_bytes(b"PORT=\xff\xfe\n")
    code, _, err = run("audit", "verify")
    assert code == 2 and "cannot read the .env file" in _one_line(err)


def test_serve_warns_when_nobody_is_admin_and_no_channel_is_set(double, tmp_path):
    url = f"sqlite:///{tmp_path}/bot.db"
    bare = make_settings(double, url, admin_user_ids=(), review_channel=None, manager_channel=None)
    bot = create_app(bare, engine=make_engine(url), clock=ManualClock(START))
    try:
        warnings = startup_warnings(bot)
    finally:
        bot.stop()
    assert len(warnings) == 3
    assert "nobody is an admin" in warnings[0] and "ADMIN_USER_IDS" in warnings[0]
    assert "REVIEW_CHANNEL" in warnings[1] and "admin set review_channel" in warnings[1]
    assert "MANAGER_CHANNEL" in warnings[2]
    # an admin granted in Slack stays an admin: a restart without ADMIN_USER_IDS does not warn of it
    bot = create_app(make_settings(double, url), engine=make_engine(url), clock=ManualClock(START))
    try:
        bot.service.grant(ADMIN, "UOTHER1", "admin")
    finally:
        bot.stop()
    bot = create_app(
        make_settings(double, url, admin_user_ids=()), engine=make_engine(url), clock=ManualClock(START)
    )
    try:
        assert startup_warnings(bot) == []
    finally:
        bot.stop()
