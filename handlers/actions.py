"""Button listeners: answers, notes, reminder snoozes."""

from __future__ import annotations

from slack_bolt import App

from bot.domain.errors import InputError
from handlers.context import HandlerContext, error_reply, log
from handlers.ids import ANSWER_ACTIONS, ActionId
from handlers.modals import NoteMetadata, build_note_modal


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

    def handle_answer_button(ack, body, action, respond):  # noqa: ANN001
        ack()  # the work below may be slow; the ack must not wait for it (F2.5)
        actor = (body.get("user") or {}).get("id", "")
        value = ANSWER_ACTIONS[ActionId(action["action_id"])]

        def work() -> None:
            try:
                contract_id, qid = parse_question_value(action.get("value"))
            except InputError as exc:
                _reply(respond, exc.user_text())
                return
            reply = ctx.outcome(lambda: ctx.service.answer(actor, contract_id, qid, value, via="answer"))
            if not reply["text"].startswith("Recorded"):
                _reply(respond, reply["text"])

        ctx.work_pool.submit(work)

    for action_id in ANSWER_ACTIONS:
        app.action(action_id.value)(handle_answer_button)

    @app.action(ActionId.ADD_NOTE.value)
    def handle_add_note_button(ack, body, action, client, respond):  # noqa: ANN001
        ack()
        try:
            contract_id, qid = parse_question_value(action.get("value"))
            client.views_open(trigger_id=body.get("trigger_id"), view=build_note_modal(NoteMetadata(contract_id, qid)))
        except InputError as exc:
            _reply(respond, exc.user_text())
        except Exception:  # noqa: BLE001
            _reply(respond, error_reply(log))

    def handle_snooze_button(ack, body, action, respond):  # noqa: ANN001
        ack()
        actor = (body.get("user") or {}).get("id", "")
        choice = "tomorrow" if action.get("action_id") == ActionId.SNOOZE_TOMORROW.value else "3d"
        keys = [k for k in str(action.get("value") or "").split(",") if k]
        ctx.work_pool.submit(lambda: _reply(respond, ctx.outcome(lambda: ctx.service.snooze(actor, keys, choice))["text"]))

    app.action(ActionId.SNOOZE_TOMORROW.value)(handle_snooze_button)
    app.action(ActionId.SNOOZE_3D.value)(handle_snooze_button)


def _reply(respond, text: str) -> None:  # noqa: ANN001
    try:
        respond(response_type="ephemeral", replace_original=False, text=text)
    except Exception:  # noqa: BLE001
        log.exception("could not send a private reply")
