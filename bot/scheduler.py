"""APScheduler 3 jobs with fixed ids: the reminder sweep and an outbox safety net.

The jobs keep no state of their own: the database holds every reminder, and each sweep claims due
rows atomically, so restarts, misfires and several processes neither lose nor duplicate a reminder.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


def start_scheduler(bot) -> BackgroundScheduler:  # noqa: ANN001 - bot.app.ContractBot (import cycle)
    """Start the in-process scheduler running the sweep every REMINDER_INTERVAL_SECONDS."""
    scheduler = BackgroundScheduler(timezone="UTC")
    common = {"replace_existing": True, "coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(reminders_sweep_job, "interval", seconds=bot.settings.reminder_interval_seconds,
                      id="reminders.sweep", args=[bot], next_run_time=bot.clock.now(), **common)
    scheduler.start()
    return scheduler


def reminders_sweep_job(bot) -> None:  # noqa: ANN001
    """Send the reminders that are due (a sweep claims them; see bot.services.reminders)."""
    try:
        result = bot.sweeper.sweep()
        if result.claimed:
            log.info("reminder sweep: %s claimed, %s sent, %s no longer applied", result.claimed, result.sent,
                     result.skipped)
    except Exception:  # noqa: BLE001 - the next run tries again; the rows stay due
        log.exception("reminder sweep failed")
