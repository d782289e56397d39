"""Socket Mode end to end: slack_bolt's SocketModeHandler against a loopback Socket Mode server and Web API double."""

from __future__ import annotations

import uuid

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.app import create_app
from bot.clock import ManualClock
from storage.db import make_engine
from tests.conftest import MANAGERS, MEMBER, REVIEW, SLACK_RATE_SCALE, START, make_settings
from tests.support.slack_double import SlackDouble
from tests.support.socket_mode_double import SocketModeDouble, close_handler

APP_TOKEN = "xapp-1-A1-test"


@pytest.fixture
def socket_bot(tmp_path):
    """The real app in Socket Mode, connected to the loopback Socket Mode server; yields (bot, sm, double)."""
    with (
        SlackDouble(rate_scale=SLACK_RATE_SCALE, invited=(REVIEW, MANAGERS)) as double,
        SocketModeDouble(double) as sm,
    ):
        settings = make_settings(
            double, f"sqlite:///{tmp_path / 'bot.db'}", slack_app_token=APP_TOKEN, slack_signing_secret=None
        )
        bot = create_app(
            settings,
            engine=make_engine(settings.database_url),
            clock=ManualClock(START),
            slack_rate_scale=SLACK_RATE_SCALE,
        )
        bot.start_background(scheduler=False)
        handler = SocketModeHandler(bot.bolt, APP_TOKEN, web_client=WebClient(base_url=double.api_url))
        try:
            handler.connect()
            sm.wait_for_connections(1)
            assert sm.connected.wait(10)
            yield bot, sm, double
        finally:
            close_handler(handler)
            bot.stop()


def slash_command(text: str, user: str = MEMBER) -> dict:
    return {
        "token": "unused",
        "team_id": "T1",
        "team_domain": "t1",
        "channel_id": REVIEW,
        "channel_name": "review",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/contract",
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T1/1/x",
        "trigger_id": f"1.2.{uuid.uuid4().hex}",
    }


def test_settings_select_socket_mode():
    with SlackDouble() as double:
        settings = make_settings(double, "sqlite://", slack_app_token=APP_TOKEN, slack_signing_secret=None)
    assert settings.socket_mode


def test_slash_command_over_socket_mode_is_acked_and_the_bot_posts(socket_bot):
    bot, sm, double = socket_bot
    eid = sm.send_envelope(
        "slash_commands",
        slash_command('file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'),
    )
    ack = sm.wait_for_ack(eid)
    assert ack["envelope_id"] == eid
    assert "Filed *CR-1*" in ack["payload"]["text"] and ack["payload"]["response_type"] == "ephemeral"
    double.wait_for(lambda d: any("CR-1" in (m.get("text") or "") for m in d.messages(REVIEW)))
    parent = next(m for m in double.messages(REVIEW) if not m.get("thread_ts"))
    assert "Paragon Solutions" in parent["text"]
    double.wait_for(
        lambda d: len(d.thread(REVIEW, parent["ts"])) >= 5
    )  # the scope questions follow in the thread
    assert bot.service.list_contracts().total == 1


def test_bad_input_over_socket_mode_is_answered_in_the_ack(socket_bot):
    bot, sm, _ = socket_bot
    ack = sm.wait_for_ack(sm.send_envelope("slash_commands", slash_command("frobnicate")))
    assert "subcommand" in ack["payload"]["text"].lower()
    assert bot.service.list_contracts().total == 0


def test_app_home_over_socket_mode(socket_bot):
    _, sm, double = socket_bot
    event = {
        "token": "unused",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": 1,
        "event": {
            "type": "app_home_opened",
            "user": MEMBER,
            "channel": "DMEMBER1",
            "tab": "home",
            "event_ts": "1.000001",
        },
    }
    sm.wait_for_ack(sm.send_envelope("events_api", event))
    double.wait_for(lambda d: d.home_view(MEMBER) is not None)
    assert double.home_view(MEMBER)["type"] == "home"


def _scopes(text: str) -> set[str]:
    block = text.split("    bot:\n", 1)[1]
    scopes = set()
    for line in block.splitlines():
        if not line.startswith("      - "):
            break
        scopes.add(line.strip()[2:])
    return scopes


def test_manifests_http_and_socket_mode_variants():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    http = (root / "slack-manifest.yml").read_text(encoding="utf-8")
    socket = (root / "slack-manifest.socket-mode.yml").read_text(encoding="utf-8")
    assert "socket_mode_enabled: false" in http
    assert (
        http.count("url: https://contract-bot.example.gov/slack/events") == 3
    )  # command, events, interactivity
    assert "socket_mode_enabled: true" in socket and "url:" not in socket
    least = {
        "commands",
        "chat:write",
        "im:write",
        "files:write",
        "channels:history",
        "groups:history",
        "im:history",
        "channels:read",  # conversations.info: is the bot in the review and manager channels?
        "groups:read",
        "users:read",  # users.info: people's names in the export
    }
    assert _scopes(http) == _scopes(socket) == least
    docs = (root / "docs" / "slack-app.md").read_text(encoding="utf-8")
    assert all(f"`{scope}`" in docs for scope in least) and "connections:write" in docs
