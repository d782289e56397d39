"""Button listeners: answers, notes, reminder snoozes, and "More" on long answers."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.domain.args import STATUSES, parse_command
from bot.domain.errors import DomainError, InputError
from bot.domain.text import unescape_slack
from bot.services.channels import FilingRefused
from bot.services.reviews import DASHBOARD_LISTS, Done
from bot.services.router import contract_fields
from handlers.blocks import build_snoozed_reminder
from handlers.context import HandlerContext, log, private_reply
from handlers.home import MAX_ROWS, build_home_view
from handlers.ids import ANSWER_ACTIONS, ActionId
from handlers.modals import NoteMetadata, build_note_modal, open_form

OUT_OF_DATE = "This button is not one of ours or is out of date."
_PAGE_VALUE = re.compile(r"([a-z0-9_-]{0,20}):([0-9]{1,9})")


def parse_question_value(value: object) -> tuple[int, str]:
    """A question button's value "<contract id>:<QID>"; raises InputError for anything else."""
    if not isinstance(value, str) or ":" not in value:
        raise InputError("This button is not one of ours or is out of date.")
    raw_id, qid = value.split(":", 1)
    if not raw_id.isdigit() or not qid or len(qid) > 10:
        raise InputError("This button is not one of ours or is out of date.")
    return int(raw_id), qid


def parse_file_anyway_value(value: object) -> tuple[str, str]:
    """A "File anyway" button's value {"text": the `/contract file …` text, "nonce": …}; raises InputError else."""
    try:
        data = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InputError(OUT_OF_DATE)
    text, nonce = data.get("text"), data.get("nonce")
    if not isinstance(text, str) or not isinstance(nonce, str) or not re.fullmatch(r"[0-9a-f]{8,64}", nonce):
        raise InputError(OUT_OF_DATE)
    return text, nonce


def parse_page_value(value: object) -> tuple[str, int]:
    """A More button's value "<what>:<number>" (what: a contract id, a status, a list key, or empty); raises
    InputError for anything else."""
    m = _PAGE_VALUE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise InputError(OUT_OF_DATE)
    return m.group(1), int(m.group(2))


def parse_audit_value(value: object) -> tuple[int, int]:
    """An audit More button's value "<contract id>:<page>"; raises InputError for anything else."""
    what, page = parse_page_value(value)
    if not what.isdigit() or page < 1:
        raise InputError(OUT_OF_DATE)
    return int(what), page


def parse_list_value(value: object) -> tuple[str | None, int]:
    """A list More button's value "<status or empty>:<page>"; raises InputError for anything else."""
    what, page = parse_page_value(value)
    if (what and what not in STATUSES) or page < 1:
        raise InputError(OUT_OF_DATE)
    return what or None, page


def parse_home_value(value: object) -> tuple[str, int]:
    """An App Home More button's value "<list key>:<offset>"; raises InputError for anything else."""
    key, offset = parse_page_value(value)
    if key not in DASHBOARD_LISTS:
        raise InputError(OUT_OF_DATE)
    return key, offset


def private_message(respond: Callable[..., Any], message: dict) -> None:
    """A private reply with blocks through the request's response_url (a button's acknowledgement shows nothing);
    failures are logged."""
    try:
        respond(
            response_type="ephemeral",
            replace_original=False,
            text=message.get("text") or "",
            blocks=message.get("blocks"),
        )
    except Exception:  # noqa: BLE001
        log.exception("could not send a private reply")


def _replace_original(respond: Respond, message: dict) -> None:
    """Replace the message a button was pressed on, for everyone who sees it; failures are logged."""
    try:
        respond(replace_original=True, **message)
    except Exception:  # noqa: BLE001
        log.exception("could not show the snooze on its reminder")


def register(app: App, ctx: HandlerContext) -> None:
    """Register the button listeners."""

    def handle_answer_button(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        answer = ANSWER_ACTIONS[ActionId(action["action_id"])]
        actor = (body.get("user") or {}).get("id") or ""
        try:
            contract_id, qid = parse_question_value(action.get("value"))

            container = body.get("container")
            container = container if isinstance(container, dict) else {}
            clicked = (container.get("channel_id"), container.get("message_ts"))

            def work() -> Done:  # a forged value acts on nothing: the clicked message must be the question's
                return ctx.service.answer(actor, contract_id, qid, answer, via="answer", on_message=clicked)

            done = ctx.run(work)
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
            ctx.run(lambda: ctx.check_button_message(body, contract_id, qid))  # a forged value opens nothing
            problem = open_form(
                client, body.get("trigger_id"), build_note_modal(NoteMetadata(contract_id, qid))
            )
        except DomainError as exc:
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
        # a snooze is shown where the reminder is, to everyone there: "Snoozed until Tue 1 Dec 9:00 by @mel"
        shown = (
            build_snoozed_reminder(body.get("message"), text) if text.startswith("Snoozed until") else None
        )
        if shown is not None:
            ctx.after_answer(lambda: _replace_original(respond, shown))
        else:
            ctx.after_answer(lambda: private_reply(respond, text))

    def handle_more_button(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        """The next page of `audit` or `list`, shown privately; it reads only, like the command it continues."""
        value = action.get("value")
        more_audit = action.get("action_id") == ActionId.AUDIT_MORE.value
        reader = (body.get("user") or {}).get("id") or ""  # need-to-know: the button reads as its presser

        def work() -> object:
            if more_audit:
                return ctx.service.timeline(*parse_audit_value(value), reader=reader)
            return ctx.service.list_contracts(*parse_list_value(value), reader=reader)

        try:
            reply = ctx.render(ctx.run(work))
            context["outcome"] = "answered"
        except DomainError as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            reply = {"text": exc.user_text()}
        ack()
        ctx.after_answer(lambda: private_message(respond, reply))

    def handle_home_more_button(
        ack: Ack, body: dict, action: dict, client: WebClient, context: BoltContext
    ) -> None:
        """The next rows of one App Home list: the viewer's Home tab is published again (it has no response_url)."""
        user = (body.get("user") or {}).get("id") or ""
        try:
            key, offset = parse_home_value(action.get("value"))
            offsets, notice = {key: offset}, None
        except InputError as exc:
            offsets, notice = {}, f"{exc.message} The lists are shown from the start."
        try:
            dashboard = ctx.run(lambda: ctx.service.dashboard(user, limit=MAX_ROWS, offsets=offsets))
        except DomainError as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            ack()
            return
        if notice is not None:
            dashboard = dataclasses.replace(dashboard, notice=notice)
        context["outcome"] = "answered" if notice is None else "refused: InputError"
        ack()
        view = build_home_view(dashboard, ctx.service.calendar.zone)

        def publish() -> None:
            client.views_publish(user_id=user, view=view)

        ctx.after_answer(publish)

    def handle_file_anyway_button(
        ack: Ack, body: dict, action: dict, respond: Respond, context: BoltContext
    ) -> None:
        """File what a look-alike warning held back: the same command, checked again, filed once however often
        the button is pressed (its nonce is the filing's source key)."""
        actor = (body.get("user") or {}).get("id") or ""

        def work() -> Done:
            text, nonce = parse_file_anyway_value(action.get("value"))
            parsed = parse_command(unescape_slack(text), today=ctx.today())
            if parsed.name != "file" or parsed.opens_modal:
                raise InputError(OUT_OF_DATE)
            return ctx.service.file_contract(
                actor, contract_fields(parsed.args), anyway=True, source_key=f"anyway:{nonce}"
            )

        try:
            done = ctx.run(work)
            context["outcome"] = "done" if done.changed else "unchanged"
            reply = done.text
        except (FilingRefused, DomainError) as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            reply = exc.user_text()
        ack()

        def answer() -> None:
            # the warning with its button is replaced by what happened, so it cannot be pressed again
            try:
                respond(response_type="ephemeral", replace_original=True, text=reply)
            except Exception:  # noqa: BLE001
                log.exception("could not send a private reply")

        ctx.after_answer(answer)

    for action_id in ANSWER_ACTIONS:
        app.action(action_id.value)(handle_answer_button)
    app.action(ActionId.ADD_NOTE.value)(handle_add_note_button)
    app.action(ActionId.SNOOZE_TOMORROW.value)(handle_snooze_button)
    app.action(ActionId.SNOOZE_3D.value)(handle_snooze_button)
    app.action(ActionId.AUDIT_MORE.value)(handle_more_button)
    app.action(ActionId.LIST_MORE.value)(handle_more_button)
    app.action(ActionId.HOME_MORE.value)(handle_home_more_button)
    app.action(ActionId.FILE_ANYWAY.value)(handle_file_anyway_button)
