"""Events API listeners (App Home) and the middleware every request passes through."""

from __future__ import annotations

import time

from slack_bolt import App, BoltResponse

from handlers.context import HandlerContext, log
from handlers.home import MAX_ROWS, build_home_view


def register(app: App, ctx: HandlerContext) -> None:
    """Register the middleware and event listeners."""

    @app.middleware
    def stamp_and_dedupe(body, context, next, request):  # noqa: A002, ANN001
        # When the request arrived: the ack budget counts from here, not from when a pool thread got to it.
        context["received_at"] = time.monotonic()
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id and not ctx.service.first_delivery(f"event:{event_id}"):
            log.info("event %s already handled (retry %s); acknowledged, not repeated", event_id,
                     request.headers.get("x-slack-retry-num"))
            return BoltResponse(status=200, body="")  # Bolt acknowledges with 200 and runs nothing: Slack's retries take effect once
        next()

    @app.event("app_home_opened")
    def handle_app_home_opened_event(event, client):  # noqa: ANN001
        if event.get("tab") not in (None, "home"):
            return
        user = event.get("user")
        if not user:
            return

        def publish() -> None:
            try:
                # NOTE: published afresh on every app_home_opened, so the tab is current each time it is opened.
                dashboard = ctx.service.dashboard(user, limit=MAX_ROWS + 1)
                client.views_publish(user_id=user, view=build_home_view(dashboard, ctx.service.calendar.zone))
            except Exception:  # noqa: BLE001
                log.exception("could not publish App Home for %s", user)

        ctx.after_ack(publish)

    @app.event("message")
    def ignore_message_events() -> None:
        """Messages in channels the bot is in need nothing from us."""
