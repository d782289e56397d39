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
        with self._lock:
            # When every worker is busy the work will queue: waiting for it would only hold this request's
            # thread and delay the acks of the requests behind it, so answer at once.
            saturated = self.in_flight >= self.capacity
            self.in_flight += 1
        future: Future = self.work_pool.submit(self.outcome, fn)
        future.add_done_callback(self._done)
        remaining = 0.0 if saturated else self.ack_budget - (time.monotonic() - received_at)
        try:
            reply = future.result(timeout=max(remaining, 0.01))
        except FutureTimeout:
            ack(response_type="ephemeral", text=":hourglass_flowing_sand: Working on it; the answer will follow here.")
            if respond is not None:
                future.add_done_callback(lambda f: _respond_safely(respond, f.result()))
            return
        ack(response_type="ephemeral", **reply)

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
