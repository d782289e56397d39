"""Bolt's Socket Mode handler, with each request's deadline counted from when the handler takes it (as the WSGI
entry does for HTTP: bot.app.ContractBot.wsgi), so Bolt's own work on it comes off the deadline too."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.services.deadline import request_arrived


class DeadlineSocketModeHandler(SocketModeHandler):
    """SocketModeHandler whose requests carry their arrival (bot.services.deadline.request_arrived)."""

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]  # as Bolt's
        with request_arrived():
            super().handle(client, req)
