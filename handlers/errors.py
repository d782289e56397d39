"""The one error funnel (Bolt's ``@app.error``) and the payload shape guard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from handlers.context import HandlerContext, error_reply, payload_problem, private_reply
from handlers.modals import build_done_view

log = logging.getLogger("contract_bot.handlers")


def register(app: App, ctx: HandlerContext) -> None:
    """Register the error handler and the global middleware."""

    @app.middleware
    def refuse_malformed(body: Any, request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
        # NOTE: Bolt's matchers index into the body (action["action_id"], view["callback_id"]) and raise on shapes
        # Slack never sends; a signed body of such a shape is acknowledged and dropped.
        problem = payload_problem(body, request.raw_body)
        if problem is not None:
            log.warning("ignored a malformed request: %s", problem)
            return BoltResponse(status=200, body="")
        return next()

    @app.error
    def handle_errors(error: Exception, body: Any, request: BoltRequest) -> BoltResponse:
        """Anything a listener did not expect: logged under a short ID that the user is shown, and nothing else."""
        problem = payload_problem(body, request.raw_body)
        if problem is not None:  # a shape Bolt's own middleware tripped on
            log.warning("ignored a malformed request: %s", problem)
            return BoltResponse(status=200, body="")
        text = error_reply(log, error)
        if not isinstance(body, dict):
            return BoltResponse(status=200, body="")
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
        if body.get("type") == "view_submission":
            return BoltResponse(status=200, body={"response_action": "update", "view": build_done_view(text)})
        respond = request.context.respond
        if respond is not None:  # a button or shortcut: its acknowledgement shows nothing
            ctx.after_answer(lambda: private_reply(respond, text))
        return BoltResponse(status=200, body="")
