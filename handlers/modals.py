"""Modals: the filing form (also from the "File as contract" shortcut) and the note form, and their listeners."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from slack_bolt import App
from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import args
from bot.domain.errors import DomainError, InputError
from bot.domain.forms import validate_file_form
from bot.domain.text import check_free_text, unescape_slack
from bot.services.inbox import InboxItemGone
from bot.services.router import contract_fields
from handlers.context import HandlerContext, error_reply, log
from handlers.ids import BlockId, CallbackId
from handlers.routes import Routes

FIELD_LABELS = {
    "vendor": "Vendor",
    "product": "Product",
    "agency": "Agency",
    "component": "Component / office",
    "value": "Value (USD)",
    "awarded": "Award date (YYYY-MM-DD)",
    "term": "Term",
    "purpose": "Purpose",
    "third_party": "Operated by a third party?",
    "parent": "Ultimate owner",
    "contract_no": "Contract number",
    "scope": "Scope",
}


@dataclass(frozen=True)
class NoteMetadata:
    """State carried through the note modal's private_metadata."""

    contract_id: int
    qid: str

    def dump(self) -> str:
        """JSON for private_metadata."""
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, raw: str) -> NoteMetadata:
        """Parse private_metadata; raises InputError when it is not ours."""
        try:
            data = json.loads(raw)
            return cls(int(data["contract_id"]), str(data["qid"]))
        except (ValueError, KeyError, TypeError):
            raise InputError("This form is out of date; open it again from the question.") from None


def build_file_modal(prefill: dict[str, str] | None = None) -> dict:
    """The filing modal: required fields marked, the rest optional, prefilled from a message if given."""
    prefill = prefill or {}
    blocks = []
    for opt in args.COMMANDS["file"].options:
        label = FIELD_LABELS.get(opt.key, opt.key)
        if opt.kind in (args.Kind.CHOICE, args.Kind.YES_NO):
            choices = opt.choices or ("yes", "no")
            options = [Option(text=PlainTextObject(text=c), value=c) for c in choices]
            initial = next(
                (
                    o
                    for o, c in zip(options, choices, strict=True)
                    if c == (prefill.get(opt.key) or "").lower()
                ),
                None,
            )
            element = StaticSelectElement(
                action_id=opt.key,
                placeholder=PlainTextObject(text="Choose"),
                options=options,
                initial_option=initial,
            )
        else:
            multiline = opt.kind is args.Kind.LONG_TEXT
            element = PlainTextInputElement(
                action_id=opt.key,
                multiline=multiline,
                initial_value=(prefill.get(opt.key) or "")[: opt.max_len] or None,
                max_length=opt.max_len,
            )
        blocks.append(
            InputBlock(
                block_id=opt.key,
                label=PlainTextObject(text=label),
                element=element,
                optional=not opt.required,
                hint=PlainTextObject(text=opt.help[:150]),
            )
        )
    view = View(
        type="modal",
        callback_id=CallbackId.FILE_MODAL.value,
        title=PlainTextObject(text="File a contract"),
        submit=PlainTextObject(text="File"),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )
    return view.to_dict()


def build_note_modal(meta: NoteMetadata) -> dict:
    """A one-field modal to add a note (evidence link or reasoning) to a question."""
    view = View(
        type="modal",
        callback_id=CallbackId.NOTE_MODAL.value,
        title=PlainTextObject(text=f"Note on {meta.qid}"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=meta.dump(),
        blocks=[
            InputBlock(
                block_id=BlockId.NOTE.value,
                label=PlainTextObject(text="Evidence link or reasoning"),
                element=PlainTextInputElement(
                    action_id="note", multiline=True, max_length=args.LONG_TEXT_MAX
                ),
            )
        ],
    )
    return view.to_dict()


def build_done_view(text: str) -> dict:
    """A modal saying what happened (replaces the form after submitting)."""
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    view = View(
        type="modal",
        title=PlainTextObject(text="contract-bot"),
        close=PlainTextObject(text="Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=text[:2900], verbatim=True))],
    )
    return view.to_dict()


def form_values(view: dict) -> dict[str, str | None]:
    """The raw values of a submitted view, by block id."""
    out: dict[str, str | None] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        if not isinstance(actions, dict):
            continue
        for value in actions.values():
            if not isinstance(value, dict):
                continue
            if value.get("type") == "static_select" or "selected_option" in value:
                selected = value.get("selected_option") or {}
                out[block_id] = selected.get("value") if isinstance(selected, dict) else None
            else:
                raw = value.get("value")
                out[block_id] = raw if isinstance(raw, str) else None
    return out


def register(app: App, routes: Routes, ctx: HandlerContext) -> None:
    """Register modal and shortcut listeners."""

    def handle_file_modal_submission(ack, body, view, context):  # noqa: ANN001
        received = context.get("received_at", time.monotonic())
        form = form_values(view)
        _values, errors = validate_file_form(form, today=ctx.today())
        if errors:  # the form stays open with its errors; nothing to record
            ack(response_action="errors", errors=errors)
            return
        payload = {"user": (body.get("user") or {}).get("id", ""), "form": form, "view_id": view.get("id")}
        ctx.accept("file_modal", payload, received, ack, durable=True)

    def handle_note_modal_submission(ack, body, view, context):  # noqa: ANN001
        received = context.get("received_at", time.monotonic())
        try:
            meta = NoteMetadata.load(view.get("private_metadata") or "")
            note = check_free_text(
                form_values(view).get(BlockId.NOTE.value) or "", field="note", max_len=args.LONG_TEXT_MAX
            )
        except InputError as exc:
            ack(response_action="errors", errors={BlockId.NOTE.value: exc.message[:150]})
            return
        payload = {
            "user": (body.get("user") or {}).get("id", ""),
            "contract_id": meta.contract_id,
            "qid": meta.qid,
            "note": note,
        }
        ctx.accept("note_modal", payload, received, ack, durable=True)

    routes.views([CallbackId.FILE_MODAL.value], handle_file_modal_submission)
    routes.views([CallbackId.NOTE_MODAL.value], handle_note_modal_submission)

    @app.shortcut(CallbackId.FILE_SHORTCUT.value)
    def handle_file_shortcut(ack, shortcut, client, respond):  # noqa: ANN001
        ack()
        message = shortcut.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        prefill = prefill_from_message(text if isinstance(text, str) else "")

        def open_filing_form() -> None:
            try:
                client.views_open(trigger_id=shortcut.get("trigger_id"), view=build_file_modal(prefill))
            except Exception:  # noqa: BLE001 - e.g. an expired trigger: tell the user instead of going quiet
                error = error_reply(log)
                if shortcut.get("response_url"):
                    try:
                        respond(
                            response_type="ephemeral",
                            text=error + " You can also file with `/contract file`.",
                        )
                    except Exception:  # noqa: BLE001
                        log.exception("could not tell the user the form did not open")

        ctx.after_ack(open_filing_form)


def prefill_from_message(text: str) -> dict[str, str]:
    """Filing fields from a message: its `key=value` pairs (as `/contract file` takes them) and the text as the scope."""
    raw = unescape_slack(text)  # NOTE: message text arrives with &, < and > escaped, as in slash commands
    prefill = {"scope": raw[: args.LONG_TEXT_MAX]}
    try:
        tokens = args.tokenize(raw)
    except InputError:
        return prefill
    keys = {opt.key for opt in args.COMMANDS["file"].options}
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.lower() in keys and value.strip():
            # one-line fields get one line; only the scope keeps the message's line breaks
            prefill[key.lower()] = value.strip() if key.lower() == "scope" else " ".join(value.split())
    return prefill


def run_file_modal_job(ctx: HandlerContext, payload: dict) -> dict:
    """Carry out a filing form; returns the view response (the done view, or the form's errors)."""
    values, errors = validate_file_form(payload.get("form") or {}, today=ctx.today())
    if errors:
        return {"response_action": "errors", "errors": errors}
    try:
        done = ctx.service.file_contract(
            payload.get("user") or "", contract_fields(values), source_key=f"view:{payload.get('view_id')}"
        )
        return {"response_action": "update", "view": build_done_view(done.text)}
    except DomainError as exc:
        return {"response_action": "errors", "errors": {"vendor": exc.message[:150]}}
    except InboxItemGone:
        raise
    except Exception:  # noqa: BLE001
        return {"response_action": "update", "view": build_done_view(error_reply(log))}


def run_note_job(ctx: HandlerContext, payload: dict) -> dict:
    """Carry out a note form; {} closes the form, else the form's error."""
    reply = ctx.outcome(
        lambda: ctx.service.add_note(
            payload.get("user") or "",
            int(payload.get("contract_id") or 0),
            str(payload.get("qid") or ""),
            payload.get("note") or "",
        )
    )
    if reply["text"].startswith("Note added"):
        return {}
    return {"response_action": "errors", "errors": {BlockId.NOTE.value: reply["text"][:150]}}


def dm_filing_result(ctx: HandlerContext, payload: dict, result: dict) -> None:
    """The result of a filing that finished after its form closed, as a direct message."""
    from handlers.jobs import direct_message

    view = result.get("view") or {}
    text = ((view.get("blocks") or [{}])[0].get("text") or {}).get("text")
    if not text:
        text = "Your filing was not accepted: " + "; ".join(
            f"{k}: {v}" for k, v in (result.get("errors") or {}).items()
        )
    direct_message(ctx, payload, {"text": text})


def dm_note_error(ctx: HandlerContext, payload: dict, result: dict) -> None:
    """A note refused after its form closed, as a direct message."""
    from handlers.jobs import direct_message

    errors = result.get("errors") or {}
    if errors:
        direct_message(ctx, payload, {"text": "Your note was not added: " + "; ".join(errors.values())})
