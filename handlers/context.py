"""What the listeners share: the services, the work pool and Slack's acknowledgement deadline."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date

from bot.domain.errors import DomainError
from bot.services.reviews import ReviewService

log = logging.getLogger("contract_bot.handlers")

# Slack allows 3 s for the HTTP 200; we answer with the result when the work is done by this budget,
# measured from when the request arrived, and otherwise say "working on it" and reply through response_url.
# Normal work takes milliseconds; the budget only matters when the database or Slack is slow.
ACK_BUDGET_SECONDS = 1.0


@dataclass
class HandlerContext:
    """Dependencies of the listeners (built by bot.app.create_app)."""

    service: ReviewService
    work_pool: ThreadPoolExecutor
    render: Callable[[object], dict]
    exporter: Callable[[str], tuple[str, bytes]]
    ack_budget: float = ACK_BUDGET_SECONDS
    capacity: int = 16  # the work pool's size
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def today(self) -> date:
        """Today in the bot's zone."""
        return self.service.today()

    def outcome(self, fn: Callable[[], object]) -> dict:
        """Run a service call and turn its result or error into a reply message (never raises)."""
        try:
            return self.render(fn())
        except DomainError as exc:
            return {"text": exc.user_text()}
        except Exception:  # noqa: BLE001 - the one error funnel: log with an ID, tell the user only the ID
            return {"text": error_reply(log)}

    def answer_within_deadline(self, fn: Callable[[], object], received_at: float, ack: Callable,
                               respond: Callable | None) -> None:
        """Ack with the result if it is ready in time; else ack "working on it" and respond when done."""
        future, wait = self.submit_with_budget(lambda: self.outcome(fn), received_at)
        try:
            reply = future.result(timeout=wait)
        except FutureTimeout:
            ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it; the answer will follow here.")
            if respond is not None:
                future.add_done_callback(lambda f: _respond_safely(respond, f.result()))
            return
        ack(response_type="ephemeral", **reply)

    def submit_with_budget(self, fn: Callable[[], object], received_at: float) -> tuple[Future, float]:
        """Submit work to the pool; returns its future and how long the ack may wait for it."""
        with self._lock:
            # When every worker is busy the work will queue: waiting for it would only hold this request's
            # thread and delay the acks of the requests behind it, so answer at once.
            saturated = self.in_flight >= self.capacity
            self.in_flight += 1
        future: Future = self.work_pool.submit(fn)
        future.add_done_callback(self._done)
        remaining = 0.0 if saturated else self.ack_budget - (time.monotonic() - received_at)
        return future, max(remaining, 0.01)

    def _done(self, _future: Future) -> None:
        with self._lock:
            self.in_flight -= 1


def _respond_safely(respond: Callable, reply: dict) -> None:
    try:
        respond(response_type="ephemeral", replace_original=False, **reply)
    except Exception:  # noqa: BLE001
        log.exception("could not deliver a late reply")


def error_reply(logger: logging.Logger) -> str:
    """Log the current exception under a short ID and return the user's message naming only that ID."""
    error_id = secrets.token_hex(4)
    logger.exception("unexpected error %s", error_id)
    return f":warning: Something went wrong on our side (error ID `{error_id}`). Please try again, or give an admin the ID."


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


def payload_problem(body: object) -> str | None:
    """Why a (signed) request body is not a shape Slack sends, else None.

    Bolt's middleware and listener matchers index into the body (``action["action_id"]``, ``body["callback_id"]``,
    ``body["event"].get``) and answer 500 when a field is missing or not a string; the WSGI entry (bot.app) checks
    signed bodies here first and acknowledges and ignores those instead."""
    if not isinstance(body, dict):
        return "the body is not an object"
    if "command" in body:  # a slash command: its text is checked by the parser; the IDs are stored
        if any("\x00" in str(body.get(k) or "") for k in ("user_id", "channel_id", "team_id")):
            return "a NUL character in an ID"
    elif _has_nul(_without_form_input(body)):  # PostgreSQL cannot store one (event_id, view.id, user IDs are stored)
        return "a NUL character (Slack never sends one)"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        for action in actions:
            if not isinstance(action, dict) or not _str(action.get("action_id")) or not _str(action.get("block_id", "")):
                return "an action without a string action_id/block_id"
        if not _user_ok(body):
            return "block_actions with a malformed user"
    elif kind in ("message_action", "shortcut", "interactive_message", "dialog_submission", "dialog_cancellation",
                  "workflow_step_edit"):
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

