"""A bot process for crash and multi-process tests: `python -m tests.support.worker_process --db URL --api URL ...`.

It builds the real app with ``create_app`` (the given database, schema and Slack double URL), then starts what
`contract-bot serve` starts in the background: the outbox delivery loop and the APScheduler sweep job. Its
clock is business time that starts at ``--start`` and runs at real speed, so a restarted process can be told
to start later (past the leases a killed one held). It prints ``ready <worker>`` once running (with ``--serve``,
``ready <worker> <url>``) and stops cleanly on SIGTERM; tests also SIGKILL it.

With ``--serve`` it also serves the bot over HTTP, as `contract-bot serve` does: waitress on 127.0.0.1 on an
ephemeral port (tests.conftest.serve_bot), signing secret ``s``.

Its outbox paces itself to Slack's rate limits run ``--rate-scale`` times faster, by default as fast as the
``double`` fixture's Slack runs them (tests.conftest.SLACK_RATE_SCALE), so that the two agree.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta


class RunningClock:
    """Business time: ``start`` plus the real time elapsed since the process began."""

    def __init__(self, start: datetime) -> None:
        self._start = start.astimezone(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        """Aware UTC now on this clock."""
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


def main(argv: list[str] | None = None) -> int:
    """Run one bot process until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--schema")
    parser.add_argument("--api", required=True)
    parser.add_argument("--start", required=True, help="ISO instant the business clock starts at")
    parser.add_argument("--batch", type=int, default=100, help="reminders claimed per sweep transaction")
    parser.add_argument(
        "--serve", action="store_true", help="also serve the bot over HTTP (waitress, loopback)"
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=None,
        help="how much faster than Slack's the rate limits the outbox paces itself to are (default: the tests' Slack)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s worker %(process)d %(levelname)s %(name)s: %(message)s",
    )

    from bot.app import create_app
    from bot.config import Settings
    from storage.db import make_engine
    from tests.conftest import SLACK_RATE_SCALE, pg_audit_key_file

    # every process of a test seals the audit log with the same key (SQLite's is the file beside the database)
    keyed = {"audit_key_file": pg_audit_key_file()} if args.db.startswith("postgresql") else {}
    settings = Settings(
        **keyed,
        slack_bot_token="xoxb-test",
        slack_signing_secret="s",
        slack_api_url=args.api,
        database_url=args.db,
        review_channel="CREVIEW1",
        manager_channel="CMANAGER1",
        admin_user_ids=("UADMIN1",),
        bot_timezone="America/New_York",
        reminder_interval_seconds=1,
    )
    pacing = {}
    if "slack_rate_scale" in inspect.signature(create_app).parameters:  # a bot that paces its outbox
        pacing["slack_rate_scale"] = SLACK_RATE_SCALE if args.rate_scale is None else args.rate_scale
    bot = create_app(
        settings,
        engine=make_engine(args.db, schema=args.schema),
        clock=RunningClock(datetime.fromisoformat(args.start)),
        **pacing,
    )
    bot.sweeper.batch = args.batch
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bot.start_background(scheduler=True)
    url, stop_serving = None, None
    if args.serve:
        from tests.conftest import serve_bot

        url, stop_serving = serve_bot(bot)
    print(f"ready {bot.dispatcher.worker}" + (f" {url}" if url else ""), flush=True)
    stop.wait()
    if stop_serving is not None:
        stop_serving()
    bot.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
