"""The one error funnel (Bolt's ``@app.error``) and the global middleware: the payload shape guard, the bot's own
workspace only, and well-formed user IDs. (Each signed request carried out at most once: bot.app.LoggedApp.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse

from handlers.context import (
    HandlerContext,
    error_reply,
    foreign_origin,
    payload_problem,
    private_reply,
    valid_user_id,
)
from handlers.modals import build_done_view

log = logging.getLogger("contract_bot.handlers")
security_log = logging.getLogger("contract_bot.security")

FOREIGN = (
    "This bot serves only its own Slack workspace, and this request came from {where}, so nothing was done."
)
BAD_USER = "This request does not name a Slack user the way Slack does, so nothing was done."


def register(app: App, ctx: HandlerContext) -> None:
    """Register the error handler and the global middleware."""

    def refusal(body: dict, request: BoltRequest, text: str) -> BoltResponse:
        """Answer a request refused before any listener: privately, as its kind is answered."""
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
        if body.get("type") == "view_submission":
            return BoltResponse(status=200, body={"response_action": "update", "view": build_done_view(text)})
        respond = request.context.respond
        if respond is not None:  # a button or shortcut: its acknowledgement shows nothing
            ctx.after_answer(lambda: private_reply(respond, text))
        return BoltResponse(status=200, body="")  # an event: Slack expects an empty 200

    @app.middleware
    def refuse_before_listeners(
        body: Any,
        request: BoltRequest,
        context: BoltContext,
        next: Callable[[], BoltResponse],  # noqa: A002
    ) -> BoltResponse:
        # One middleware for the three refusals: Bolt builds each middleware's arguments on every request.
        # NOTE: Bolt's matchers index into the body (action["action_id"], view["callback_id"]) and raise on shapes
        # Slack never sends; a signed body of such a shape is acknowledged and dropped.
        problem = payload_problem(body, request.raw_body)
        if problem is not None:
            log.warning("ignored a malformed request: %s", problem)
            return BoltResponse(status=200, body="")
        # NOTE: one signing secret may serve the app in several workspaces (a distributed app, Enterprise Grid),
        # so a well-signed request can still come from a workspace whose people hold no roles here.
        # None: Bolt answered it without authorising (url_verification, ssl_check)
        own = context.authorize_result
        where = (
            None
            if own is None
            else foreign_origin(context.team_id, context.enterprise_id, own.team_id, own.enterprise_id)
        )
        if where is not None:
            security_log.warning("refused a request from %s", where)
            context["outcome"] = "refused: foreign"
            return refusal(body, request, FOREIGN.format(where=where))
        user = context.user_id
        if user is not None and not valid_user_id(user):
            security_log.warning("refused a request whose user ID is not one Slack issues")
            context["outcome"] = "refused: user ID"
            context["user_id"] = None  # so that the request log does not write it either
            return refusal(body, request, BAD_USER)
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
        return refusal(body, request, text)
