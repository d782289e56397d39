"""`contract-bot` command line: serve, console, demo, reminders due, audit verify, export, outbox dead/retry."""

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
    if args.command == "outbox":
        return _outbox(settings, args.outbox_command, args.ids if args.outbox_command == "retry" else [])
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


# ---- outbox dead / retry ---------------------------------------------------------------------------------------


def _outbox_id(value: str) -> int:
    """An outbox message ID as typed: 12 or #12."""
    text = value.strip().lstrip("#")
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"an outbox message ID is a positive number like 12, got {value!r}")
    return int(text)


def _existing_database(settings: Settings):  # noqa: ANN202
    """The bot's database as it is, never created or migrated: (engine, None), or (None, why it cannot be used)."""
    import os

    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from storage.db import MIGRATIONS_DIR, make_engine

    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        shown = settings.database_url  # a file name: no password, and shown as typed
        path = url.database
        if not path or path == ":memory:" or "mode=memory" in str(url):
            return None, f"DATABASE_URL ({shown}) is an in-memory database: it holds no outbox"
        if not os.path.isfile(path):
            return None, (
                f"no database at {os.path.abspath(path)} (DATABASE_URL={shown}); nothing was created. "
                "Point DATABASE_URL at the bot's database."
            )
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                engine.dispose()
                return (
                    None,
                    f"the database at {shown} has no contract-bot tables (has the bot ever run on it?)",
                )
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except Exception as exc:  # noqa: BLE001 - a database that cannot be opened is reported, not raised
        engine.dispose()
        return None, f"cannot open the database at {shown}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    config = _alembic_config(MIGRATIONS_DIR)
    head = ScriptDirectory.from_config(config).get_current_head()
    if version != head:
        engine.dispose()
        return None, (
            f"the database at {shown} is at schema revision {version}, this contract-bot needs {head}: "
            "start the bot (contract-bot serve) once to migrate it, then run this again"
        )
    return engine, None


def _alembic_config(directory):  # noqa: ANN001, ANN202
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(directory))
    return config


def _outbox(settings: Settings, command: str, ids: list[int]) -> int:
    from storage.db import session_factory, unit_of_work

    engine, problem = _existing_database(settings)
    if engine is None:
        print(f"contract-bot: {problem}", file=sys.stderr)
        return 2
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
