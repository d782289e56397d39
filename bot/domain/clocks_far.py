"""The contract's own clocks (FAR): a stop-work order's 90 days (FAR 52.242-15) and the period of performance.

Pure date arithmetic over a ``BusinessCalendar``; no clock of its own. The deadlines are calendar dates (FAR
counts calendar days); only the reminders about them move to a business day, and they move EARLIER (to the last
business day on or before), so that a warning about a lapse or an end that falls on a weekend or holiday is read
before it, not after.

Decision (SPEC "Rules", stop-work lapse): an order lapses at the end of its last day (issue + 90 days, or the day
an extension runs to). FAR 52.242-15(b) then has the contractor resume work, but the bot cannot tell a lapse from
an extension that nobody recorded (in the ICE / Paragon case the order stood for 325 days and no extension is
public), so it fails safe: a lapsed order still blocks operational use until a manager records `resume` (or
`stopwork-extend`). What the bot does is say so: `show`, the parent message, the digest and a "lapsed" reminder
name the lapse date and what to record, and that lapsing is not a compliance finding (the executive order's own
conditions are unaffected either way).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from bot.domain.calendar import BusinessCalendar
from bot.domain.errors import InvalidState

__all__ = [
    "STOPWORK_DAYS",
    "STOPWORK_LAPSE_REMINDER_DAYS",
    "TERM_END_REMINDER_DAYS",
    "add_months",
    "check_stopwork_extend",
    "last_business_day_on_or_before",
    "parse_term",
    "stopwork_in_effect",
    "superseded",
    "stopwork_lapse_reminders",
    "stopwork_lapsed_on",
    "stopwork_lapses_on",
    "term_end_reminders",
    "term_ends_on",
    "term_words",
]

STOPWORK_DAYS = 90  # FAR 52.242-15(a): "for a period of 90 days after the order is delivered"
STOPWORK_LAPSE_REMINDER_DAYS = (60, 80, 90)  # days after issue (SPEC "Reminders": stop-work lapsing)
TERM_END_REMINDER_DAYS = (60, 30, 7)  # days before the period of performance ends

Reminder = tuple[str, datetime]


def last_business_day_on_or_before(d: date, cal: BusinessCalendar) -> date:
    """``d`` if it is a business day, else the last business day before it (a Saturday gives the Friday)."""
    while not cal.is_business_day(d):
        d -= timedelta(days=1)
    return d


# ------------------------------------------------------------------------------------------------ stop-work


def stopwork_lapses_on(since: date, extended_until: date | None = None) -> date:
    """The last day a stop-work order issued on ``since`` is in effect: ``since`` + 90 days, or the extension's."""
    return extended_until if extended_until is not None else since + timedelta(days=STOPWORK_DAYS)


def stopwork_in_effect(since: date | None, extended_until: date | None, today: date) -> bool:
    """Whether a stop-work order is in effect on ``today``: issued, not lifted, and not past its last day."""
    return since is not None and today <= stopwork_lapses_on(since, extended_until)


def stopwork_lapsed_on(since: date | None, extended_until: date | None, today: date) -> date | None:
    """The day an order not lifted lapsed (its last day in effect), once that day has passed; else None."""
    if since is None:
        return None
    last = stopwork_lapses_on(since, extended_until)
    return last if today > last else None


def stopwork_lapse_reminders(
    since: date, extended_until: date | None, cal: BusinessCalendar, hour: int
) -> list[Reminder]:
    """The "stop-work lapsing" reminders: ("60d", …), ("80d", …), ("90d", …), then ("lapsed", …), at ``hour`` local.

    Without an extension they fall 60, 80 and 90 days after issue; with one, just as far before its new end (30
    and 10 days before, and on the last day). Each on the last business day on or before that date, so that it
    is read before the lapse; "lapsed" on the first business day after the last day, when the order no longer
    holds (the bot then brings the contract's status up to date and says what is still missing)."""
    end = stopwork_lapses_on(since, extended_until)
    out: list[Reminder] = []
    for n in STOPWORK_LAPSE_REMINDER_DAYS:
        day = end - timedelta(days=STOPWORK_DAYS - n)
        out.append((f"{n}d", cal.at_local(last_business_day_on_or_before(day, cal), hour)))
    out.append(("lapsed", cal.at_local(cal.next_business_day(end), hour)))
    return out


def superseded(before: int, left: int, befores: tuple[int, ...]) -> bool:
    """Whether a countdown reminder due ``before`` days ahead of a deadline, sent with ``left`` days to go (late,
    after downtime), is superseded by a later one of ``befores`` that is due too: only that one goes."""
    return any(d < before and left <= d for d in befores)


def check_stopwork_extend(
    ref: str, since: date | None, extended_until: date | None, until: date, today: date
) -> None:
    """An extension needs an order not lifted, and an end after the current one; raises InvalidState."""
    if since is None:
        raise InvalidState(
            f"No stop-work order is in effect on {ref}; there is nothing to extend "
            f'(`stopwork {ref} reason="…"` records one).'
        )
    current = stopwork_lapses_on(since, extended_until)
    if until <= current:
        raise InvalidState(
            f"`until={until.isoformat()}` must be after the stop-work order's current lapse date "
            f"({current.isoformat()}) on {ref}."
        )


# -------------------------------------------------------------------------------------- period of performance

_UNITS = {"month": 1, "months": 1, "mo": 1, "mos": 1, "year": 12, "years": 12, "yr": 12, "yrs": 12}
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "eighteen": 18,
    "twenty-four": 24,
    "thirty-six": 36,
}
_DURATION = re.compile(r"^\s*(\d{1,3}|[a-z-]+)[\s-]*(months?|mos?|years?|yrs?)\s*$")


def parse_term(text: str | None) -> int | None:
    """The months of a duration ("12 months", "1 year", "18 months", "2 years", "one-year"), or None when the
    text is not a duration (it is then kept as free text). At most 20 years."""
    if not text:
        return None
    m = _DURATION.match(text.strip().lower())
    if m is None:
        return None
    number, unit = m.groups()
    n = int(number) if number.isdigit() else _NUMBER_WORDS.get(number.rstrip("-"))
    if not n:
        return None
    months = n * _UNITS[unit]
    return months if 0 < months <= 240 else None


def add_months(d: date, months: int) -> date:
    """``d`` moved ``months`` calendar months on (the 31st of a shorter month gives its last day)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, min(d.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has a 28th")


def term_ends_on(starts_on: date, months: int) -> date:
    """The last day of a period of performance of ``months`` starting on ``starts_on`` (12 months from
    2024-09-27 runs through 2025-09-26)."""
    return add_months(starts_on, months) - timedelta(days=1)


def term_words(months: int) -> str:
    """ "12 months", "1 year" style words for a number of months."""
    if months % 12 == 0:
        years = months // 12
        return f"{years} year" if years == 1 else f"{years} years"
    return f"{months} month" if months == 1 else f"{months} months"


def term_end_reminders(ends_on: date, cal: BusinessCalendar, hour: int) -> list[Reminder]:
    """("60d", …), ("30d", …), ("7d", …): ``hour`` local on the last business day on or before ``ends_on`` - N."""
    return [
        (f"{n}d", cal.at_local(last_business_day_on_or_before(ends_on - timedelta(days=n), cal), hour))
        for n in TERM_END_REMINDER_DAYS
    ]
