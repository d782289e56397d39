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

from slack_sdk import WebClient

from bot.domain.errors import DomainError
from bot.services.inbox import GONE, Inbox, InboxItemGone, InboxJob
from bot.services.reviews import ReviewService

log = logging.getLogger("contract_bot.handlers")

# Slack allows 3 s for the HTTP 200. A request carried out at once (nothing queued) answers in the acknowledgement
# when its work is done by this budget, measured from when the request arrived; otherwise the acknowledgement says
# "working on it" and the answer follows through response_url. Normal work takes milliseconds; the budget only
# matters when the database or Slack is slow.
ACK_BUDGET_SECONDS = 1.0


@dataclass
class HandlerContext:
    """Dependencies of the listeners (built by bot.app.create_app)."""

    service: ReviewService
    work_pool: ThreadPoolExecutor
    render: Callable[[object], dict]
    exporter: Callable[[str], tuple[str, bytes]]
    inbox: Inbox
    client: WebClient | None = None  # for late replies that have no Bolt `respond` (replays after a crash)
    ack_budget: float = ACK_BUDGET_SECONDS
    inline_limit: int = 4  # requests carried out in their own acknowledgement at once; more go to the queue
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def today(self) -> date:
        """Today in the bot's zone."""
        return self.service.today()

    def outcome(self, fn: Callable[[], object]) -> dict:
        """Run a service call and turn its result or error into a reply message (never raises but InboxItemGone)."""
        try:
            return self.render(fn())
        except DomainError as exc:
            return {"text": exc.user_text()}
        except InboxItemGone:
            raise
        except Exception:  # noqa: BLE001 - the one error funnel: log with an ID, tell the user only the ID
            return {"text": error_reply(log)}

    def accept(self, kind: str, payload: dict, received_at: float, ack: Callable, *, durable: bool) -> None:
        """Acknowledge a request and see it carried out: the one path of every listener that does work.

        A request that changes something is recorded in the inbox first (``durable``), so an acknowledged request
        survives a crash. When nothing is queued it is carried out at once and its answer goes in the
        acknowledgement (when the surface allows one and it is ready within the budget); otherwise it joins the
        queue and the acknowledgement goes back at once, the answer following through response_url or a DM.
        """
        from handlers.jobs import JOBS

        spec = JOBS[kind]
        job = InboxJob(kind, payload)
        if durable:
            recording = self.inbox.record(job)
            try:
                recording.result(timeout=self._budget_left(received_at))
            except FutureTimeout:
                # The database did not take the write in time (locked or slow): acknowledge now and carry the
                # request out once it is recorded. Only in this window does a crash lose an acknowledged request.
                ack(**spec.deferred_ack())
                recording.add_done_callback(lambda f: self._recorded_late(job, f))
                return
            except Exception:  # noqa: BLE001 - not recorded, so not accepted: say so instead of acknowledging silently
                text = error_reply(log)
                ack(**spec.failed_ack(text))
                if not spec.reply_in_ack:
                    self.deliver(job, {"text": text})
                return
        with self._lock:
            inline = self.inbox.idle() and self.in_flight < self.inline_limit
            if inline:
                self.in_flight += 1
        if not inline:
            self.inbox.enqueue(job)
            ack(**spec.deferred_ack())
            return
        future: Future = self.work_pool.submit(self.inbox.run, job)
        future.add_done_callback(self._done)
        if not spec.reply_in_ack:  # e.g. a button: Slack shows nothing of an acknowledgement body
            ack()
            future.add_done_callback(lambda f: self._late(job, f))
            return
        try:
            reply = future.result(timeout=self._budget_left(received_at))
        except FutureTimeout:
            ack(**spec.deferred_ack())
            future.add_done_callback(lambda f: self._late(job, f))
            return
        except Exception:  # noqa: BLE001
            ack(**spec.failed_ack(error_reply(log)))
            return
        ack(**spec.ack_with(None if reply is GONE else reply))

    def _budget_left(self, received_at: float) -> float:
        """How long the acknowledgement may still wait (at least a moment, so a ready result is taken)."""
        return max(self.ack_budget - (time.monotonic() - received_at), 0.01)

    def after_ack(self, fn: Callable[[], None]) -> None:
        """Run Slack calls that follow an acknowledgement (views.open, views.publish) off the request's thread:
        Bolt runs listeners before it answers (process_before_response), so the answer must not wait for them."""

        def run() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001
                log.exception("work after an acknowledgement failed")

        self.work_pool.submit(run)

    def execute(self, job: InboxJob) -> object:
        """Carry out a job (the inbox calls this, inside the job's settlement); returns its reply or None."""
        from handlers.jobs import JOBS

        return JOBS[job.kind].run(self, job.payload)

    def deliver(self, job: InboxJob, reply: object) -> None:
        """Send the reply of a job carried out after its acknowledgement."""
        from handlers.jobs import JOBS

        if reply is None or reply is GONE:
            return
        try:
            JOBS[job.kind].late(self, job.payload, reply)
        except Exception:  # noqa: BLE001
            log.exception("could not deliver a late reply for %s", job.kind)

    def _recorded_late(self, job: InboxJob, recording: Future) -> None:
        try:
            recording.result()
        except Exception:  # noqa: BLE001
            self.deliver(job, {"text": error_reply(log)})
            return
        self.inbox.enqueue(job)

    def _late(self, job: InboxJob, future: Future) -> None:
        try:
            reply = future.result()
        except Exception:  # noqa: BLE001
            log.exception("job %s failed", job.kind)
            return
        self.deliver(job, reply)

    def _done(self, _future: Future) -> None:
        with self._lock:
            self.in_flight -= 1


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
