"""Button listeners: answers, notes, reminder snoozes."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.domain.errors import DomainError, InputError
from handlers.context import HandlerContext, private_reply
from handlers.ids import ANSWER_ACTIONS, ActionId
from handlers.modals import NoteMetadata, build_note_modal, open_form


def parse_question_value(value: object) -> tuple[int, str]:
    """A question button's value "<contract id>:<QID>"; raises InputError for anything else."""
    if not isinstance(value, str) or ":" not in value:
        raise InputError("This button is not one of ours or is out of date.")
    raw_id, qid = value.split(":", 1)
    if not raw_id.isdigit() or not qid or len(qid) > 10:
        raise InputError("This button is not one of ours or is out of date.")
    return int(raw_id), qid


def register(app: App, ctx: HandlerContext) -> None:
    """Register the button listeners."""

    def handle_answer_button(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        answer = ANSWER_ACTIONS[ActionId(action["action_id"])]
        actor = (body.get("user") or {}).get("id") or ""
        try:
            contract_id, qid = parse_question_value(action.get("value"))
            done = ctx.run(lambda: ctx.service.answer(actor, contract_id, qid, answer, via="answer"))
        except DomainError as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            ack()
            text = exc.user_text()
            ctx.after_answer(lambda: private_reply(respond, text))
            return
        context["outcome"] = "done" if done.changed else "unchanged"
        ack()
        if (
            not done.changed
        ):  # the question's message shows a recorded answer; anything else is told privately
            ctx.after_answer(lambda: private_reply(respond, done.text))

    def handle_add_note_button(
        ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond, context: BoltContext
    ) -> None:
        try:
            contract_id, qid = parse_question_value(action.get("value"))
            problem = open_form(
                client, body.get("trigger_id"), build_note_modal(NoteMetadata(contract_id, qid))
            )
        except InputError as exc:
            problem = exc.user_text()
        context["outcome"] = "form opened" if problem is None else "form not opened"
        ack()
        if problem is not None:
            ctx.after_answer(lambda: private_reply(respond, problem))

    def handle_snooze_button(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        choice = "tomorrow" if action.get("action_id") == ActionId.SNOOZE_TOMORROW.value else "3d"
        actor = (body.get("user") or {}).get("id") or ""
        keys = [k for k in str(action.get("value") or "").split(",") if k][:50]
        reply = ctx.reply(lambda: ctx.service.snooze(actor, keys, choice))
        context["outcome"] = "done" if reply.get("text", "").startswith("Snoozed") else "answered"
        ack()
        text = reply.get("text") or ""
        ctx.after_answer(lambda: private_reply(respond, text))

    for action_id in ANSWER_ACTIONS:
        app.action(action_id.value)(handle_answer_button)
    app.action(ActionId.ADD_NOTE.value)(handle_add_note_button)
    app.action(ActionId.SNOOZE_TOMORROW.value)(handle_snooze_button)
    app.action(ActionId.SNOOZE_3D.value)(handle_snooze_button)
