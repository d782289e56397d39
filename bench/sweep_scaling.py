"""Reminder sweep scaling (10,000 due reminders with 10,000 vs 200,000 contracts), then APScheduler 3 for comparison.

    /work/venv/bin/python bench/sweep_scaling.py            # full: 10,000 due; 10,000 vs 200,000 contracts;
                                                            #       APScheduler: 200,000 jobs, 10,000 due
    /work/venv/bin/python bench/sweep_scaling.py --quick    # 1,000 due; 2,000 vs 20,000 contracts; 20,000 jobs
    ... --backend postgresql                                # the same on PostgreSQL (a fresh schema per run)
    ... --kind unanswered                                   # one thread message per reminder (no merging)

Part 1, for each database size, in a fresh process: a fresh database (SQLite file, or a fresh PostgreSQL
schema) is migrated and bulk-filled with SQLAlchemy core. The first N_DUE contracts each have one reminder due
an hour before "now" whose condition holds at send time:
  --kind stopwork (default): a stop-work order in effect and its stop-work reminder. The sweep sends these to
      the manager channel and merges one batch's texts into as few messages as fit a section block.
  --kind unanswered: 5 unanswered SCOPE questions and the "unanswered" reminder; each becomes its own
      message in the contract's thread.
Every other contract has one escalation reminder due in 30 days (pending, not due).
After an untimed warm-up (one 20-reminder batch, rolled back), timed: ``ReminderSweeper.sweep(now)`` (claims, re-checks, schedules next occurrences and writes the outbox,
committed), then ``OutboxDispatcher.deliver_due()`` until nothing is left to send, against the Slack double
(own process, answering at once). The figure is the ratio of the big database's time to the small one's.

Part 2, in a fresh process: APScheduler 3.11 BackgroundScheduler with a SQLAlchemyJobStore on its own SQLite
file: one ``date`` job per reminder (no-op callable, misfire_grace_time=None so a past run date still
fires). Timed: scheduling all jobs (scheduler started paused, so each add_job writes to the store), then
resuming and waiting until the due jobs (run dates in the past, interleaved) have all executed. Peak RSS
(ru_maxrss) is reported for every process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PY,
    ROOT,
    DoubleProcess,
    create_schema,
    drop_schema,
    loadavg,
    machine,
    peak_rss_mb,
    seed_contracts,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York (tests/conftest.py START)


# ==== part 1: one sweep scenario (child process) =============================================================


def sweep_scenario(
    contracts: int,
    due: int,
    kind: str,
    backend: str,
    api_url: str,
    workdir: str,
    max_seconds: float,
    analyze: bool = False,
) -> dict:
    from types import SimpleNamespace

    from sqlalchemy import text

    from bot.app import create_app
    from bot.clock import ManualClock
    from storage.db import make_engine, migrate
    from tests.conftest import make_settings

    schema = None
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):  # a fresh file for every run
            Path(f"{workdir}/sweep-{contracts}.db{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{workdir}/sweep-{contracts}.db"
        engine = make_engine(url)
    else:
        url, schema = PG_URL, create_schema(PG_URL, "bench")
        engine = make_engine(url, schema=schema)
    try:
        migrate(engine)
        seeded = seed_contracts(engine, contracts, now=NOW, due=due, kind=kind, analyze=analyze)
        rss_seeded = peak_rss_mb()
        clock = ManualClock(NOW)
        bot = create_app(make_settings(SimpleNamespace(api_url=api_url), url), engine=engine, clock=clock)
        # Warm-up, untimed: one small batch of the same sweep code in a transaction that is rolled back (first
        # use of the holiday calendar, SQLAlchemy's statement cache...), as ReminderSweeper.preview does.
        from bot.services.reminders import ReminderSweeper

        warm = ReminderSweeper(bot.session_factory, clock, bot.calendar, bot.settings, batch=20)
        s = bot.session_factory()
        try:
            warm._sweep_batch(s, NOW)
        finally:
            s.rollback()
            s.close()
        t0 = time.perf_counter()
        result = bot.sweeper.sweep(NOW)
        t1 = time.perf_counter()
        sent = rounds = 0
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            stats = bot.dispatcher.deliver_due()
            rounds += 1
            sent += stats.sent
            if stats.sent == 0:
                break
        t2 = time.perf_counter()
        with engine.connect() as conn:
            outbox = {
                r[0]: r[1] for r in conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
            }
            reminders = {
                r[0]: r[1]
                for r in conn.execute(text("SELECT status, count(*) FROM reminder GROUP BY status"))
            }
        bot.stop()
        return {
            "contracts": contracts,
            "due": due,
            "kind": kind,
            "backend": backend,
            "seed_s": seeded["seconds"],
            "claimed": result.claimed,
            "reminders_sent": result.sent,
            "skipped": result.skipped,
            "messages_queued": len(result.messages),
            "sweep_s": t1 - t0,
            "deliver_s": t2 - t1,
            "total_s": t2 - t0,
            "delivered": sent,
            "deliver_calls": rounds,
            "outbox": outbox,
            "reminders": reminders,
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_seed_mb": rss_seeded,
            "db_mb": (Path(f"{workdir}/sweep-{contracts}.db").stat().st_size / 2**20)
            if backend == "sqlite"
            else None,
        }
    finally:
        engine.dispose()
        if schema:
            drop_schema(PG_URL, schema)


# ==== part 2: APScheduler 3 with one job per reminder (child process) ========================================


def apscheduler_scenario(jobs: int, due: int, workdir: str, max_seconds: float) -> dict:
    import threading

    import _common
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    rss_start = peak_rss_mb()
    path = Path(workdir) / "apscheduler.db"
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}")
    sched = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
    counts = {"executed": 0, "missed": 0, "error": 0}
    done = threading.Event()
    lock = threading.Lock()

    def listener(event) -> None:  # noqa: ANN001
        with lock:
            if event.code == EVENT_JOB_EXECUTED:
                counts["executed"] += 1
            elif event.code == EVENT_JOB_MISSED:
                counts["missed"] += 1
            else:
                counts["error"] += 1
            if counts["executed"] + counts["missed"] + counts["error"] >= scheduled_due:
                done.set()

    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    sched.start(paused=True)
    now = datetime.now(UTC)
    every = max(1, jobs // max(due, 1))  # the due jobs are spread evenly over the ids
    scheduled = scheduled_due = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    for i in range(jobs):
        is_due = i % every == 0 and scheduled_due < due
        run_date = (
            now - timedelta(minutes=60) + timedelta(microseconds=i)
            if is_due
            else now + timedelta(days=30, seconds=i)
        )
        sched.add_job(
            _common.noop,
            "date",
            run_date=run_date,
            id=f"reminder-{i}",
            misfire_grace_time=None,
            coalesce=True,
            replace_existing=False,
        )
        scheduled += 1
        scheduled_due += is_due
        if time.monotonic() > deadline:
            break
    t1 = time.perf_counter()
    rss_scheduled = peak_rss_mb()
    sched.resume()
    fired_in_time = done.wait(timeout=max_seconds)
    t2 = time.perf_counter()
    rss_fired = peak_rss_mb()
    sched.shutdown(wait=False)
    import sqlite3

    with sqlite3.connect(path) as conn:
        left = conn.execute("SELECT count(*) FROM apscheduler_jobs").fetchone()[0]
    return {
        "jobs_requested": jobs,
        "jobs_scheduled": scheduled,
        "due_scheduled": scheduled_due,
        "schedule_s": t1 - t0,
        "schedule_complete": scheduled == jobs,
        "fire_s": t2 - t1,
        "fired_all": fired_in_time,
        **counts,
        "jobs_left_in_store": left,
        "rss_start_mb": rss_start,
        "peak_rss_after_schedule_mb": rss_scheduled,
        "peak_rss_mb": rss_fired,
        "store_mb": path.stat().st_size / 2**20,
    }


# ==== orchestration ============================================================================================


def child(args: list[str], timeout: float) -> dict:
    proc = subprocess.run(
        [PY, __file__, *args], capture_output=True, text=True, cwd=str(ROOT), timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--due", type=int, default=None)
    ap.add_argument("--small", type=int, default=None, help="contracts in the baseline database")
    ap.add_argument("--large", type=int, default=None, help="contracts in the big database")
    ap.add_argument("--jobs", type=int, default=None, help="APScheduler jobs to schedule")
    ap.add_argument("--kind", choices=("stopwork", "unanswered"), default="stopwork")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--max-seconds", type=float, default=None, help="bound of each timed phase")
    ap.add_argument("--skip-apscheduler", action="store_true")
    ap.add_argument(
        "--repeat", type=int, default=2, help="runs per database size, alternating (best is compared)"
    )
    ap.add_argument(
        "--analyze", action="store_true", help="run ANALYZE after seeding (production never does)"
    )
    a = ap.parse_args()
    due = a.due or (1_000 if a.quick else 10_000)
    small = a.small or (2_000 if a.quick else 10_000)
    large = a.large or (20_000 if a.quick else 200_000)
    jobs = a.jobs or (20_000 if a.quick else 200_000)
    bound = a.max_seconds or (300.0 if a.quick else 1200.0)
    print(f"sweep_scaling: {machine()}")
    print(
        f"due={due} kind={a.kind} backend={a.backend} contracts: {small} vs {large}; APScheduler jobs={jobs}; "
        f"ANALYZE after seeding: {'yes' if a.analyze else 'no (as in production)'}"
    )
    runs: dict[int, list[dict]] = {small: [], large: []}
    with tempfile.TemporaryDirectory(prefix="sweepbench-") as tmp:
        for rep in range(a.repeat):  # alternate small and large, so that machine noise hits both alike
            for n in (small, large):
                with DoubleProcess(n_response_urls=1) as dbl:
                    r = child(
                        [
                            "_sweep",
                            str(n),
                            str(due),
                            a.kind,
                            a.backend,
                            dbl.api_url,
                            tmp,
                            str(bound),
                            str(int(a.analyze)),
                        ],
                        timeout=bound * 3 + 600,
                    )
                runs[n].append(r)
                print(
                    f"\n[{n} contracts, run {rep + 1}] seeded in {r['seed_s']:.1f} s; sweep claimed {r['claimed']} "
                    f"(sent {r['reminders_sent']}, skipped {r['skipped']}) -> {r['messages_queued']} messages queued"
                )
                print(
                    f"  sweep   {r['sweep_s']:8.2f} s   ({r['sweep_s'] / max(r['claimed'], 1) * 1000:.2f} ms/reminder)"
                )
                print(f"  deliver {r['deliver_s']:8.2f} s   ({r['delivered']} messages sent to the double)")
                print(
                    f"  total   {r['total_s']:8.2f} s   peak RSS {r['peak_rss_mb']:.0f} MiB"
                    + (f"   db {r['db_mb']:.0f} MiB" if r["db_mb"] else "")
                )
                print(f"  outbox after: {r['outbox']}; reminders after: {r['reminders']}")
        s = {k: min(r[k] for r in runs[small]) for k in ("sweep_s", "deliver_s", "total_s")}
        b = {k: min(r[k] for r in runs[large]) for k in ("sweep_s", "deliver_s", "total_s")}
        b["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[large])
        print(f"\n== {large} / {small} contracts (best of {a.repeat} runs each) ==")
        for key in ("sweep_s", "deliver_s", "total_s"):
            print(f"  {key[:-2]:8}: {b[key]:8.2f} s / {s[key]:8.2f} s = x{b[key] / s[key]:.2f}")
        ratio = b["total_s"] / s["total_s"]
        print(f"  total ratio <= 1.2: {'YES' if ratio <= 1.2 else 'NO'} (x{ratio:.2f})")
        if not a.skip_apscheduler:
            r = child(["_aps", str(jobs), str(due), tmp, str(bound)], timeout=bound * 2 + 600)
            print(
                f"\n[APScheduler 3 SQLAlchemyJobStore, one job per reminder] scheduled {r['jobs_scheduled']}"
                f"/{r['jobs_requested']} jobs ({r['due_scheduled']} due) in {r['schedule_s']:.1f} s"
                f" = {r['jobs_scheduled'] / r['schedule_s']:.0f} jobs/s"
                + ("" if r["schedule_complete"] else f" (STOPPED at the {bound:.0f} s bound)")
            )
            if not r["schedule_complete"]:
                est = r["schedule_s"] * r["jobs_requested"] / max(r["jobs_scheduled"], 1)
                print(f"  extrapolated time to schedule all {r['jobs_requested']}: {est:.0f} s")
            print(
                f"  fired: executed={r['executed']} missed={r['missed']} error={r['error']} of {r['due_scheduled']} due "
                f"in {r['fire_s']:.2f} s{'' if r['fired_all'] else ' (NOT all within the bound)'}; "
                f"{r['jobs_left_in_store']} jobs left in the store ({r['store_mb']:.0f} MiB)"
            )
            print(
                f"  RSS: {r['rss_start_mb']:.0f} MiB at start, peak {r['peak_rss_after_schedule_mb']:.0f} MiB after "
                f"scheduling, peak {r['peak_rss_mb']:.0f} MiB after firing"
            )
            print(
                f"\n== firing {r['due_scheduled']} due: APScheduler {r['fire_s']:.2f} s (no-op jobs, nothing sent) vs "
                f"contract-bot sweep {b['sweep_s']:.2f} s + delivery {b['deliver_s']:.2f} s with {large} contracts; "
                f"peak RSS {r['peak_rss_mb']:.0f} vs {b['peak_rss_mb']:.0f} MiB"
            )
    print(f"\nend: {loadavg()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_sweep":
        sys.path.insert(0, str(ROOT))
        import logging

        logging.basicConfig(level=logging.WARNING)
        n, due, kind, backend, api_url, workdir, bound, analyze = sys.argv[2:10]
        print(
            json.dumps(
                sweep_scenario(
                    int(n), int(due), kind, backend, api_url, workdir, float(bound), analyze == "1"
                )
            )
        )
        sys.exit(0)
    if len(sys.argv) >= 2 and sys.argv[1] == "_aps":
        import logging

        logging.basicConfig(level=logging.ERROR)
        jobs, due, workdir, bound = sys.argv[2:6]
        print(json.dumps(apscheduler_scenario(int(jobs), int(due), workdir, float(bound))))
        sys.exit(0)
    sys.exit(main())
