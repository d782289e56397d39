"""`contract-bot serve`: HTTP on waitress (a production WSGI server) or Socket Mode, with the scheduler in-process."""

from __future__ import annotations

import logging
import signal
import sys

from slack_sdk.errors import SlackApiError

from bot.app import create_app, make_web_client
from bot.config import Settings, SettingsError

log = logging.getLogger("contract_bot.serve")


def serve(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    try:
        settings.require_for_serve()
    except SettingsError as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2
    try:
        auth = make_web_client(settings).auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        print(f"contract-bot: Slack refused SLACK_BOT_TOKEN ({error}); check the token", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - no answer at all: the network, a proxy, or SLACK_API_URL
        where = settings.slack_api_url or "Slack's API"
        print(
            f"contract-bot: could not reach {where} ({exc.__class__.__name__}); check the network and "
            "SLACK_API_URL. The token was not checked.",
            file=sys.stderr,
        )
        return 2
    log.info("connected to Slack as %s in %s", auth.get("user"), auth.get("team"))
    bot = create_app(settings)
    bot.start_background()
    bot.check_channels_soon()  # is the bot in the review and manager channels? (admins are told if not)
    log.info("contract-bot starting with %s", settings)
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(bot.bolt, settings.slack_app_token)
        try:
            handler.start()
        finally:
            bot.stop()
        return 0
    from waitress import create_server

    server = create_server(bot.wsgi, host="0.0.0.0", port=settings.port, threads=64, ident="contract-bot")

    def stop(*_):  # noqa: ANN002
        # Let the requests being served finish first: a worker that finishes after close() finds waitress's
        # trigger closed (EBADF). Their answers may not reach Slack, but their work has committed or not.
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    log.info("listening on http://0.0.0.0:%s (POST /slack/events, GET /healthz)", settings.port)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        bot.stop()
    return 0
