"""Events API listeners (App Home), with the guard that makes Slack's retries of an event take effect once."""

from __future__ import annotations

from slack_bolt import App, BoltResponse

from handlers.context import HandlerContext, log
from handlers.home import MAX_ROWS, build_home_view


def register(app: App, ctx: HandlerContext) -> None:
    """Register the event listeners."""

    def once_per_event(body, next, request):  # noqa: A002, ANN001
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num): only the first delivery acts.
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id and not ctx.service.first_delivery(f"event:{event_id}"):
            log.info(
                "event %s already handled (retry %s); acknowledged, not repeated",
                event_id,
                request.headers.get("x-slack-retry-num"),
            )
            return BoltResponse(
                status=200, body=""
            )  # Bolt acknowledges with 200 and runs nothing: Slack's retries take effect once
        return next()

    # NOTE: a listener middleware, not a global one: the global kind costs every command, button and form
    # (Bolt builds its arguments per call), and only events carry an event_id.
    @app.event("app_home_opened", middleware=[once_per_event])
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
