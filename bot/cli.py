"""`contract-bot` command line: serve, console, demo, reminders due, audit verify, export."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from bot.config import Settings, SettingsError
from bot.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `contract-bot` command."""
    from dotenv import load_dotenv

    load_dotenv(dotenv_path=".env", override=False)
    parser = argparse.ArgumentParser(prog="contract-bot", description="EO 14093 contract reviews in Slack.")
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
    asub.add_parser("verify", help="check the audit log's hash chain")
    export = sub.add_parser("export", help="every contract with its answers, milestones and determination")
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("--out", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    # serve is watched by an operator; the other commands print their own results and only warn
    configure_logging(logging.INFO if args.command == "serve" else logging.WARNING)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"contract-bot: {exc}", file=sys.stderr)
        return 2
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
        return _audit_verify(settings)
    if args.command == "export":
        return _export(settings, args.format, args.out)
    return 2


def _offline(settings: Settings):  # noqa: ANN202
    from bot.clock import SystemClock
    from bot.domain.calendar import BusinessCalendar
    from storage.db import make_engine, migrate, session_factory

    engine = make_engine(settings.database_url)
    migrate(engine)
    return session_factory(engine), SystemClock(), BusinessCalendar(settings.bot_timezone)


def _reminders_due(settings: Settings, at: str | None) -> int:
    from bot.services.reminders import ReminderSweeper

    factory, clock, calendar = _offline(settings)
    when = clock.now()
    if at:
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
    result = ReminderSweeper(factory, clock, calendar, settings).preview(when)
    print(
        f"At {when.astimezone(calendar.zone):%Y-%m-%d %H:%M %Z}: {result.sent} reminder(s) would be sent "
        f"in {len(result.messages)} message(s); {result.skipped} due but no longer applicable."
    )
    for recipient, text in result.messages:
        print(f"\n-> {recipient}\n{text}")
    return 0


def _audit_verify(settings: Settings) -> int:
    from storage import repositories as repo
    from storage.db import read_only

    factory, _, _ = _offline(settings)
    with read_only(factory) as s:
        checked, broken, why = repo.verify_audit_chain(s)
    if broken is None and why is None:
        print(f"audit log OK: {checked} entries, hash chain intact")
        return 0
    where = (
        f"entry #{broken.seq} (id {broken.id}, {broken.action} by {broken.actor} at {broken.at.isoformat()})"
        if broken
        else "the end of the log"
    )
    print(f"audit log BROKEN at {where}: {why}. {checked} entries before it verified.", file=sys.stderr)
    return 1


def _export(settings: Settings, fmt: str, out: str | None) -> int:
    from bot.services.exports import build_export

    factory, clock, calendar = _offline(settings)
    _, content = build_export(factory, clock, calendar, fmt)
    if out:
        with open(out, "wb") as fh:
            fh.write(content)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(content.decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
