"""The `/contract` slash command listener."""

from __future__ import annotations

import time

from slack_bolt import App

from bot.domain.args import parse_command
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
            ack(response_type="ephemeral", text=exc.user_text())
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
