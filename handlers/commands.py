"""The `/contract` slash command listener."""

from __future__ import annotations

import re
import time

from bot.domain.args import COMMANDS, Command, parse_command
from bot.domain.errors import InputError
from bot.domain.text import unescape_slack
from bot.services.router import ExportRequest, run_command
from handlers.context import HandlerContext, error_reply, log
from handlers.modals import build_file_modal
from handlers.routes import Routes


def register(routes: Routes, ctx: HandlerContext) -> None:
    """Register the command listener."""

    def handle_contract_command(ack, command, respond, client, context):  # noqa: ANN001
        received = context.get("received_at", time.monotonic())
        actor = command.get("user_id", "")
        text = command.get("text") or ""
        # Only the subcommand is read here: the job parses the rest (a known subcommand's mistakes are answered,
        # and audited when they attempt an action, by the same code live or replayed).
        known = subcommand_of(text)
        if known is None:
            try:
                # NOTE: Slack sends &, < and > typed by the user as &amp; &lt; &gt;; mentions arrive as real <@U…>.
                parse_command(unescape_slack(text), today=ctx.today())
            except InputError as exc:
                ack(
                    response_type="ephemeral", text=exc.user_text()
                )  # nothing to record: answered here and now
                return
            except Exception:  # noqa: BLE001
                ack(response_type="ephemeral", text=error_reply(log))
                return
        elif known.name == "file" and len(text.split()) == 1:  # a bare `/contract file` opens the form
            ack()

            def open_filing_form() -> None:
                try:
                    client.views_open(trigger_id=command.get("trigger_id"), view=build_file_modal())
                except Exception:  # noqa: BLE001
                    respond(response_type="ephemeral", text=error_reply(log))

            ctx.after_ack(open_filing_form)
            return
        payload = {
            "text": text,
            "user": actor,
            "channel": command.get("channel_id"),
            "response_url": command.get("response_url"),
        }
        # A read loses nothing if a crash drops it; everything else is recorded before the acknowledgement.
        ctx.accept(
            "command", payload, received, ack, durable=known is not None and known.name not in READ_ONLY
        )

    routes.command("/contract", handle_contract_command)


def subcommand_of(text: str) -> Command | None:
    """The subcommand a `/contract` text names (its first word, or the first two after `admin`), if it is one."""
    words = unescape_slack(text).split()[:2]
    if not words:
        return None
    name = words[0].lower()
    if name == "admin" and len(words) > 1:
        name = f"admin {words[1].lower()}"
    return COMMANDS.get(name)


def run_command_job(ctx: HandlerContext, payload: dict) -> dict:
    """Carry out a `/contract` command (live or replayed); returns the private reply."""
    text, actor = payload.get("text") or "", payload.get("user") or ""
    try:
        parsed = parse_command(unescape_slack(text), today=ctx.today())
    except InputError as exc:
        attempted, contract_id = attempted_action(text)
        if attempted is None or not actor:
            return {"text": exc.user_text()}

        def refuse(error: InputError = exc) -> object:
            # an attempt at a known action is audited as refused (a missing role first)
            raise ctx.service.refuse_input(actor, attempted.name, attempted.role, contract_id, error)

        return ctx.outcome(refuse)

    def work() -> object:
        result = run_command(ctx.service, actor, parsed)
        if isinstance(result, ExportRequest):
            ctx.work_pool.submit(send_export, ctx.client, actor, result.format, ctx)
        return result

    return ctx.outcome(work)


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
        client.files_upload_v2(
            channel=channel,
            filename=filename,
            content=content,
            title=filename,
            initial_comment="contract-bot export: every contract with its answers, milestones and determination.",
        )
    except Exception:  # noqa: BLE001
        error_id = error_reply(log)
        try:
            client.chat_postMessage(channel=user_id, text=f"The export failed. {error_id}")
        except Exception:  # noqa: BLE001
            log.exception("could not report a failed export")
