"""The APScheduler jobs: fixed ids, one copy each however often started, and the sweep job really sweeps."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.scheduler import AUDIT_JOB_ID, DELIVERY_JOB_ID, SWEEP_JOB_ID, start_scheduler
from tests.conftest import MANAGER, MANAGERS


def test_start_scheduler_runs_the_sweep_and_a_second_start_adds_no_jobs(running):
    running.command("file vendor=Paragon product=Graphite agency=ICE")
    running.command('stopwork CR-1 reason="hold"', user=MANAGER)
    running.clock.set(datetime(2026, 11, 25, 14, 0, tzinfo=UTC))  # Wednesday 09:00 New York: the ping is due
    scheduler = start_scheduler(running.bot)
    try:
        running.double.wait_for(lambda d: any("Reminder:" in m["text"] for m in d.messages(MANAGERS)))
        jobs = scheduler.get_jobs()
        assert sorted(j.id for j in jobs) == sorted([SWEEP_JOB_ID, DELIVERY_JOB_ID, AUDIT_JOB_ID])
        for job in jobs:
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time is None
        assert start_scheduler(running.bot) is scheduler  # again: the same scheduler, the jobs replaced by id
        running.bot.start_background(scheduler=True)
        assert sorted(j.id for j in scheduler.get_jobs()) == sorted(
            [SWEEP_JOB_ID, DELIVERY_JOB_ID, AUDIT_JOB_ID]
        )
        assert len([t for t in running.bot._threads if t.is_alive()]) == 1  # one delivery loop too
        assert len([m for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]]) == 1
    finally:
        scheduler.shutdown(wait=True)
        running.bot._scheduler = None
