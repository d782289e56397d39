"""bot.services.runtime: the runtime settings as one typed object, with the SETTINGS table's defaults."""

from __future__ import annotations

from bot.domain import schedule
from bot.domain.args import SETTINGS
from bot.services.runtime import RuntimeSettings, as_strings


def test_defaults_are_the_schedules_and_every_setting_has_a_field():
    rt = RuntimeSettings.from_values({})
    assert (rt.reminder_hour, rt.unanswered_reminder_days, rt.escalation_days) == (
        schedule.DEFAULT_REMINDER_HOUR,
        schedule.UNANSWERED_PING_BUSINESS_DAYS,
        schedule.ESCALATION_BUSINESS_DAYS,
    )
    assert rt.stopwork_reminders and rt.digest
    assert set(as_strings(rt)) == set(SETTINGS)  # a setting the parser accepts is one the bot reads


def test_stored_values_are_typed_and_a_bad_row_falls_back_to_its_default():
    stored = {
        "reminder_hour": "7",
        "unanswered_reminder_days": "3",
        "escalation_days": "99",  # outside 1-60 (a hand-edited row): the default, not a month of silence
        "stopwork_reminders": "off",
        "digest": "maybe",
        "manager_channel": "C0MANAGERS",
        "reminders_planned_in": "Europe/Paris",  # kept by the bot: not a runtime setting
    }
    rt = RuntimeSettings.from_values(stored)
    assert rt.reminder_hour == 7 and rt.unanswered_reminder_days == 3
    assert rt.escalation_days == schedule.ESCALATION_BUSINESS_DAYS
    assert rt.stopwork_reminders is False and rt.digest is True and rt.manager_channel == "C0MANAGERS"
    assert as_strings(rt)["stopwork_reminders"] == "off"
    assert RuntimeSettings.from_values(as_strings(rt)) == rt  # what admin settings shows reads back the same
