"""Routes a parsed `/contract` command to the one service call that carries it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.domain.args import COMMANDS, ParsedCommand, help_text
from bot.services import annual_report, vendor_events
from bot.services.clocks import TimelineRequest
from bot.services.drafts import DraftService
from bot.services.reviews import ReviewService
from bot.services.vendors import VendorService

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


# commands that take `on=DATE` (the others are not asked for it)
DATED = frozenset(name for name, command in COMMANDS.items() if command.dated)


@dataclass(frozen=True)
class HelpReply:
    """Help text generated from the command table."""

    text: str


@dataclass(frozen=True)
class ExportRequest:
    """`admin export`: the handler uploads the file to the manager or admin who asked."""

    format: str


def contract_fields(args: dict) -> dict:
    """The filing fields of a parsed `file` command (or the modal), in the service's names."""
    fields = {k: args.get(k) for k in FILE_KEYS}
    fields["awarded_on"] = args.get("awarded")
    fields["ends_on"] = args.get("ends_on")
    return fields


def run_command(service: ReviewService, actor: str, cmd: ParsedCommand) -> object:
    """Carry out one parsed command; raises the domain errors of the service.

    Every value is read with the type the command table gives it (``ParsedCommand.get``/``require`` check the
    request against the table), so this routing cannot drift from what the parser produces."""
    on = cmd.get("on", date) if cmd.name in DATED else None
    match cmd.name:
        case "help":
            return HelpReply(help_text(cmd.get("subcommand", str)))
        case "file":
            return service.file_contract(
                actor, contract_fields(cmd.args), anyway=bool(cmd.get("anyway", bool))
            )
        # need-to-know (SPEC "Access"): every read names its reader
        case "show":
            return service.show(cmd.contract, reader=actor)
        case "list":
            return service.list_contracts(cmd.get("status", str), cmd.get("page", int) or 1, reader=actor)
        case "audit":
            return service.timeline(cmd.contract, cmd.get("page", int) or 1, reader=actor)
        case "timeline":
            # as `show`: need-to-know, and a restricted contract's read is audited; the picture follows the answer
            view = service.show(cmd.contract, reader=actor)
            return TimelineRequest(view.id, view.ref)
        case "restrict":
            return service.restrict(actor, cmd.contract, True)
        case "unrestrict":
            return service.restrict(actor, cmd.contract, False)
        case "assign":
            return service.assign(actor, cmd.contract, list(cmd.require("users", tuple)))
        case "answer":
            return service.answer(
                actor,
                cmd.contract,
                cmd.require("qid", str),
                cmd.require("answer", str),
                cmd.get("note", str),
            )
        case "stopwork":
            return service.stopwork(actor, cmd.contract, cmd.require("reason", str), on)
        case "resume":
            return service.resume(actor, cmd.contract, cmd.require("reason", str), on)
        case "stopwork-extend":
            return service.stopwork_extend(
                actor, cmd.contract, cmd.require("until", date), cmd.require("reason", str)
            )
        case "determine":
            return service.determine(
                actor, cmd.contract, cmd.require("outcome", str), cmd.require("reason", str), on
            )
        case "certify":
            return service.certify(actor, cmd.contract, cmd.require("official", str), on)
        case "notify":
            return service.notify(actor, cmd.contract, on)
        case "clear":
            return service.clear(actor, cmd.contract, on)
        case "waiver":
            return service.waiver(
                actor,
                cmd.contract,
                cmd.require("official", str),
                cmd.require("until", date),
                cmd.require("reason", str),
                on,
                circumstances=cmd.get("circumstances", str),
                alternatives=cmd.get("alternatives", str),
            )
        case "waiver-report":
            return service.waiver_report(actor, cmd.contract, on)
        case "revoke-waiver":
            return service.revoke_waiver(actor, cmd.contract, cmd.require("reason", str), on)
        case "close":
            return service.close(actor, cmd.contract, cmd.require("reason", str), on)
        case "reopen":
            return service.reopen(actor, cmd.contract, cmd.require("reason", str))
        case "redetermine":
            return service.redetermine(actor, cmd.contract, cmd.require("reason", str), on)
        case "draft":
            return DraftService(service).check_draft(actor, cmd.contract, cmd.require("kind", str))
        case "sent":
            return DraftService(service).sent(
                actor, cmd.contract, cmd.require("kind", str), cmd.get("reference", str), on
            )
        case "vendor show":
            return VendorService(service).show(actor, cmd.require("name", str))
        case "vendor event":
            return vendor_events.record_event(
                service,
                actor,
                cmd.require("name", str),
                cmd.require("kind", str),
                on,
                cmd.require("note", str),
                cmd.get("source", str),
            )
        case "vendor alias":
            return VendorService(service).alias(actor, cmd.require("name", str), cmd.require("alias", str))
        case "vendor affiliate":
            return VendorService(service).affiliate(
                actor, cmd.require("name", str), cmd.require("other", str), cmd.require("relation", str)
            )
        case "screen":
            return VendorService(service).screen(
                actor,
                cmd.contract,
                cmd.require("match", str),
                cmd.require("decision", str),
                cmd.require("reason", str),
            )
        case "admin grant":
            return service.grant(actor, cmd.require("user", str), cmd.require("role", str))
        case "admin revoke":
            return service.revoke(actor, cmd.require("user", str), cmd.require("role", str))
        case "admin roles":
            return service.list_roles(actor)
        case "admin set":
            value = cmd.require("value", object)
            shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
            return service.set_setting(actor, cmd.require("key", str), shown)
        case "admin settings":
            return service.list_settings(actor)
        case "admin export":
            service.check_exporter(actor, "admin export")  # managers and admins (SPEC "Access")
            return ExportRequest(cmd.get("format", str) or "csv")
        case "report":  # `report annual`: the only report there is
            # the year first (bad input changes nothing), then the role; check_exporter audits the report's reads
            asked = annual_report.resolve_year(service.session_factory, cmd.get("year", int), service.today())
            service.check_exporter(actor, "report annual")  # managers and admins (SPEC "Access")
            return asked
    raise AssertionError(f"unrouted command {cmd.name}")  # the parser only yields names in the table
