"""Routes a parsed `/contract` command to the one service call that carries it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.args import ParsedCommand, help_text
from bot.services.reviews import ReviewService

FILE_KEYS = (
    "vendor",
    "product",
    "agency",
    "component",
    "value_cents",
    "term",
    "purpose",
    "third_party",
    "parent",
    "contract_no",
    "scope",
)


@dataclass(frozen=True)
class HelpReply:
    """Help text generated from the command table."""

    text: str


@dataclass(frozen=True)
class ExportRequest:
    """`admin export`: the handler uploads the file to the admin."""

    format: str


def contract_fields(args: dict) -> dict:
    """The filing fields of a parsed `file` command (or the modal), in the service's names."""
    fields = {k: args.get(k) for k in FILE_KEYS}
    fields["awarded_on"] = args.get("awarded")
    return fields


def run_command(service: ReviewService, actor: str, cmd: ParsedCommand) -> object:
    """Carry out one parsed command; raises the domain errors of the service."""
    # each value has the type the command table gives its argument (the parser checked it), which a single
    # dict type cannot say per key
    a: dict[str, Any] = cmd.args
    ref, on = cmd.ref, a.get("on")
    match cmd.name:
        case "help":
            return HelpReply(help_text(a.get("subcommand")))
        case "file":
            return service.file_contract(actor, contract_fields(a), anyway=bool(a.get("anyway")))
        case "show":
            return service.show(ref)
        case "list":
            return service.list_contracts(a.get("status"), a.get("page") or 1)
        case "audit":
            return service.timeline(ref, a.get("page") or 1)
        case "assign":
            return service.assign(actor, ref, a["users"])
        case "answer":
            return service.answer(actor, ref, a["qid"], a["answer"], a.get("note"))
        case "stopwork":
            return service.stopwork(actor, ref, a["reason"], on)
        case "resume":
            return service.resume(actor, ref, a["reason"], on)
        case "determine":
            return service.determine(actor, ref, a["outcome"], a["reason"], on)
        case "certify":
            return service.certify(actor, ref, a["official"], on)
        case "notify":
            return service.notify(actor, ref, on)
        case "clear":
            return service.clear(actor, ref, on)
        case "waiver":
            return service.waiver(actor, ref, a["official"], a["until"], a["reason"], on)
        case "waiver-report":
            return service.waiver_report(actor, ref, on)
        case "revoke-waiver":
            return service.revoke_waiver(actor, ref, a["reason"], on)
        case "close":
            return service.close(actor, ref, a["reason"], on)
        case "reopen":
            return service.reopen(actor, ref, a["reason"])
        case "redetermine":
            return service.redetermine(actor, ref, a["reason"], on)
        case "admin grant":
            return service.grant(actor, a["user"], a["role"])
        case "admin revoke":
            return service.revoke(actor, a["user"], a["role"])
        case "admin roles":
            return service.list_roles(actor)
        case "admin set":
            value = a["value"]
            text = ("on" if value else "off") if isinstance(value, bool) else str(value)
            return service.set_setting(actor, a["key"], text)
        case "admin settings":
            return service.list_settings(actor)
        case "admin export":
            service.check_admin(actor, "admin export")
            return ExportRequest(a.get("format") or "csv")
    raise AssertionError(f"unrouted command {cmd.name}")  # the parser only yields names in the table
