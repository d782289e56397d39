"""The `/contract` slash command listener."""

from __future__ import annotations

import re
import time

from slack_bolt import App

from bot.domain.args import COMMANDS, Command, parse_command
from bot.domain.errors import InputError
from bot.domain.text import unescape_slack
from bot.services.router import ExportRequest, run_command
from handlers.context import HandlerContext, error_reply, log
from handlers.modals import build_file_modal


def register(app: App, ctx: HandlerContext) -> None:
    """Register the command listener."""

    @app.command("/contract")
    def handle_contract_command(ack, command, respond, client, context):  # noqa: ANN001
        received = context.get("received_at", time.monotonic())
        actor = command.get("user_id", "")
        try:
            # NOTE: Slack sends &, < and > typed by the user as &amp; &lt; &gt;; mentions arrive as real <@U…> tokens.
            parsed = parse_command(unescape_slack(command.get("text") or ""), today=ctx.today())
        except InputError as exc:
            attempted, contract_id = attempted_action(command.get("text") or "")
            if attempted is None or not actor:
                ack(response_type="ephemeral", text=exc.user_text())
                return

            def refuse(error: InputError = exc) -> object:
                # an attempt at a known action is audited as refused (a missing role first), within Slack's deadline
                raise ctx.service.refuse_input(actor, attempted.name, attempted.role, contract_id, error)

            ctx.answer_within_deadline(refuse, received, ack, respond)
            return
        except Exception:  # noqa: BLE001
            ack(response_type="ephemeral", text=error_reply(log))
            return
        if parsed.opens_modal:
            ack()
            try:
                client.views_open(trigger_id=command.get("trigger_id"), view=build_file_modal())
            except Exception:  # noqa: BLE001
                respond(response_type="ephemeral", text=error_reply(log))
            return

        def work() -> object:
            result = run_command(ctx.service, actor, parsed)
            if isinstance(result, ExportRequest):
                ctx.work_pool.submit(send_export, client, actor, result.format, ctx)
            return result

        ctx.answer_within_deadline(work, received, ack, respond)


_REF = re.compile(r"^CR-(\d{1,9})$", re.IGNORECASE)
READ_ONLY = frozenset({"show", "list", "audit", "help"})


def attempted_action(text: str) -> tuple[Command | None, int | None]:
    """The action a malformed command text attempts, and the contract it names, when recognisable."""
    words = unescape_slack(text).split()[:3]
    if not words:
        return None, None
    name, rest = words[0].lower(), words[1:]
    if name == "admin" and rest:
        name, rest = f"admin {rest[0].lower()}", rest[1:]
    command = COMMANDS.get(name)
    if command is None or command.name in READ_ONLY:
        return None, None
    match = _REF.match(rest[0]) if rest else None
    return command, int(match.group(1)) if match else None


def send_export(client, user_id: str, fmt: str, ctx: HandlerContext) -> None:  # noqa: ANN001
    """Build the export and upload it to the admin's direct messages."""
    try:
        filename, content = ctx.exporter(fmt)
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(channel=channel, filename=filename, content=content, title=filename,
                               initial_comment="contract-bot export: every contract with its answers, milestones and determination.")
    except Exception:  # noqa: BLE001
        error_id = error_reply(log)
        try:
            client.chat_postMessage(channel=user_id, text=f"The export failed. {error_id}")
        except Exception:  # noqa: BLE001
            log.exception("could not report a failed export")
