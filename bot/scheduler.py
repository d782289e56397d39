"""APScheduler 3 jobs with fixed ids: the reminder sweep, an outbox safety net and the daily audit check.

The jobs keep no state of their own: the database holds every reminder, and each sweep claims due
rows atomically, so restarts, misfires and several processes neither lose nor duplicate a reminder.
The scheduler uses an in-memory job store (never a shared persistent one: SLACK-FACTS F3.1) and one
per process; a second start in the same process reuses it and replaces the jobs by id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
SWEEP_JOB_ID = "reminders.sweep"
DELIVERY_JOB_ID = "outbox.deliver"
DELIVERY_SAFETY_NET_SECONDS = 30
AUDIT_JOB_ID = "audit.daily"
AUDIT_JOB_HOURS = 1  # looks every hour; posts the checkpoint and verifies once a day (bot.services.seal)


def start_scheduler(bot) -> BackgroundScheduler:  # noqa: ANN001 - bot.app.ContractBot (import cycle)
    """Start (or refresh) this process's scheduler: the sweep every REMINDER_INTERVAL_SECONDS, delivery every 30 s."""
    try:
        # before the first sweep plans anything: reminders planned under another BOT_TIMEZONE move to this one's hours
        bot.sweeper.replan_for_zone()
    except Exception:  # noqa: BLE001 - the first sweep tries again
        log.exception("could not re-plan the reminders for BOT_TIMEZONE")
    scheduler = getattr(bot, "_scheduler", None)
    if not isinstance(scheduler, BackgroundScheduler) or not scheduler.running:
        scheduler = BackgroundScheduler(timezone="UTC")
    common = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    # NOTE: APScheduler runs on the real clock; the injected clock is business time (a test's ManualClock may
    # stand hours ahead), so the first run is "now" on the real clock.
    first = datetime.now(UTC)
    scheduler.add_job(
        reminders_sweep_job,
        "interval",
        seconds=bot.settings.reminder_interval_seconds,
        id=SWEEP_JOB_ID,
        args=[bot],
        next_run_time=first,
        **common,
    )
    scheduler.add_job(
        outbox_delivery_job,
        "interval",
        seconds=DELIVERY_SAFETY_NET_SECONDS,
        id=DELIVERY_JOB_ID,
        args=[bot],
        next_run_time=first,
        **common,
    )
    if getattr(bot, "seal", None) is not None:
        scheduler.add_job(
            audit_daily_job,
            "interval",
            hours=AUDIT_JOB_HOURS,
            id=AUDIT_JOB_ID,
            args=[bot],
            next_run_time=first + timedelta(minutes=5),  # after start-up's own checks have settled
            **common,
        )
    if not scheduler.running:
        scheduler.start()
    bot._scheduler = scheduler
    return scheduler


def reminders_sweep_job(bot) -> None:  # noqa: ANN001
    """Send the reminders that are due (a sweep claims them; see bot.services.reminders)."""
    try:
        result = bot.sweeper.sweep()
        if result.claimed:
            log.info(
                "reminder sweep: %s claimed, %s sent, %s no longer applied",
                result.claimed,
                result.sent,
                result.skipped,
            )
    except Exception:  # noqa: BLE001 - the next run tries again; the rows stay due
        log.exception("reminder sweep failed")
    try:
        bot.channels.check_if_due()  # the channels the bot posts in, re-checked every few minutes (not every sweep)
    except Exception:  # noqa: BLE001 - the next run tries again
        log.exception("channel check failed")


def outbox_delivery_job(bot) -> None:  # noqa: ANN001
    """Safety net: wake the delivery loop even if no commit in this process did (rows queued by another one)."""
    bot.wake_delivery()


def audit_daily_job(bot) -> None:  # noqa: ANN001
    """Today's audit checkpoint and verification (once a day across processes); the admins are told of a failure."""
    try:
        verdict = bot.seal.daily_job()
        if verdict is not None:
            log.info("daily audit verification: %s", "OK" if verdict.ok else "FAILED")
    except Exception:  # noqa: BLE001 - the next run tries again
        log.exception("daily audit verification failed to run")
