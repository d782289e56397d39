"""Modals: the filing form (also from the "File as contract" shortcut) and the note form, and their listeners."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
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
from bot.domain.review import DuplicateFiling
from bot.domain.text import check_free_text, unescape_slack
from bot.services.channels import FilingRefused
from bot.services.deadline import NothingRecorded, OutcomeUnknown
from bot.services.reviews import Done
from bot.services.router import contract_fields
from handlers.blocks import esc
from handlers.context import HandlerContext, error_reply, log, private_reply
from handlers.ids import BlockId, CallbackId

# the filing check before a form opens leaves time for views.open within the trigger's 3 s (F1.19)
FORM_CHECK_SECONDS = 1.0

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
        if opt.key not in FIELD_LABELS:  # `anyway=`: the form asks on a second submit instead
            continue
        element: StaticSelectElement | PlainTextInputElement
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


def open_form(client: WebClient, trigger_id: object, view: dict) -> str | None:
    """Open a modal on a request's trigger, now, once: None when it opened, else what to tell the user.

    NOTE: a trigger lives 3 s and works once (F1.8), so this runs in the request itself, is never queued behind
    other work and never retried.
    """
    if not isinstance(trigger_id, str) or not trigger_id:
        return "This request carries no way to open a form; use `/contract file` with arguments instead."
    try:
        client.views_open(trigger_id=trigger_id, view=view)
        return None
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        log.warning("views.open failed: %s", error)
        if error in ("expired_trigger_id", "trigger_expired", "invalid_trigger_id", "exchanged_trigger_id"):
            return "Slack did not open the form in time. Please try again."
        return f"Slack did not open the form (`{esc(str(error))}`). Please try again, or tell an admin."
    except Exception:  # noqa: BLE001 - e.g. Slack does not answer within the trigger's life
        return error_reply(log)


def filing_refused(ctx: HandlerContext) -> str | None:
    """Why filing is refused now (no review channel, or the bot cannot post in it), checked before a form opens.

    A database read, not a Slack call. When the database is slow the form opens anyway: its submission checks again.
    """
    try:
        ctx.requests.run(ctx.channels.check_filing, deadline=FORM_CHECK_SECONDS)
    except (NothingRecorded, OutcomeUnknown):
        return None
    except DomainError as exc:
        return exc.user_text()
    return None


def register(app: App, ctx: HandlerContext) -> None:
    """Register the form (view submission) listeners and the filing shortcut."""

    @app.view(CallbackId.FILE_MODAL.value)
    def handle_file_modal_submission(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
        form = form_values(view)
        values, errors = validate_file_form(form, today=ctx.today())
        if errors:  # the form stays open with its errors; nothing to record
            context["outcome"] = "refused: input"
            ack(response_action="errors", errors=errors)
            return
        actor = (body.get("user") or {}).get("id") or ""

        def work() -> Done:
            # a form submitted twice (a double click, a retry) files once: the view's ID is the filing's source
            return ctx.service.file_contract(
                actor,
                contract_fields(values),
                source_key=f"view:{view.get('id')}",
                # a look-alike is warned about once; the same form submitted again files it
                confirm_key=f"look-alike-warned:view:{view.get('id')}",
            )

        try:
            done = ctx.run(work)
        except FilingRefused as exc:
            # the explanation goes on top of the form, which keeps what was typed for when it is fixed
            context["outcome"] = "refused: channel"
            ack(response_action="push", view=build_done_view(exc.user_text()))
            return
        except DuplicateFiling as exc:
            # NOTE: a form's error is plain text (no mentions): the reference and the day say which contract
            context["outcome"] = "refused: duplicate"
            like = exc.like
            warning = (
                f"This looks like {like.ref} (filed {like.filed_on.isoformat()}), still open. "
                "Submit again to file it anyway."
            )
            ack(response_action="errors", errors={BlockId.VENDOR.value: warning[:150]})
            return
        except DomainError as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            ack(response_action="errors", errors={BlockId.VENDOR.value: exc.message[:150]})
            return
        context["outcome"] = "done"
        ack(response_action="update", view=build_done_view(done.text))

    @app.view(CallbackId.NOTE_MODAL.value)
    def handle_note_modal_submission(ack: Ack, body: dict, view: dict, context: BoltContext) -> None:
        try:
            meta = NoteMetadata.load(view.get("private_metadata") or "")
            note = check_free_text(
                form_values(view).get(BlockId.NOTE.value) or "", field="note", max_len=args.LONG_TEXT_MAX
            )
        except InputError as exc:
            context["outcome"] = "refused: input"
            ack(response_action="errors", errors={BlockId.NOTE.value: exc.message[:150]})
            return
        actor = (body.get("user") or {}).get("id") or ""
        try:
            ctx.run(lambda: ctx.service.add_note(actor, meta.contract_id, meta.qid, note))
        except DomainError as exc:
            context["outcome"] = f"refused: {type(exc).__name__}"
            ack(response_action="errors", errors={BlockId.NOTE.value: exc.message[:150]})
            return
        context["outcome"] = "done"
        ack()  # closes the form

    @app.shortcut(CallbackId.FILE_SHORTCUT.value)
    def handle_file_shortcut(
        ack: Ack, shortcut: dict, client: WebClient, respond: Respond, context: BoltContext
    ) -> None:
        message = shortcut.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        prefill = prefill_from_message(text if isinstance(text, str) else "")
        refusal = filing_refused(ctx)
        if refusal is not None:  # no form: it could not be filed
            context["outcome"] = "refused: channel"
            ack()
            if shortcut.get("response_url"):
                ctx.after_answer(lambda: private_reply(respond, refusal))
            return
        problem = open_form(client, shortcut.get("trigger_id"), build_file_modal(prefill))
        context["outcome"] = "form opened" if problem is None else "form not opened"
        ack()
        if problem is not None and shortcut.get("response_url"):
            reply = problem + " You can also file with `/contract file`."
            ctx.after_answer(lambda: private_reply(respond, reply))


def prefill_from_message(text: str) -> dict[str, str]:
    """Filing fields from a message: its `key=value` pairs (as `/contract file` takes them) and the text as the scope."""
    raw = unescape_slack(text)  # NOTE: message text arrives with &, < and > escaped, as in slash commands
    prefill = {"scope": raw[: args.LONG_TEXT_MAX]}
    try:
        tokens = args.tokenize(raw)
    except InputError:
        return prefill
    keys = {opt.key for opt in args.COMMANDS["file"].options if opt.key in FIELD_LABELS}
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.lower() in keys and value.strip():
            # one-line fields get one line; only the scope keeps the message's line breaks
            prefill[key.lower()] = value.strip() if key.lower() == "scope" else " ".join(value.split())
    return prefill
