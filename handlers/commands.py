"""The `/contract` slash command listener."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.domain.args import COMMANDS, GROUPS, Command, parse_command
from bot.domain.errors import DomainError, InputError
from bot.domain.review import DuplicateFiling
from bot.domain.text import unescape_slack
from bot.services.annual_report import AnnualReportRequest, annual_report_files
from bot.services.channels import CHANNEL_KEYS, FilingRefused, check_under_way
from bot.services.clocks import TimelineRequest, timeline_png
from bot.services.drafts import DraftRequest, DraftService
from bot.services.reviews import Done
from bot.services.router import ExportRequest, run_command
from handlers.context import HandlerContext, error_reply, log
from handlers.ids import ActionId
from handlers.modals import build_file_modal, filing_refused, open_form

READ_ONLY = frozenset({"show", "list", "audit", "timeline", "help", "vendor show"})
_REF = re.compile(r"^CR-(\d{1,9})$", re.IGNORECASE)


def register(app: App, ctx: HandlerContext) -> None:
    """Register the command listener."""

    @app.command("/contract")
    def handle_contract_command(
        ack: Ack, command: dict, respond: Respond, client: WebClient, context: BoltContext
    ) -> None:
        actor = command.get("user_id") or ""
        text = command.get("text") or ""
        known = subcommand_of(text)
        if known is not None and known.name == "file" and len(text.split()) == 1:
            # a bare `/contract file` opens the form now, while its trigger is fresh, unless filing is refused
            refusal = filing_refused(ctx)
            if refusal is not None:
                context["outcome"] = "refused: channel"
                ack(response_type="ephemeral", text=refusal)
                return
            problem = open_form(client, command.get("trigger_id"), build_file_modal())
            context["outcome"] = "form opened" if problem is None else "form not opened"
            ack(response_type="ephemeral", text=problem) if problem else ack()
            return
        reply = carry_out_command(ctx, actor, text, context)
        ack(response_type="ephemeral", **reply)


def carry_out_command(ctx: HandlerContext, actor: str, text: str, context: BoltContext) -> dict[str, Any]:
    """Carry out a `/contract` command within the deadline; returns the private reply."""
    try:
        # NOTE: Slack sends &, < and > typed by the user as &amp; &lt; &gt;; mentions arrive as real <@U…>.
        parsed = parse_command(unescape_slack(text), today=ctx.today())
    except InputError as exc:
        attempted, contract_id = attempted_action(text)
        context["outcome"] = "refused: input"
        if attempted is None or not actor:
            return {"text": exc.user_text()}

        def refuse(error: InputError = exc) -> object:
            # an attempt at a known action is audited as refused (a missing role first)
            raise ctx.service.refuse_input(actor, attempted.name, attempted.role, contract_id, error)

        return ctx.reply(refuse)

    def work() -> object:
        return run_command(ctx.service, actor, parsed)

    try:
        result = ctx.run(work)
    except FilingRefused as exc:
        context["outcome"] = "refused: channel"
        return {"text": exc.user_text()}
    except DuplicateFiling as exc:
        context["outcome"] = "refused: duplicate"
        return build_duplicate_reply(exc, text)
    except DomainError as exc:
        context["outcome"] = f"refused: {type(exc).__name__}"
        return {"text": exc.user_text()}
    context["outcome"] = "done"
    if isinstance(result, ExportRequest):
        export_format = result.format
        ctx.after_answer(lambda: send_export(ctx, actor, export_format))
    if isinstance(result, DraftRequest):
        asked = result
        ctx.after_answer(lambda: send_draft(ctx, actor, asked))
    if isinstance(result, TimelineRequest | AnnualReportRequest):
        paperwork = result
        ctx.after_answer(lambda: send_paperwork(ctx, actor, paperwork))
    reply = ctx.render(result)
    if (
        parsed.name == "admin set"
        and (key := parsed.get("key", str)) in CHANNEL_KEYS
        and isinstance(value := parsed.get("value", object), str)
        and isinstance(result, Done)
    ):
        # NOTE: conversations.info is a Slack call: it follows the answer, and the admins hear of a wrong channel
        def check() -> None:
            ctx.channels.check([key], announce=True)

        ctx.after_answer(check)
        reply["text"] = f"{reply['text']} {check_under_way(value, bot_name=ctx.channels.bot_name)}"
    return reply


# a button's value holds 2,000 characters: a longer command is confirmed with `anyway=yes` only
BUTTON_VALUE_MAX = 2000


def build_duplicate_reply(exc: DuplicateFiling, text: str) -> dict[str, Any]:
    """The look-alike warning with a "File anyway" button that files the same command once (its nonce is the
    filing's source key, so a double click files one contract)."""
    value = json.dumps({"text": text, "nonce": uuid.uuid4().hex})
    if len(value) > BUTTON_VALUE_MAX:
        return {"text": exc.user_text()}
    message = exc.message.replace(
        "to file it anyway, repeat the command with `anyway=yes`.",
        "to file it anyway, press *File anyway* (or repeat the command with `anyway=yes`).",
    )
    return {
        "text": message,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": message, "verbatim": True}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "File anyway"},
                        "action_id": ActionId.FILE_ANYWAY.value,
                        "value": value,
                    }
                ],
            },
        ],
    }


def subcommand_of(text: str) -> Command | None:
    """The subcommand a `/contract` text names (its first word, or the first two after `admin`, `vendor`), if any."""
    words = unescape_slack(text).split()[:2]
    if not words:
        return None
    name = words[0].lower()
    if name in GROUPS and len(words) > 1:
        name = f"{name} {words[1].lower()}"
    return COMMANDS.get(name)


def attempted_action(text: str) -> tuple[Command | None, int | None]:
    """The action a malformed command text attempts, and the contract it names, when recognisable."""
    words = unescape_slack(text).split()[:3]
    if not words:
        return None, None
    name, rest = words[0].lower(), words[1:]
    if name in GROUPS and rest:
        name, rest = f"{name} {rest[0].lower()}", rest[1:]
    command = COMMANDS.get(name)
    if command is None or command.name in READ_ONLY:
        return None, None
    match = _REF.match(rest[0]) if rest else None
    return command, int(match.group(1)) if match else None


def send_export(ctx: HandlerContext, user_id: str, fmt: str) -> None:
    """Build the export and upload it to the admin's direct messages (after the answer)."""
    client = ctx.client
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


def send_draft(ctx: HandlerContext, user_id: str, asked: DraftRequest) -> None:
    """Build a drafted notice and send it to the person's direct messages (after the answer): the Word file, and
    the same as Markdown (Slack previews it; the console prints it)."""
    client = ctx.client
    try:
        drafted = DraftService(ctx.service, names=ctx.names).draft(user_id, asked.contract_id, asked.kind)
    except DomainError as exc:  # the record changed since the request was checked
        client.chat_postMessage(channel=user_id, text=f"The draft was not made: {exc.user_text()}")
        return
    draft = drafted.draft
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            channel=channel,
            file_uploads=[
                {"filename": draft.filename, "content": draft.docx, "title": draft.filename},
                {
                    "filename": f"{draft.document.filename_stem}.md",
                    "content": draft.markdown.encode("utf-8"),
                    "title": f"{draft.document.filename_stem}.md",
                },
            ],
            initial_comment=drafted.comment,
        )
    except Exception:  # noqa: BLE001
        error_id = error_reply(log)
        try:
            client.chat_postMessage(channel=user_id, text=f"The draft could not be sent. {error_id}")
        except Exception:  # noqa: BLE001
            log.exception("could not report a failed draft")


def send_paperwork(ctx: HandlerContext, user_id: str, asked: TimelineRequest | AnnualReportRequest) -> None:
    """Build the timeline picture or the annual report and upload it to the person's direct messages (after the
    answer, as send_export)."""
    client = ctx.client
    service = ctx.service
    try:
        if isinstance(asked, TimelineRequest):
            filename = f"{asked.ref}-timeline.png"
            content = timeline_png(
                service.session_factory,
                asked.contract_id,
                today=ctx.today(),
                zone=service.calendar.zone,
                banner=service.settings.cui_banner,
            )
            comment = f"{asked.ref}: the order's clocks as of {ctx.today().isoformat()}."
            uploads = [{"filename": filename, "content": content, "title": filename}]
        else:
            report, files = annual_report_files(
                service.session_factory,
                today=ctx.today(),
                zone=service.calendar.zone,
                banner=service.settings.cui_banner,
                year=asked.year,
            )
            uploads = [{"filename": name, "content": data, "title": name} for name, data in files]
            comment = (
                f"The §4(d) annual report for {report.start.isoformat()} to {report.end.isoformat()} (a draft to "
                "review), in Word and in Markdown: "
                + (
                    "no data for this year."
                    if report.empty
                    else f"{len(report.uses)} current use(s), {len(report.ended)} ended, "
                    f"{len(report.purchases)} purchase(s)."
                )
            )
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(channel=channel, file_uploads=uploads, initial_comment=comment)
    except Exception:  # noqa: BLE001
        error_id = error_reply(log)
        try:
            client.chat_postMessage(channel=user_id, text=f"The file could not be made or sent. {error_id}")
        except Exception:  # noqa: BLE001
            log.exception("could not report a failed upload")
