"""When each reminder falls due (SPEC "Reminders"): pure date arithmetic over a ``BusinessCalendar``.

No clock of its own: "now" is always an argument. Every datetime taken must be aware (naive raises
ValueError) and every datetime returned is an aware UTC instant. Business-day reminders go out at the
local "reminder hour" (default 09:00 in the calendar's zone).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from bot.domain.calendar import BusinessCalendar

__all__ = [
    "DEFAULT_REMINDER_HOUR",
    "EXCLUDED_NOTICE_DAYS",
    "SNOOZE_CHOICES",
    "UNANSWERED_PING_BUSINESS_DAYS",
    "ESCALATION_BUSINESS_DAYS",
    "WAITING_PERIOD_DAYS",
    "WAIVER_REPORT_HOURS",
    "days_left_words",
    "digest_week",
    "escalation_due",
    "excluded_notice_due",
    "excluded_notice_reminders",
    "next_weekly_digest",
    "replanned",
    "skip_past",
    "snooze_until",
    "split_deadlines",
    "stopwork_business_days_elapsed",
    "stopwork_days_elapsed",
    "stopwork_first_ping",
    "stopwork_next_ping",
    "unanswered_first_ping",
    "unanswered_next_ping",
    "waiting_period_end",
    "waiting_period_over_at",
    "waiver_expires_at",
    "waiver_days_left",
    "waiver_expiry_reminders",
    "waiver_expiry_superseded",
    "waiver_max_until",
    "waiver_report_deadline",
    "waiver_report_reminders",
]

DEFAULT_REMINDER_HOUR = 9
UNANSWERED_PING_BUSINESS_DAYS = 2
ESCALATION_BUSINESS_DAYS = 5
WAITING_PERIOD_DAYS = 7  # EO 14093 §2(g)
WAIVER_REPORT_HOURS = 72
WAIVER_REPORT_DUE_HOURS = 48
EXCLUDED_NOTICE_DAYS = 45  # EO 14093 §4(b)
EXCLUDED_NOTICE_REMINDER_DAYS = (30, 40, 45)
WAIVER_EXPIRY_REMINDER_DAYS = (30, 7, 1)
SNOOZE_CHOICES: dict[str, int] = {"tomorrow": 1, "3d": 3}

Reminder = tuple[str, datetime]


def _aware(instant: datetime, what: str = "datetime") -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return instant.astimezone(UTC)


# ------------------------------------------------------------------------------------------- stop-work


def stopwork_first_ping(
    started_on: date, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> datetime:
    """The first stop-work ping: ``hour`` local on the first business day strictly after ``started_on``."""
    return cal.at_local(cal.next_business_day(started_on), hour)


def stopwork_next_ping(
    previous_due: datetime, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> datetime:
    """The ping after ``previous_due``: ``hour`` local on the next business day; ValueError if naive."""
    return cal.at_local(cal.next_business_day(cal.local_date(_aware(previous_due, "previous_due"))), hour)


def stopwork_days_elapsed(started_on: date, now: datetime, cal: BusinessCalendar) -> int:
    """Calendar days from ``started_on`` to the local date of ``now`` (min 0); raises ValueError if naive."""
    return max(0, (cal.local_date(_aware(now, "now")) - started_on).days)


def stopwork_business_days_elapsed(started_on: date, now: datetime, cal: BusinessCalendar) -> int:
    """Business days in (started_on, local date of now]; 0 if not after; raises ValueError if now is naive."""
    return cal.business_days_between(started_on, cal.local_date(_aware(now, "now")))


# ------------------------------------------------------------------------------- unanswered questions


def unanswered_first_ping(
    asked_at: datetime,
    cal: BusinessCalendar,
    hour: int = DEFAULT_REMINDER_HOUR,
    days: int = UNANSWERED_PING_BUSINESS_DAYS,
) -> datetime:
    """``hour`` local, ``days`` (2) business days after the local date of ``asked_at``; ValueError if naive."""
    asked_on = cal.local_date(_aware(asked_at, "asked_at"))
    return cal.at_local(cal.add_business_days(asked_on, days), hour)


def unanswered_next_ping(
    previous_due: datetime,
    cal: BusinessCalendar,
    hour: int = DEFAULT_REMINDER_HOUR,
    days: int = UNANSWERED_PING_BUSINESS_DAYS,
) -> datetime:
    """``hour`` local, ``days`` (2) business days after the local date of ``previous_due``; ValueError if naive."""
    previous_on = cal.local_date(_aware(previous_due, "previous_due"))
    return cal.at_local(cal.add_business_days(previous_on, days), hour)


def escalation_due(
    asked_at: datetime,
    cal: BusinessCalendar,
    hour: int = DEFAULT_REMINDER_HOUR,
    days: int = ESCALATION_BUSINESS_DAYS,
) -> datetime:
    """``hour`` local, ``days`` (5) business days after the local date of ``asked_at``; ValueError if naive."""
    asked_on = cal.local_date(_aware(asked_at, "asked_at"))
    return cal.at_local(cal.add_business_days(asked_on, days), hour)


# ------------------------------------------------------------------------------------ waiting period


def waiting_period_end(notice_on: date) -> date:
    """The earliest date operational use may begin: ``notice_on`` + 7 calendar days (EO 14093 §2(g))."""
    return notice_on + timedelta(days=WAITING_PERIOD_DAYS)


def waiting_period_over_at(
    notice_on: date, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> datetime:
    """``hour`` local on ``waiting_period_end(notice_on)`` (a calendar date; weekends are not skipped)."""
    return cal.at_local(waiting_period_end(notice_on), hour)


# ------------------------------------------------------------------------------------------- waivers


def waiver_report_deadline(decided_at: datetime) -> datetime:
    """``decided_at`` + exactly 72 hours (not business days), in UTC; raises ValueError if naive."""
    return _aware(decided_at, "decided_at") + timedelta(hours=WAIVER_REPORT_HOURS)


def waiver_report_reminders(decided_at: datetime) -> list[Reminder]:
    """[("due", decided_at + 48h), ("overdue", decided_at + 72h)] in UTC; raises ValueError if naive."""
    decided = _aware(decided_at, "decided_at")
    return [
        ("due", decided + timedelta(hours=WAIVER_REPORT_DUE_HOURS)),
        ("overdue", decided + timedelta(hours=WAIVER_REPORT_HOURS)),
    ]


def waiver_max_until(issued_on: date) -> date:
    """The latest allowed ``until``: same month and day one year later (29 February gives 28 February)."""
    try:
        return issued_on.replace(year=issued_on.year + 1)
    except ValueError:  # 29 February -> no such day next year
        return date(issued_on.year + 1, 2, 28)


def waiver_expires_at(until: date, cal: BusinessCalendar) -> datetime:
    """When a waiver in force through ``until`` lapses: local midnight starting the next day, in UTC."""
    return cal.start_of_local_day(until + timedelta(days=1))


def waiver_expiry_reminders(
    until: date, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> list[Reminder]:
    """Reminders ("30d", "7d", "1d", "expired") for a waiver in force through ``until``, in time order.

    With E = the local date of the expiry instant (``until`` + 1 day), "Nd" falls at ``hour`` local on
    E - N calendar days (so "1d" is ``hour`` on ``until`` itself, the waiver's last day in force), and
    "expired" at ``waiver_expires_at(until, cal)``. Calendar days: weekends and holidays are not skipped.
    """
    expiry_day = until + timedelta(days=1)
    reminders: list[Reminder] = [
        (f"{n}d", cal.at_local(expiry_day - timedelta(days=n), hour)) for n in WAIVER_EXPIRY_REMINDER_DAYS
    ]
    reminders.append(("expired", waiver_expires_at(until, cal)))
    return reminders


def days_left_words(n: int) -> str:
    """ "30 days left", "1 day left"."""
    return f"{n} day left" if n == 1 else f"{n} days left"


def waiver_days_left(until: date, today: date) -> int:
    """Days a waiver in force through ``until`` has left on ``today``, that day counted (1 on its last day)."""
    return (until - today).days + 1


def waiver_expiry_superseded(label: str, until: date, today: date) -> bool:
    """Whether an expiry reminder sent late is superseded by a later one due too (e.g. "30d" and "7d" both due
    after downtime: only "7d" goes, saying how many days are really left), or by expiry itself."""
    left = waiver_days_left(until, today)
    if label == "expired":
        return False
    if left <= 0:
        return True
    n = int(label[:-1]) if label[:-1].isdigit() else 0
    return any(m < n and left <= m for m in WAIVER_EXPIRY_REMINDER_DAYS)


# -------------------------------------------------------------------------------- §4(b) excluded notice


def excluded_notice_due(awarded_on: date) -> date:
    """The §4(b) notice deadline: ``awarded_on`` + 45 calendar days (EO 14093 §4(b)); not rolled forward."""
    return awarded_on + timedelta(days=EXCLUDED_NOTICE_DAYS)


def excluded_notice_reminders(
    awarded_on: date, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> list[Reminder]:
    """[("30d", ...), ("40d", ...), ("45d", ...)]: ``hour`` local on awarded_on + 30/40/45 calendar days."""
    return [
        (f"{n}d", cal.at_local(awarded_on + timedelta(days=n), hour)) for n in EXCLUDED_NOTICE_REMINDER_DAYS
    ]


# ---------------------------------------------------------------------------------------------- misc


def next_weekly_digest(after: datetime, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR) -> datetime:
    """The first Monday at ``hour`` local strictly after ``after`` (holidays kept); ValueError if naive."""
    after_utc = _aware(after, "after")
    today = cal.local_date(after_utc)
    monday = today + timedelta(days=(0 - today.weekday()) % 7)
    due = cal.at_local(monday, hour)
    if due <= after_utc:
        due = cal.at_local(monday + timedelta(days=7), hour)
    return due


def skip_past(times: Iterable[Reminder], now: datetime) -> list[Reminder]:
    """Only the reminders not yet due (due > now), order kept; raises ValueError if any datetime is naive.

    Missed reminders are simply dropped here: whether to send one late, collapse them into one, or ignore
    them is the caller's decision (it can diff the input against this result to find them).
    """
    now_utc = _aware(now, "now")
    return [(label, due) for label, due in times if _aware(due, "due") > now_utc]


def snooze_until(
    now: datetime, choice: str, cal: BusinessCalendar, hour: int = DEFAULT_REMINDER_HOUR
) -> datetime:
    """``hour`` local on the 1st ("tomorrow") or 3rd ("3d") business day after now's local date; else ValueError.

    Business days: a reminder snoozed on Friday "until tomorrow" comes back on Monday (Tuesday after a holiday
    Monday), never on a weekend or a federal holiday when nobody reads it."""
    days = SNOOZE_CHOICES.get(choice) if isinstance(choice, str) else None
    if days is None:
        raise ValueError(f"unknown snooze choice {choice!r}; expected one of {', '.join(SNOOZE_CHOICES)}")
    return cal.at_local(cal.add_business_days(cal.local_date(_aware(now, "now")), days), hour)


EXACT_INSTANT_KINDS = frozenset({"waiver-report-waiver", "waiver-report-revocation"})  # hours after an act


def replanned(due_at: datetime, kind: str, old: BusinessCalendar, new: BusinessCalendar) -> datetime:
    """When a reminder planned in ``old``'s zone falls due in ``new``'s: the same local wall time on the same
    local date (09:00 stays 09:00, a waiver's midnight stays midnight), except for the 72-hour report reminders,
    which are a number of hours after an instant and do not move. Raises ValueError if ``due_at`` is naive."""
    due = _aware(due_at, "due_at")
    if kind in EXACT_INSTANT_KINDS:
        return due
    wall = old.to_local(due)
    return new.at_local(wall.date(), wall.hour, wall.minute)


def digest_week(today: date) -> tuple[date, date, date]:
    """The week a digest sent on ``today`` covers: (its Monday, for the title; the first and the last day of the
    coming 7 days, ``today`` included, whose deadlines it lists as "this week")."""
    return today - timedelta(days=today.weekday()), today, today + timedelta(days=6)


def split_deadlines(
    deadlines: Iterable[tuple[str, str, date]], today: date
) -> tuple[list[tuple[str, str, date]], list[tuple[str, str, date]]]:
    """(overdue, this week) of (ref, what, date) deadlines for a digest sent on ``today``: each once, by date.

    Overdue: before ``today``; this week: ``today`` to 6 days later; later ones are left for a later digest."""
    _, first, last = digest_week(today)
    unique = sorted(set(deadlines), key=lambda d: (d[2], d[0], d[1]))
    return [d for d in unique if d[2] < first], [d for d in unique if first <= d[2] <= last]
