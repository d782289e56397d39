"""Time and peak memory of one draft (`/contract draft CR-1 apnsa`): the ICE / Paragon record of `contract-bot demo`,
drafted as the Word file (with the clocks picture) and Markdown, on SQLite. Target: under 1 s.

The first draft of a process also loads python-docx and matplotlib (shown apart: "cold"); the bot answers the
command first and builds the file after the answer, so neither counts against Slack's 3 s.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import tracemalloc

from _common import machine, peak_rss_mb  # noqa: E402


def main() -> int:
    """Replay the demo, then draft CR-1 (apnsa) ``--repeat`` times; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10, help="warm drafts to time (default 10)")
    parser.add_argument("--kind", default="apnsa")
    args = parser.parse_args()

    from bot.config import Settings
    from bot.console.demo import DEMO_SCRIPT, DEMO_START
    from bot.console.repl import USERS, Console, quiet_logs
    from bot.services.drafts import DraftService

    print(f"# bench/drafts.py  {machine()}")
    quiet_logs()
    console = Console(
        Settings(bot_timezone="America/New_York"), out=io.StringIO(), start=DEMO_START, echo=False
    )
    try:
        for line in DEMO_SCRIPT.strip().splitlines():
            console.run_line(line)
        manager = next(u.id for u in USERS if u.role == "manager")
        drafts = DraftService(console.bot.service)

        t0 = time.perf_counter()
        first = drafts.draft(manager, 1, args.kind)
        cold = time.perf_counter() - t0

        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            drafts.draft(manager, 1, args.kind)
            times.append(time.perf_counter() - t0)

        tracemalloc.start()
        drafts.draft(manager, 1, args.kind)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        console.close()

    doc = first.draft
    print(
        f"CR-1 {args.kind}: Word file {len(doc.docx):,} bytes, Markdown {len(doc.markdown):,} characters, "
        f"{len(doc.document.missing)} item(s) missing"
    )
    print(
        f"first draft of the process (loads python-docx and matplotlib unless the demo did): {cold * 1000:.0f} ms"
    )
    print(
        f"warm, {len(times)} drafts: median {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms (target: under 1,000 ms)"
    )
    print(
        f"peak Python memory of one warm draft (tracemalloc): {peak / 2**20:.1f} MiB; peak process RSS {peak_rss_mb():.0f} MB"
    )
    return 0 if max(times) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
