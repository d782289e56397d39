"""Events API listeners (App Home), with the guard that makes Slack's retries of an event take effect once."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot.domain.errors import DomainError
from handlers.context import HandlerContext, log
from handlers.home import MAX_ROWS, build_home_view


def register(app: App, ctx: HandlerContext) -> None:
    """Register the event listeners."""

    def once_per_event(
        body: dict, request: BoltRequest, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:  # noqa: A002
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num): only the first delivery acts.
        event_id = body.get("event_id")
        if not event_id:
            return next()
        try:
            first = ctx.run(lambda: ctx.service.first_delivery(f"event:{event_id}"))
        except DomainError:  # the database did not answer: Slack will retry the event
            return BoltResponse(status=503, body="")
        if not first:
            log.info(
                "event %s already handled (retry %s); acknowledged, not repeated",
                event_id,
                request.headers.get("x-slack-retry-num"),
            )
            return BoltResponse(status=200, body="")
        return next()

    def acknowledge_home(ack: Ack, context: BoltContext) -> None:
        ack()

    def publish_home(event: dict, client: WebClient) -> None:
        """Publish the viewer's dashboard (a lazy listener: after the acknowledgement, off the request)."""
        user = event.get("user")
        if event.get("tab") not in (None, "home") or not user:
            return
        try:
            # NOTE: published afresh on every app_home_opened, so the tab is current each time it is opened.
            dashboard = ctx.service.dashboard(user, limit=MAX_ROWS + 1)
            client.views_publish(user_id=user, view=build_home_view(dashboard, ctx.service.calendar.zone))
        except Exception:  # noqa: BLE001
            log.exception("could not publish App Home for %s", user)

    app.event("app_home_opened", middleware=[once_per_event])(ack=acknowledge_home, lazy=[publish_home])

    @app.event("message")
    def ignore_message_events() -> None:
        """Messages in channels the bot is in need nothing from us."""
