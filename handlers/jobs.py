"""The jobs a request can become: how each is carried out, acknowledged, and answered when it finishes late.

Listeners (commands, actions, modals) turn a request into a job with ``HandlerContext.accept``; the inbox carries it
out, at once or from its queue, and after a crash from its table. A job's payload is only what Slack sent (JSON),
so a replayed job runs the same code as a live one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from handlers.context import HandlerContext, log

WORKING = ":hourglass_flowing_sand: Working on it; the answer will follow here."
FILING = ":hourglass_flowing_sand: Filing… you will get a direct message with the reference."


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is carried out and answered."""

    run: Callable[[HandlerContext, dict], dict | None]  # carry it out; the reply (None: nothing to say)
    late: Callable[[HandlerContext, dict, dict], None]  # send a reply that missed the acknowledgement
    reply_in_ack: bool  # can the acknowledgement carry the reply (commands, modals) or not (buttons)
    ack_with: Callable[[dict | None], dict]  # the acknowledgement that carries a reply
    deferred_ack: Callable[[], dict]  # the acknowledgement when the reply will come later
    failed_ack: Callable[[str], dict]  # the acknowledgement when the request could not even be recorded


def respond_late(ctx: HandlerContext, payload: dict, reply: dict) -> None:
    """A private reply through the request's response_url; a direct message if that is gone (e.g. a replay
    after the URL's 30 minutes)."""
    url = payload.get("response_url")
    if url:
        try:
            webhook = WebhookClient(
                url,
                timeout=15,
                retry_handlers=[
                    ConnectionErrorRetryHandler(max_retry_count=2),
                    RateLimitErrorRetryHandler(max_retry_count=2),
                    ServerErrorRetryHandler(max_retry_count=2),
                ],
            )
            response = webhook.send_dict({"response_type": "ephemeral", "replace_original": False, **reply})
            if response.status_code == 200:
                return
            log.warning(
                "response_url answered %s; sending the reply as a direct message", response.status_code
            )
        except Exception:  # noqa: BLE001
            log.warning("response_url failed; sending the reply as a direct message", exc_info=True)
    direct_message(ctx, payload, reply)


def direct_message(ctx: HandlerContext, payload: dict, reply: dict) -> None:
    """A reply as a direct message to the user who made the request."""
    user = payload.get("user")
    if not user or ctx.client is None:
        log.error("a late reply had nowhere to go: %s", reply.get("text", "")[:200])
        return
    message = {k: v for k, v in reply.items() if k in ("text", "blocks")}
    ctx.client.chat_postMessage(channel=user, **message)


def _build() -> dict[str, JobKind]:
    from handlers import actions, commands, modals

    def ephemeral(reply: dict | None) -> dict:
        return {"response_type": "ephemeral", **(reply or {"text": "Done."})}

    def nothing(*_args: object) -> dict:
        return {}

    command = JobKind(
        run=commands.run_command_job,
        late=respond_late,
        reply_in_ack=True,
        ack_with=ephemeral,
        deferred_ack=lambda: {"response_type": "ephemeral", "text": WORKING},
        failed_ack=lambda text: {"response_type": "ephemeral", "text": text},
    )
    button = dict(
        late=respond_late, reply_in_ack=False, ack_with=nothing, deferred_ack=nothing, failed_ack=nothing
    )
    filing_view = modals.build_done_view(FILING)  # built once: slack_sdk validates every view it builds
    return {
        "command": command,
        "answer": JobKind(run=actions.run_answer_job, **button),
        "snooze": JobKind(run=actions.run_snooze_job, **button),
        "file_modal": JobKind(
            run=modals.run_file_modal_job,
            late=modals.dm_filing_result,
            reply_in_ack=True,
            ack_with=lambda reply: reply or {},
            deferred_ack=lambda: {"response_action": "update", "view": filing_view},
            failed_ack=lambda text: {"response_action": "update", "view": modals.build_done_view(text)},
        ),
        "note_modal": JobKind(
            run=modals.run_note_job,
            late=modals.dm_note_error,
            reply_in_ack=True,
            ack_with=lambda reply: reply or {},
            deferred_ack=nothing,
            failed_ack=lambda text: {
                "response_action": "errors",
                "errors": {modals.BlockId.NOTE.value: text[:150]},
            },
        ),
    }


class _Jobs(dict):
    """The job table, built on first use (the listener modules import this one's users)."""

    def __missing__(self, kind: str) -> JobKind:
        if not self:
            self.update(_build())
            return self[kind]
        raise KeyError(kind)


JOBS: dict[str, JobKind] = _Jobs()
