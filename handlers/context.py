"""What the listeners share: the services, the request deadline, rendering, and work that follows an answer."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk import WebClient

from bot.domain.errors import DomainError
from bot.services.bindings import ButtonBindings
from bot.services.channels import ChannelService
from bot.services.deadline import NothingRecorded, OutcomeUnknown, RequestRunner
from bot.services.replays import AlreadyCarriedOut, ReplayGuard, current_mark
from bot.services.reviews import ReviewService

log = logging.getLogger("contract_bot.handlers")


@dataclass
class HandlerContext:
    """Dependencies of the listeners (built by bot.app.create_app)."""

    service: ReviewService
    requests: RequestRunner
    render: Callable[[object], dict]
    exporter: Callable[[str], tuple[str, bytes]]
    # Slack calls that follow an answer and need not be in the outbox: private replies through a response_url
    # and export uploads. Never views.open, which runs in the request itself while its trigger is fresh.
    followups: Executor
    client: WebClient  # the outbox's client (retries): for export uploads after the answer
    channels: ChannelService  # whether filing may go (a database read); channel checks after `admin set`
    replays: ReplayGuard | None = None  # at most once: each signed request is recorded with its change
    bindings: ButtonBindings | None = None  # a button acts only on what the message it is on shows
    names: Callable[[str], str] | None = None  # Slack user ID -> name (users.info, cached): for Word files

    def today(self) -> date:
        """Today in the bot's zone."""
        return self.service.today()

    def run(self, fn: Callable[[], Any]) -> Any:
        """Carry out a request's work within Slack's deadline (bot.services.deadline); raises its domain errors."""
        replays = self.replays

        def work() -> Any:
            try:
                return fn()
            except DomainError as exc:
                # a replay is found by its commit, which a refusal never reaches: refused by what its first copy
                # did, it is told it was carried out (asked here, in the worker, so within the deadline)
                if not isinstance(exc, AlreadyCarriedOut) and replays is not None and replays.carried_out():
                    raise AlreadyCarriedOut() from None
                raise

        try:
            return self.requests.run(work)
        except (NothingRecorded, OutcomeUnknown):
            # The person was told to try again, which sends a new signed request: this one is spent, so that a
            # replay of it cannot land later (recorded in the background, once the database answers again).
            if replays is not None:
                mark = current_mark()
                if mark is not None and not mark.recorded:
                    self.followups.submit(lambda: replays.burn(mark))
            raise

    def check_button_message(self, body: dict, contract_id: int, qid: str) -> None:
        """Inside ``run``: raises InputError unless the clicked message is question ``qid`` of the contract's."""
        if self.bindings is None:
            return
        container = body.get("container")
        container = container if isinstance(container, dict) else {}
        self.bindings.check_question_button(
            contract_id, qid, container.get("channel_id"), container.get("message_ts")
        )

    def reply(self, fn: Callable[[], object]) -> dict:
        """Carry out a request's work and render its result, or the user's error, as a private reply.

        Anything unexpected propagates to Bolt's error handler (handlers.errors), which answers with an error ID.
        """
        try:
            return self.render(self.run(fn))
        except DomainError as exc:
            return {"text": exc.user_text()}

    def after_answer(self, fn: Callable[[], None]) -> None:
        """Run a Slack call after the acknowledgement, off the request's thread; failures are logged."""

        def run() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001
                log.exception("work after an answer failed")

        self.followups.submit(run)


def error_reply(logger: logging.Logger, error: BaseException | None = None) -> str:
    """Log an unexpected error under a short ID and return the user's message naming only that ID."""
    error_id = secrets.token_hex(4)
    logger.error("unexpected error %s", error_id, exc_info=error if error is not None else True)
    return (
        f":warning: Something went wrong on our side (error ID `{error_id}`). "
        "Please try again, or give an admin the ID."
    )


def private_reply(respond: Callable[..., Any], text: str) -> None:
    """A private reply through the request's response_url (buttons and shortcuts, whose acknowledgement shows
    nothing); failures are logged."""
    try:
        respond(response_type="ephemeral", replace_original=False, text=text)
    except Exception:  # noqa: BLE001
        log.exception("could not send a private reply")


# ---- payload shape guard --------------------------------------------------------------------------------------


def _str(value: object) -> bool:
    return isinstance(value, str)


def _has_nul(node: object, depth: int = 0) -> bool:
    if isinstance(node, str):
        return "\x00" in node
    if depth > 20:
        return False
    if isinstance(node, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_nul(v, depth + 1) for v in node)
    return False


def _without_form_input(body: dict) -> dict:
    """The body without what people typed into a modal (the form validation refuses control characters there)."""
    view = body.get("view")
    if isinstance(view, dict) and "state" in view:
        return {**body, "view": {k: v for k, v in view.items() if k != "state"}}
    return body


def _user_ok(body: dict) -> bool:
    user = body.get("user", {})
    return isinstance(user, dict) and _str(user.get("id", ""))


def _may_hold_nul(raw_body: str | None) -> bool:
    """False when the raw request cannot carry a NUL: not as a byte, form-encoded (%00) or JSON-escaped (\\u0000)."""
    return raw_body is None or "\x00" in raw_body or "%00" in raw_body or "u0000" in raw_body


def payload_problem(body: object, raw_body: str | None = None) -> str | None:
    """Why a (signed) request body is not a shape Slack sends, else None.

    Bolt's middleware and listener matchers index into the body (``action["action_id"]``, ``body["callback_id"]``,
    ``body["event"].get``) and answer 500 when a field is missing or not a string; the WSGI entry (bot.app) checks
    signed bodies here first and acknowledges and ignores those instead."""
    if not isinstance(body, dict):
        return "the body is not an object"
    if "command" in body:  # a slash command: its text is checked by the parser; the IDs are stored
        if any("\x00" in str(body.get(k) or "") for k in ("user_id", "channel_id", "team_id")):
            return "a NUL character in an ID"
    elif _may_hold_nul(raw_body) and _has_nul(
        _without_form_input(body)
    ):  # PostgreSQL cannot store one (IDs are stored)
        return "a NUL character (Slack never sends one)"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        for action in actions:
            if (
                not isinstance(action, dict)
                or not _str(action.get("action_id"))
                or not _str(action.get("block_id", ""))
            ):
                return "an action without a string action_id/block_id"
        if not _user_ok(body):
            return "block_actions with a malformed user"
    elif kind in (
        "message_action",
        "shortcut",
        "interactive_message",
        "dialog_submission",
        "dialog_cancellation",
        "workflow_step_edit",
    ):
        if not _str(body.get("callback_id")) or not _user_ok(body):
            return f"{kind} without a string callback_id or with a malformed user"
        message = body.get("message", {})
        if not isinstance(message, dict) or not _str(message.get("text", "")):
            return f"{kind} whose message is not a message"
    elif kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not _str(view.get("callback_id")) or not _user_ok(body):
            return f"{kind} without a view callback_id or with a malformed user"
        state = view.get("state", {})
        if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
            return f"{kind} whose view state is not an object"
    if kind == "event_callback" or "event" in body:
        event = body.get("event")
        if not isinstance(event, dict) or not _str(event.get("type")) or not _str(event.get("subtype", "")):
            return "an event without a string type"
    return None


# ---- who and where a request comes from -----------------------------------------------------------------------

# Slack's user IDs: U… (or W… on Enterprise Grid), then capitals and digits. Anything else never reaches a text or
# the database (it would be shown as a mention, or stored as who did something).
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


def valid_user_id(value: object) -> bool:
    """True for a Slack user ID (``U…`` / ``W…``)."""
    return isinstance(value, str) and USER_ID.fullmatch(value) is not None


def foreign_origin(
    team_id: str | None, enterprise_id: str | None, own_team_id: str | None, own_enterprise_id: str | None
) -> str | None:
    """Why a request is not from the bot's own workspace (and enterprise), else None.

    The bot's own are what auth.test answered at start-up. An org-wide install (Enterprise Grid) has no workspace
    of its own: then only the enterprise must match."""
    if (enterprise_id or None) != (own_enterprise_id or None):
        return "another enterprise"
    if own_team_id and team_id != own_team_id:
        return "another workspace"
    return None
