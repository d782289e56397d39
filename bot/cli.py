"""`contract-bot` command line: serve, console, demo, reminders due, audit (verify, checkpoints, rotate-key, new-key),
export, outbox dead/retry."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime

from bot.config import Settings, SettingsError
from bot.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contract-bot` command."""
    from dotenv import load_dotenv

    try:
        load_dotenv(dotenv_path=".env", override=False)
    except (OSError, UnicodeDecodeError) as exc:  # unreadable, or not text: one line, not a traceback
        print(f"contract-bot: cannot read the .env file in {os.getcwd()}: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="contract-bot", description="EO 14093 contract reviews in Slack.")
    parser.add_argument("--version", action="version", version=f"contract-bot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="connect to Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP on $PORT)")
    console = sub.add_parser("console", help="the whole bot in a terminal, no Slack workspace needed")
    console.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    sub.add_parser("demo", help="replay the ICE / Paragon timeline end to end and print the transcript")
    reminders = sub.add_parser("reminders", help="reminder tools")
    rsub = reminders.add_subparsers(dest="reminders_command", required=True)
    due = rsub.add_parser("due", help="list what the scheduler would send at a moment, without sending")
    due.add_argument("--at", help="ISO date-time (default now); a zone-less time is read in BOT_TIMEZONE")
    audit = sub.add_parser("audit", help="audit-log tools")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    verify = asub.add_parser(
        "verify", help="check the sealed audit log, its checkpoints and every contract against its trail"
    )
    where = verify.add_mutually_exclusive_group()
    where.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="a saved copy of the checkpoints (default: read them from Slack)",
    )
    where.add_argument(
        "--no-checkpoints", action="store_true", help="check the chain only (a truncation goes unnoticed)"
    )
    saved = asub.add_parser("checkpoints", help="save the checkpoints posted in Slack to a file (JSON lines)")
    saved.add_argument(
        "--out", required=True, metavar="FILE", help="the file to write ('-': standard output)"
    )
    rotate = asub.add_parser("rotate-key", help="seal the log's head with the current key and name a new one")
    rotate.add_argument("--new-key-file", required=True, metavar="FILE", help="the new key file to create")
    newkey = asub.add_parser(
        "new-key", help="create a key file for AUDIT_KEY_FILE (readable by its owner only)"
    )
    newkey.add_argument("--out", required=True, metavar="FILE", help="the key file to create")
    export = sub.add_parser("export", help="every contract with its answers, milestones and determination")
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("--out", help="file to write (default: standard output)")
    report = sub.add_parser("report", help="the order's reports, from the record")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    report_annual = report_sub.add_parser("annual", help="the §4(d) annual report")
    report_annual.add_argument(
        "--year", type=int, help="the year the report is due (default: the report due next), e.g. 2025"
    )
    report_annual.add_argument(
        "--format", choices=("md", "docx"), default="md", help="Markdown (default) or Word"
    )
    report_annual.add_argument("--out", help="file to write (default: standard output)")
    draft = sub.add_parser("draft", help="the draft of one of the order's notices, from the record")
    draft.add_argument("ref", metavar="CR-n", help="the contract, e.g. CR-1")
    draft.add_argument("kind", choices=("apnsa", "dni", "waiver", "redetermination", "excluded"))
    draft.add_argument("--format", choices=("md", "docx"), default="md", help="Markdown (default) or Word")
    draft.add_argument("--out", help="file to write (default: standard output)")
    lists = sub.add_parser("lists", help="screening lists: load a snapshot and screen every vendor")
    lsub = lists.add_subparsers(dest="lists_command", required=True)
    load = lsub.add_parser(
        "load", help="load the Consolidated Screening List (CSV or JSON) or OFAC's sdn.csv"
    )
    load.add_argument("list", choices=("csl", "sdn"))
    load.add_argument("file", help="the file as downloaded")
    load.add_argument("--alt", help="OFAC's alt.csv (the SDN aliases), with sdn")
    load.add_argument("--date", help="the day the list was published, YYYY-MM-DD (default today)")
    outbox = sub.add_parser("outbox", help="messages Slack refused for good, and sending them again")
    osub = outbox.add_subparsers(dest="outbox_command", required=True)
    osub.add_parser("dead", help="list the messages Slack refused for good, with the messages held with them")
    retry = osub.add_parser(
        "retry", help="send dead messages again once the cause is fixed (all, or the IDs given)"
    )
    retry.add_argument(
        "ids", nargs="*", type=_outbox_id, metavar="ID", help="outbox message IDs (default: every dead one)"
    )
    args = parser.parse_args(argv)
    # serve is watched by an operator; the other commands print their own results and only warn
    configure_logging(logging.INFO if args.command == "serve" else logging.WARNING)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from storage.audit import AuditKeyError
    from storage.db import DatabaseUnavailable, database_error, describe_url

    try:
        return _run(args, settings)
    except (DatabaseUnavailable, AuditKeyError) as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2
    except (
        CommandError
    ) as exc:  # Alembic, migrating on start: a revision it does not know (a newer contract-bot's)
        print(
            f"contract-bot: the database (DATABASE_URL={describe_url(settings.database_url)}) cannot be brought "
            f"up to date: {str(exc).splitlines()[0]}. Was it written by a newer contract-bot? Install that "
            "version, or restore a backup made before it",
            file=sys.stderr,
        )
        return 2
    except SQLAlchemyError as exc:
        # One line naming the database and what failed: an operator needs the cause, not 120 lines of traceback.
        console_url = getattr(args, "database", None) if args.command == "console" else None
        name = (
            f"--database {describe_url(console_url)}"
            if console_url
            else (f"DATABASE_URL={describe_url(settings.database_url)}")
        )
        hint = ""
        if (console_url or settings.database_url).startswith("sqlite"):
            hint = " (does its folder exist, and may this user write there?)"
        print(f"contract-bot: the database ({name}) failed: {database_error(exc)}{hint}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the command ``args`` names."""
    if args.command == "serve":
        from bot.serve import serve

        return serve(settings)
    if args.command == "console":
        from bot.console import run_console

        return run_console(settings, database=args.database)
    if args.command == "demo":
        from bot.console import run_demo

        return run_demo()
    if args.command == "reminders":
        return _reminders_due(settings, args.at)
    if args.command == "audit":
        return _audit(settings, args)
    if args.command == "export":
        return _export(settings, args.format, args.out)
    if args.command == "report":
        return _report_annual(settings, args.year, args.format, args.out)
    if args.command == "draft":
        return _draft(settings, args.ref, args.kind, args.format, args.out)
    if args.command == "lists":
        return _lists_load(settings, args)
    if args.command == "outbox":
        return _outbox(settings, args.outbox_command, args.ids if args.outbox_command == "retry" else [])
    return 2


def _version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contract-bot")
    except PackageNotFoundError:
        return "(not installed)"


def _offline(settings: Settings, *, writable: bool = False):  # noqa: ANN202
    """The bot's database as it is (never created or migrated), with a clock and calendar; DatabaseUnavailable."""
    from bot.clock import SystemClock
    from bot.domain.calendar import BusinessCalendar
    from storage.db import open_existing, session_factory

    engine = open_existing(settings.database_url, writable=writable)
    return engine, session_factory(engine), SystemClock(), BusinessCalendar(settings.bot_timezone)


def _reminders_due(settings: Settings, at: str | None) -> int:
    from bot.clock import SystemClock
    from bot.domain.calendar import BusinessCalendar
    from bot.services.reminders import ReminderSweeper
    from storage.db import describe_url, open_existing, session_factory

    clock, calendar = SystemClock(), BusinessCalendar(settings.bot_timezone)
    when = clock.now()
    if at:  # the argument first: a typo costs no database connection
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            print(
                f"contract-bot: --at must be an ISO date-time like 2026-11-30T09:00, got {at!r}",
                file=sys.stderr,
            )
            return 2
        if when.tzinfo is None:
            when = when.replace(tzinfo=calendar.zone)
        when = when.astimezone(UTC)
    # The preview runs the sweep's own code (which claims rows) in a transaction that is rolled back: the database
    # must be writable, but it is never created or migrated.
    engine = open_existing(settings.database_url, writable=True)
    try:
        result = ReminderSweeper(session_factory(engine), clock, calendar, settings).preview(when)
    finally:
        engine.dispose()
    print(f"contract-bot: read {describe_url(settings.database_url)}", file=sys.stderr)
    print(
        f"At {when.astimezone(calendar.zone):%Y-%m-%d %H:%M %Z}: {result.sent} reminder(s) would be sent "
        f"in {len(result.messages)} message(s); {result.skipped} due but no longer applicable."
    )
    for recipient, text in result.messages:
        print(f"\n-> {recipient}\n{text}")
    return 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """`contract-bot audit …`: verify, checkpoints, rotate-key, new-key."""
    from storage.audit import AuditKeyError

    try:
        if args.audit_command == "new-key":
            return _audit_new_key(args.out)
        if args.audit_command == "rotate-key":
            return _audit_rotate_key(settings, args.new_key_file)
        if args.audit_command == "checkpoints":
            return _audit_checkpoints(settings, args.out)
        return _audit_verify(settings, args.checkpoints, no_checkpoints=args.no_checkpoints)
    except AuditKeyError as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2


def _audit_new_key(out: str) -> int:
    from pathlib import Path

    from storage.audit import key_id, new_key, write_key_file

    key = new_key()
    try:
        write_key_file(Path(out), [key])
    except FileExistsError:
        print(f"contract-bot: {out} already exists: a key file is never replaced", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"contract-bot: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"created the audit key {key_id(key)} in {out} (mode 0600): set AUDIT_KEY_FILE={out}")
    return 0


def _checkpoint_channel(settings: Settings, factory) -> str | None:  # noqa: ANN001
    """AUDIT_CHANNEL, else the manager channel (`admin set`, then MANAGER_CHANNEL), as the bot posts them."""
    from storage import repositories as repo
    from storage.db import read_only

    if settings.audit_channel:
        return settings.audit_channel
    with read_only(factory) as s:
        return repo.get_settings(s).get("manager_channel") or settings.manager_channel


def _slack_checkpoints(settings: Settings, factory) -> tuple[list | None, str, str | None]:  # noqa: ANN001
    """(checkpoints, where from, problem): read from Slack with the bot's token."""
    from slack_sdk.errors import SlackApiError

    from bot.app import make_web_client
    from bot.services.seal import read_checkpoints

    channel = _checkpoint_channel(settings, factory)
    if not settings.slack_bot_token or not channel:
        missing = "SLACK_BOT_TOKEN" if not settings.slack_bot_token else "AUDIT_CHANNEL (or MANAGER_CHANNEL)"
        return (
            None,
            "",
            f"cannot read the checkpoints from Slack: {missing} is not set. Give --checkpoints FILE (a copy saved "
            "with `contract-bot audit checkpoints --out FILE`), or --no-checkpoints to check the chain only",
        )
    try:
        cps = read_checkpoints(make_web_client(settings, timeout=10), channel)
    except SlackApiError as exc:
        return (
            None,
            "",
            f"cannot read the checkpoints in channel {channel}: Slack said {exc.response.get('error')}",
        )
    except OSError as exc:
        return None, "", f"cannot reach Slack to read the checkpoints: {exc}"
    return cps, f"channel {channel}", None


def _audit_verify(settings: Settings, checkpoint_file: str | None, *, no_checkpoints: bool = False) -> int:
    from pathlib import Path

    from bot.services.seal import open_keys, read_checkpoint_file, snapshot, verify
    from storage.audit import AuditKeyError
    from storage.db import describe_url

    engine, factory, _, _ = _offline(settings)
    shown = describe_url(settings.database_url)
    try:
        try:
            keys = open_keys(settings, create=False)
        except AuditKeyError:
            with snapshot(factory) as s:
                from storage.audit import get_head

                if get_head(s)[0] == 0 and _count_entries(s) == 0:  # a database the bot never wrote to
                    print(f"audit log OK: 0 entries, nothing to verify (database {shown})")
                    return 0
            raise
        cps, source = None, "nowhere"
        if checkpoint_file:
            try:
                cps, source = read_checkpoint_file(Path(checkpoint_file)), checkpoint_file
            except (OSError, ValueError) as exc:
                print(f"contract-bot: cannot read the checkpoints: {exc}", file=sys.stderr)
                return 2
        elif not no_checkpoints:
            cps, source, problem = _slack_checkpoints(settings, factory)
            if problem:
                print(f"contract-bot: {problem}", file=sys.stderr)
                return 2
        with snapshot(factory) as s:
            verdict = verify(s, keys, cps, source=source)
    finally:
        engine.dispose()
    if verdict.ok:
        carried = f", {verdict.unsealed} carried over from before the key" if verdict.unsealed else ""
        against = (
            f"{verdict.checkpoints} checkpoints from {source} match"
            if cps is not None
            else "checkpoints NOT checked (--no-checkpoints): a truncated log or a restored old copy goes unnoticed"
        )
        print(
            f"audit log OK: {verdict.checked} entries, sealed chain intact{carried}; {against}; "
            f"{verdict.contracts} contracts match their audit trail (database {shown})"
        )
        return 0
    print(f"audit log {verdict.problems[0]} (database {shown}).", file=sys.stderr)
    for more in verdict.problems[1:6]:
        print(f"  also: {more}", file=sys.stderr)
    return 1


def _count_entries(s) -> int:  # noqa: ANN001
    from sqlalchemy import func, select

    from storage.models import AuditEntry

    return int(s.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def _audit_checkpoints(settings: Settings, out: str) -> int:
    from bot.services.seal import checkpoint_lines

    engine, factory, _, _ = _offline(settings)
    try:
        cps, source, problem = _slack_checkpoints(settings, factory)
    finally:
        engine.dispose()
    if problem or cps is None:
        print(f"contract-bot: {problem}", file=sys.stderr)
        return 2
    text = checkpoint_lines(cps)
    if out == "-":
        sys.stdout.write(text)
    else:
        try:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            print(f"contract-bot: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(f"saved {len(cps)} checkpoints from {source} to {out}", file=sys.stderr)
    return 0


def _audit_rotate_key(settings: Settings, new_file: str) -> int:
    import json
    from pathlib import Path

    from bot.services.seal import open_keys
    from storage import audit
    from storage.db import describe_url, unit_of_work

    old = open_keys(settings, create=False)
    new = audit.new_key()
    path = Path(new_file)
    try:  # the new file first: a rotation entry must never name a key that nobody holds
        audit.write_key_file(path, [new, *old.all])
    except FileExistsError:
        print(f"contract-bot: {new_file} already exists: a key file is never replaced", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"contract-bot: cannot write {new_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    engine, factory, clock, _ = _offline(settings, writable=True)
    try:
        audit.seal_engine(engine, audit.Sealer(old))  # the rotation entry is sealed with the old key
        with unit_of_work(factory) as s:
            entry = audit.record_audit(
                s,
                at=clock.now(),
                actor="contract-bot audit rotate-key",
                action=audit.ROTATE_ACTION,
                detail=json.dumps({"old_key": audit.key_id(old.current), "new_key": audit.key_id(new)}),
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        engine.dispose()
    print(
        f"rotated the audit key at entry #{entry.seq} (database {describe_url(settings.database_url)}): sealed with "
        f"the old key {audit.key_id(old.current)}, naming the new key {audit.key_id(new)}. {new_file} holds the new "
        "key first and the old ones after it (to verify the entries they sealed). Set AUDIT_KEY_FILE="
        f"{new_file} and start the bot; every copy must use it from now on."
    )
    return 0


def _export(settings: Settings, fmt: str, out: str | None) -> int:
    from bot.services.exports import SlackNames, build_export
    from storage.db import describe_url

    engine, factory, clock, calendar = _offline(settings)
    client = None
    if settings.slack_bot_token:  # names from Slack; offline, people are shown by their Slack user IDs
        from bot.app import make_web_client

        client = make_web_client(settings, retries=False, timeout=5)
    names = SlackNames(client)
    try:
        _, content = build_export(factory, clock, calendar, fmt, names=names, banner=settings.cui_banner)
    finally:
        engine.dispose()
    if names.unresolved:
        why = "Slack did not give their names" if client else "set SLACK_BOT_TOKEN to export their names"
        print(
            f"contract-bot: {len(names.unresolved)} people are shown by their Slack user IDs ({why})",
            file=sys.stderr,
        )
    source = f"from {describe_url(settings.database_url)}"
    if out:
        try:
            with open(out, "wb") as fh:
                fh.write(content)
        except OSError as exc:
            print(
                f"contract-bot: cannot write {out}: {exc.strerror or exc}; nothing was exported",
                file=sys.stderr,
            )
            return 2
        print(f"wrote {out} {source}", file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(content)  # the bytes as built (a CSV's BOM included), whatever the locale
        sys.stdout.flush()
        print(f"exported {source}", file=sys.stderr)
    return 0


def _draft(settings: Settings, ref: str, kind: str, fmt: str, out: str | None) -> int:
    """`contract-bot draft CR-n KIND`: read-only (nothing is recorded; `sent` needs a draft made with `/contract`)."""
    import re

    from bot.domain.errors import DomainError
    from bot.services.documents import build_draft
    from storage import repositories as repo
    from storage.db import describe_url, read_only

    match = re.fullmatch(r"(?:CR-)?(\d{1,9})", ref.strip(), re.IGNORECASE)
    if not match:
        print(f"contract-bot: {ref!r} is not a contract reference such as CR-1", file=sys.stderr)
        return 2
    engine, factory, clock, calendar = _offline(settings)
    try:
        with read_only(factory) as s:
            c = repo.get_contract(s, int(match.group(1)))
            if c is None:
                print(
                    f"contract-bot: there is no CR-{int(match.group(1))} in {describe_url(settings.database_url)}",
                    file=sys.stderr,
                )
                return 1
            today = calendar.local_date(clock.now())
            try:
                drafted = build_draft(
                    s,
                    c,
                    kind,
                    today=today,
                    zone=calendar.zone,
                    banner=settings.cui_banner,
                    picture=fmt == "docx",
                )
            except DomainError as exc:
                print(f"contract-bot: {exc.message}", file=sys.stderr)
                return 1
    finally:
        engine.dispose()
    content = drafted.docx if fmt == "docx" else drafted.markdown.encode("utf-8")
    source = f"from {describe_url(settings.database_url)}" + (
        f" (sha256 {drafted.sha256})" if fmt == "docx" else ""
    )
    return _deliver(content, out, wrote=f"wrote {out} {source}", printed=f"drafted {source}")


# ---- lists load ------------------------------------------------------------------------------------------------


def _lists_load(settings: Settings, args: argparse.Namespace) -> int:
    """`contract-bot lists load csl|sdn FILE [--alt FILE] [--date]`: a snapshot stored, every vendor screened."""
    from datetime import date as date_type

    from bot.domain.lists import ListFormatError
    from bot.services.seal import open_keys
    from bot.services.vendor_events import on_list_event
    from bot.services.vendors import LIST_TITLES, load_list
    from storage import audit
    from storage.db import describe_url

    try:
        data = open(args.file, "rb").read()
        alt = open(args.alt, "rb").read() if args.alt else None
    except OSError as exc:
        print(f"contract-bot: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    engine, factory, clock, calendar = _offline(settings, writable=True)
    today = calendar.local_date(clock.now())
    try:
        on = date_type.fromisoformat(args.date) if args.date else None
    except ValueError:
        print(f"contract-bot: --date {args.date!r} is not a date such as 2026-12-01", file=sys.stderr)
        return 2
    if on is not None and on > today:
        print(
            f"contract-bot: --date {on.isoformat()} is in the future (today is {today.isoformat()})",
            file=sys.stderr,
        )
        return 2
    try:
        audit.seal_engine(engine, audit.Sealer(open_keys(settings, create=False)))
        result = load_list(
            factory,
            clock,
            args.list,
            data,
            alt=alt,
            on_date=on,
            today=today,
            manager_channel=settings.manager_channel,
            on_event=on_list_event,  # each difference touching a vendor opens its §2(j) reviews
        )
    except ListFormatError as exc:
        print(f"contract-bot: {args.file}: {exc}; nothing was stored", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    title = LIST_TITLES[args.list]
    if result.already:
        print(
            f"{args.file} is already loaded: the {title} of {result.on_date.isoformat()} (SHA-256 {result.sha256})"
        )
        return 0
    print(
        f"loaded the {title} of {result.on_date.isoformat()} into {describe_url(settings.database_url)}: "
        f"{result.entries} entries, SHA-256 {result.sha256}; {result.opened} possible matches opened for a manager"
        + (
            f"; since the last snapshot {result.added} added and {result.removed} removed, "
            f"{result.events} vendor events"
            if result.snapshot_id and (result.added or result.removed or result.events)
            else ""
        )
    )
    return 0


# ---- outbox dead / retry ---------------------------------------------------------------------------------------


def _report_annual(settings: Settings, year: int | None, fmt: str, out: str | None) -> int:
    """`contract-bot report annual`: the §4(d) report from the bot's database, read only."""
    from bot.domain.errors import DomainError
    from bot.services.annual_report import build_annual_report
    from storage.db import describe_url

    engine, factory, clock, calendar = _offline(settings)
    try:
        filename, content, report = build_annual_report(
            factory,
            today=calendar.local_date(clock.now()),
            zone=calendar.zone,
            banner=settings.cui_banner,
            year=year,
            fmt=fmt,
        )
    except DomainError as exc:
        print(f"contract-bot: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    source = (
        f"the §4(d) report for {report.start.isoformat()} to {report.end.isoformat()} "
        f"from {describe_url(settings.database_url)}" + (" (no data for this year)" if report.empty else "")
    )
    return _deliver(content, out, wrote=f"wrote {out}: {source}", printed=f"{filename}: {source}")


def _deliver(content: bytes, out: str | None, *, wrote: str, printed: str) -> int:
    """Write a document to ``out`` (or standard output) and say so on standard error; exit code 2 if it cannot."""
    if out:
        try:
            with open(out, "wb") as fh:
                fh.write(content)
        except OSError as exc:
            print(f"contract-bot: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(wrote, file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        print(printed, file=sys.stderr)
    return 0


def _outbox_id(value: str) -> int:
    """An outbox message ID as typed: 12 or #12."""
    text = value.strip().lstrip("#")
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"an outbox message ID is a positive number like 12, got {value!r}")
    return int(text)


def _outbox(settings: Settings, command: str, ids: list[int]) -> int:
    from storage.db import describe_url, open_existing, session_factory, unit_of_work

    # `dead` only reads; `retry` writes rows back to pending. Neither creates nor migrates anything.
    engine = open_existing(settings.database_url, writable=command == "retry")
    print(f"contract-bot: database {describe_url(settings.database_url)}", file=sys.stderr)
    try:
        factory = session_factory(engine)
        with unit_of_work(factory) as s:
            if command == "dead":
                return _outbox_dead(s, settings)
            return _outbox_retry(s, ids)
    finally:
        engine.dispose()


def _outbox_dead(s, settings: Settings) -> int:  # noqa: ANN001
    from zoneinfo import ZoneInfo

    from bot.services.outbox import describe
    from storage import outbox as queue

    dead = queue.list_dead(s)
    if not dead:
        print("No dead messages: everything queued was sent, or is still on its way.")
        return 0
    zone = ZoneInfo(settings.bot_timezone)
    held = sum(len(d) for _, d in dead)
    print(f"{len(dead)} dead message(s), and {held} held with them, not sent:")
    for root, dependants in dead:
        queued = root.created_at.astimezone(zone)
        print(f"\n#{root.id}  queued {queued:%Y-%m-%d %H:%M %Z}  {describe(root, mrkdwn=False)}")
        print(f"    error: {root.last_error or 'unknown'} (after {root.attempts} attempt(s))")
        if root.depends_on is not None:
            print(f"    it died with #{root.depends_on}, which has been retried since")
        if dependants:
            listed = ", ".join(f"#{d.id}" for d in dependants[:20])
            more = f" and {len(dependants) - 20} more" if len(dependants) > 20 else ""
            print(f"    held with it ({len(dependants)}): {listed}{more}")
    print("\nOnce the cause is fixed, `contract-bot outbox retry` sends them all (or `outbox retry ID …`).")
    return 0


def _outbox_retry(s, ids: list[int]) -> int:  # noqa: ANN001
    from datetime import UTC, datetime

    from bot.services.outbox import describe
    from storage import outbox as queue
    from storage.models import OutboxMessage

    now = datetime.now(UTC)
    if not ids:
        roots = [root for root, _ in queue.list_dead(s)]
    else:
        roots, problems = [], []
        for wanted in dict.fromkeys(ids):
            row = s.get(OutboxMessage, wanted)
            if row is None:
                problems.append(f"#{wanted} is not an outbox message")
            elif row.status != "dead":
                problems.append(f"#{wanted} is not dead (it is {row.status})")
            else:
                root = s.get(OutboxMessage, row.depends_on) if row.depends_on is not None else row
                if root is None or root.status != "dead":
                    root = row  # its root was retried since: this one goes on its own
                elif root is not row:
                    print(f"#{wanted} is held with #{root.id}: retrying #{root.id} and what is held with it")
                if root not in roots:
                    roots.append(root)
        if problems:
            print("contract-bot: nothing was retried: " + "; ".join(problems) + ".", file=sys.stderr)
            return 1
    if not roots:
        print("No dead messages to retry.")
        return 0
    root_ids = [r.id for r in roots if r.id is not None]
    dependants = queue.dependants_of(s, root_ids)
    by_root: dict[int | None, list[OutboxMessage]] = {}
    for d in dependants:
        by_root.setdefault(d.depends_on, []).append(d)
    revived = queue.revive(s, [*root_ids, *[d.id for d in dependants if d.id is not None]], at=now)
    for root in roots:
        held = by_root.get(root.id, [])
        extra = (
            f", with {len(held)} held with it ({', '.join(f'#{d.id}' for d in held[:20])})" if held else ""
        )
        print(f"#{root.id} {describe(root, mrkdwn=False)}: pending again{extra}")
    print(
        f"{len(revived)} message(s) are pending again; a running bot sends them within seconds, in order "
        "(`contract-bot outbox dead` shows any that Slack refuses again)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
