"""`contract-bot serve`: HTTP on waitress (a production WSGI server) or Socket Mode, with the scheduler in-process."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from slack_sdk.errors import SlackApiError

from bot.app import ContractBot, create_app, make_web_client
from bot.config import Settings, SettingsError

log = logging.getLogger("contract_bot.serve")


# Slack's answers that mean "this token will not do"; anything else it says is about Slack or the path to it.
TOKEN_REFUSALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
        "no_permission",
        "team_access_not_granted",
        "ekm_access_denied",
        "enterprise_is_restricted",
        "org_login_required",
        "missing_scope",
    }
)
SLACK_DEFAULT_API_URL = "https://slack.com/api/"
STARTUP_TIMEOUT_SECONDS = 10


def slack_problem(exc: Exception, settings: Settings, variable: str) -> str:
    """One line saying why Slack did not accept ``variable``: the token was refused, or Slack was never reached."""
    where = settings.slack_api_url or SLACK_DEFAULT_API_URL
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = str(response.get("error") or "") if response is not None else ""
        status = getattr(response, "status_code", None)
        if error in TOKEN_REFUSALS:
            return f"Slack refused {variable} ({error}): check the token in the Slack app's settings"
        if status and status >= 300 or error.startswith("Received a response in a non-JSON format"):
            # a proxy, a captive portal or a wrong SLACK_API_URL answered: Slack itself never saw the token
            return (
                f"Slack cannot be reached at {where}: the answer was HTTP {status}, not Slack's; check "
                f"SLACK_API_URL and any proxy in between ({variable} was not checked)"
            )
        return f"Slack at {where} did not accept {variable} ({error or 'no reason given'}); try again shortly"
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        reason = f"no answer within {STARTUP_TIMEOUT_SECONDS} s"
    return (
        f"Slack cannot be reached at {where} ({reason}); check the network, any proxy, and SLACK_API_URL "
        f"({variable} was not checked)"
    )


def startup_warnings(bot: ContractBot) -> list[str]:
    """What `serve` should say at start-up about a bot nobody can administer or that has nowhere to post."""
    from storage import repositories as repo
    from storage.db import read_only

    with read_only(bot.session_factory) as s:
        admins = repo.list_users_with_role(s, "admin")
        values = bot.service.runtime_settings(s)
    warnings = []
    if not admins:
        warnings.append(
            "nobody is an admin, so nobody can grant roles or change settings: set ADMIN_USER_IDS to your Slack "
            "member ID (U…, from your Slack profile: ⋮ › Copy member ID) and restart"
        )
    if not values.get("review_channel"):
        warnings.append(
            "no review channel: contracts cannot be filed until REVIEW_CHANNEL is set to a channel ID (C…) and "
            "the bot restarted, or an admin runs `/contract admin set review_channel #channel`"
        )
    if not values.get("manager_channel"):
        warnings.append(
            "no manager channel: manager reminders and the weekly digest have nowhere to go until "
            "MANAGER_CHANNEL is set to a channel ID (C…), or an admin runs "
            "`/contract admin set manager_channel #channel`"
        )
    return warnings


def serve(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    try:
        settings.require_for_serve()
    except SettingsError as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2
    sdk_log = logging.getLogger("slack_sdk.web.base_client")
    sdk_level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)  # its own ERROR line would say half of what ours says
    # its own client: no retries and a short wait, so that an unreachable Slack is said at once
    client = make_web_client(settings, retries=False, timeout=STARTUP_TIMEOUT_SECONDS)
    try:
        auth = client.auth_test()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line saying whose fault it is
        print(f"contract-bot: {slack_problem(exc, settings, 'SLACK_BOT_TOKEN')}", file=sys.stderr)
        return 2
    finally:
        sdk_log.setLevel(sdk_level)
    if settings.socket_mode:
        sdk_log.setLevel(logging.CRITICAL)
        try:
            # The app-level token is checked before anything starts (Bolt would log a traceback-like error); the
            # WebSocket address this returns is left unused and expires on its own.
            client.apps_connections_open(app_token=settings.slack_app_token or "")
        except Exception as exc:  # noqa: BLE001
            print(f"contract-bot: {slack_problem(exc, settings, 'SLACK_APP_TOKEN')}", file=sys.stderr)
            return 2
        finally:
            sdk_log.setLevel(sdk_level)
    log.info("connected to Slack as %s in %s", auth.get("user"), auth.get("team"))
    bot = create_app(settings)
    for warning in startup_warnings(bot):
        log.warning("%s", warning)
    bot.start_background()
    bot.check_channels_soon()  # is the bot in the review and manager channels? (admins are told if not)
    log.info("contract-bot starting with %s", settings)
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(bot.bolt, settings.slack_app_token)
        try:
            try:
                handler.connect()  # what handler.start() does first; a refused app token is said in one line
            except Exception as exc:  # noqa: BLE001
                print(f"contract-bot: {slack_problem(exc, settings, 'SLACK_APP_TOKEN')}", file=sys.stderr)
                return 2
            log.info("connected to Slack in Socket Mode")
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            bot.stop()
        return 0
    from waitress import create_server

    try:
        server = create_server(bot.wsgi, host="0.0.0.0", port=settings.port, threads=64, ident="contract-bot")
    except OSError as exc:
        bot.stop()
        print(
            f"contract-bot: cannot listen on 0.0.0.0:{settings.port} ({exc.strerror or exc}): set PORT to a free "
            "port, or stop what is using this one",
            file=sys.stderr,
        )
        return 2

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
