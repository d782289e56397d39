"""Button listeners: answers, notes, reminder snoozes."""

from __future__ import annotations

import time

from bot.domain.errors import InputError
from handlers.context import HandlerContext, error_reply, log
from handlers.ids import ANSWER_ACTIONS, ActionId
from handlers.modals import NoteMetadata, build_note_modal
from handlers.routes import Routes


def parse_question_value(value: object) -> tuple[int, str]:
    """A question button's value "<contract id>:<QID>"; raises InputError for anything else."""
    if not isinstance(value, str) or ":" not in value:
        raise InputError("This button is not one of ours or is out of date.")
    raw_id, qid = value.split(":", 1)
    if not raw_id.isdigit() or not qid or len(qid) > 10:
        raise InputError("This button is not one of ours or is out of date.")
    return int(raw_id), qid


def register(routes: Routes, ctx: HandlerContext) -> None:
    """Register the button listeners."""

    def handle_answer_button(ack, body, action, context, **_):  # noqa: ANN001, ANN003
        received = context.get("received_at", time.monotonic())
        payload = {
            "user": (body.get("user") or {}).get("id", ""),
            "value": action.get("value"),
            "answer": ANSWER_ACTIONS[ActionId(action["action_id"])],
            "response_url": body.get("response_url"),
        }
        ctx.accept("answer", payload, received, ack, durable=True)

    def handle_add_note_button(ack, body, action, client, respond, **_):  # noqa: ANN001, ANN003
        ack()

        def open_note_form() -> None:
            try:
                contract_id, qid = parse_question_value(action.get("value"))
                client.views_open(
                    trigger_id=body.get("trigger_id"), view=build_note_modal(NoteMetadata(contract_id, qid))
                )
            except InputError as exc:
                _reply(respond, exc.user_text())
            except Exception:  # noqa: BLE001
                _reply(respond, error_reply(log))

        ctx.after_ack(open_note_form)

    def handle_snooze_button(ack, body, action, context, **_):  # noqa: ANN001, ANN003
        received = context.get("received_at", time.monotonic())
        choice = "tomorrow" if action.get("action_id") == ActionId.SNOOZE_TOMORROW.value else "3d"
        payload = {
            "user": (body.get("user") or {}).get("id", ""),
            "choice": choice,
            "keys": [k for k in str(action.get("value") or "").split(",") if k][:50],
            "response_url": body.get("response_url"),
        }
        ctx.accept("snooze", payload, received, ack, durable=True)

    routes.actions([a.value for a in ANSWER_ACTIONS], handle_answer_button)
    routes.actions([ActionId.ADD_NOTE.value], handle_add_note_button)
    routes.actions([ActionId.SNOOZE_TOMORROW.value, ActionId.SNOOZE_3D.value], handle_snooze_button)


def run_answer_job(ctx: HandlerContext, payload: dict) -> dict | None:
    """Carry out an answer button; a reply only when it was not recorded (the question's message shows it)."""
    try:
        contract_id, qid = parse_question_value(payload.get("value"))
    except InputError as exc:
        return {"text": exc.user_text()}
    reply = ctx.outcome(
        lambda: ctx.service.answer(
            payload.get("user") or "", contract_id, qid, payload.get("answer"), via="answer"
        )
    )
    return None if reply["text"].startswith("Recorded") else {"text": reply["text"]}


def run_snooze_job(ctx: HandlerContext, payload: dict) -> dict:
    """Carry out a snooze button on a reminder."""
    keys = [str(k) for k in payload.get("keys") or []]
    return {
        "text": ctx.outcome(
            lambda: ctx.service.snooze(payload.get("user") or "", keys, payload.get("choice") or "tomorrow")
        )["text"]
    }


def _reply(respond, text: str) -> None:  # noqa: ANN001
    try:
        respond(response_type="ephemeral", replace_original=False, text=text)
    except Exception:  # noqa: BLE001
        log.exception("could not send a private reply")
