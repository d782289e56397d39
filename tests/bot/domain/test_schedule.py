"""Reminder due times (SPEC "Reminders"): business days, 09:00 local across DST, EO 14093 deadlines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import schedule as s
from bot.domain.calendar import BusinessCalendar

NY = BusinessCalendar("America/New_York")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """An aware New York wall time (fold=0)."""
    return datetime(y, mo, d, h, mi, tzinfo=NY.zone)


def assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# ------------------------------------------------------------------------------------------- stop-work


@pytest.mark.parametrize(
    ("started_on", "expected"),
    [
        (date(2024, 10, 8), utc(2024, 10, 9, 13)),  # ICE/Paragon, backdated: Wed 09:00 EDT
        (date(2026, 1, 14), utc(2026, 1, 15, 14)),  # winter: 09:00 EST = 14:00 UTC
        (date(2026, 3, 6), utc(2026, 3, 9, 13)),  # Fri before spring-forward -> Mon 09:00 EDT
        (date(2026, 3, 7), utc(2026, 3, 9, 13)),  # started on a Saturday
        (date(2026, 10, 30), utc(2026, 11, 2, 14)),  # Fri before fall-back -> Mon 09:00 EST
        (date(2026, 7, 2), utc(2026, 7, 6, 13)),  # skips observed Independence Day + weekend
        (date(2026, 11, 25), utc(2026, 11, 27, 14)),  # skips Thanksgiving; day after is a business day
        (date(2027, 12, 23), utc(2027, 12, 27, 14)),  # skips Christmas observed
        (date(2027, 12, 30), utc(2028, 1, 3, 14)),  # skips New Year observed (Fri 2027-12-31)
    ],
)
def test_stopwork_first_ping(started_on: date, expected: datetime) -> None:
    got = s.stopwork_first_ping(started_on, NY)
    assert got == expected
    assert_utc(got)


@pytest.mark.parametrize(
    ("previous_due", "expected"),
    [
        (utc(2024, 10, 9, 13), utc(2024, 10, 10, 13)),
        (utc(2024, 10, 10, 13), utc(2024, 10, 11, 13)),
        (utc(2024, 10, 11, 13), utc(2024, 10, 15, 13)),  # Mon 2024-10-14 was Columbus Day
        (utc(2026, 3, 6, 14), utc(2026, 3, 9, 13)),  # across spring-forward
        (utc(2026, 10, 30, 13), utc(2026, 11, 2, 14)),  # across fall-back
        # a late-evening UTC instant whose local date is the day before
        (utc(2026, 1, 16, 3), utc(2026, 1, 16, 14)),  # local Thu 22:00 -> Fri 09:00
        (ny(2026, 11, 25, 9), utc(2026, 11, 27, 14)),  # non-UTC aware input
    ],
)
def test_stopwork_next_ping(previous_due: datetime, expected: datetime) -> None:
    got = s.stopwork_next_ping(previous_due, NY)
    assert got == expected
    assert_utc(got)


def test_stopwork_ping_custom_hour() -> None:
    assert s.stopwork_first_ping(date(2026, 1, 14), NY, hour=15) == utc(2026, 1, 15, 20)
    assert s.stopwork_next_ping(utc(2026, 7, 15, 13), NY, hour=8) == utc(2026, 7, 16, 12)


@pytest.mark.parametrize(
    ("started_on", "now", "days", "business_days"),
    [
        (date(2024, 10, 8), utc(2024, 10, 8, 15), 0, 0),
        (date(2024, 10, 8), utc(2024, 10, 15, 13), 7, 4),  # Wed, Thu, Fri, (Columbus), Tue
        (date(2024, 10, 8), utc(2024, 10, 16, 3), 7, 4),  # 23:00 local on the 15th
        (date(2026, 3, 6), utc(2026, 3, 9, 13), 3, 1),
        (date(2026, 11, 25), utc(2026, 11, 30, 14), 5, 2),  # Thanksgiving in between
        (date(2026, 12, 1), utc(2026, 11, 30, 14), 0, 0),  # start in the future: 0
    ],
)
def test_stopwork_elapsed(started_on: date, now: datetime, days: int, business_days: int) -> None:
    assert s.stopwork_days_elapsed(started_on, now, NY) == days
    assert s.stopwork_business_days_elapsed(started_on, now, NY) == business_days


# ------------------------------------------------------------------------------- unanswered questions


@pytest.mark.parametrize(
    ("asked_at", "first", "second", "escalation"),
    [
        # Mon 10:00 EST -> Wed, Fri; escalate next Mon
        (ny(2026, 1, 12, 10), utc(2026, 1, 14, 14), utc(2026, 1, 16, 14), utc(2026, 1, 20, 14)),
        # note: Mon 2026-01-19 is MLK Day, so escalation is Tue 2026-01-20
        # Thu 2026-03-05 -> Mon 03-09 (after spring-forward) -> Wed 03-11; escalate Thu 03-12
        (ny(2026, 3, 5, 16), utc(2026, 3, 9, 13), utc(2026, 3, 11, 13), utc(2026, 3, 12, 13)),
        # Thu 2026-10-29 -> Mon 11-02 (after fall-back) -> Wed 11-04; escalate Thu 11-05
        (ny(2026, 10, 29, 16), utc(2026, 11, 2, 14), utc(2026, 11, 4, 14), utc(2026, 11, 5, 14)),
        # Tue before Thanksgiving -> Fri -> Tue; escalate Wed 12-02
        (ny(2026, 11, 24, 11), utc(2026, 11, 27, 14), utc(2026, 12, 1, 14), utc(2026, 12, 2, 14)),
        # asked on a Saturday -> Tue -> Thu; escalate Fri
        (ny(2026, 3, 14, 11), utc(2026, 3, 17, 13), utc(2026, 3, 19, 13), utc(2026, 3, 20, 13)),
        # asked 23:30 local Wed 2027-12-22 (04:30 UTC Thu): local date counts -> Mon 27, Wed 29; escalate 30
        (utc(2027, 12, 23, 4, 30), utc(2027, 12, 27, 14), utc(2027, 12, 29, 14), utc(2027, 12, 30, 14)),
    ],
)
def test_unanswered_and_escalation(
    asked_at: datetime, first: datetime, second: datetime, escalation: datetime
) -> None:
    got_first = s.unanswered_first_ping(asked_at, NY)
    got_second = s.unanswered_next_ping(got_first, NY)
    got_escalation = s.escalation_due(asked_at, NY)
    assert (got_first, got_second, got_escalation) == (first, second, escalation)
    for value in (got_first, got_second, got_escalation):
        assert_utc(value)


# ------------------------------------------------------------------------------------ waiting period


@pytest.mark.parametrize(
    ("notice_on", "end", "over_at"),
    [
        (date(2025, 1, 10), date(2025, 1, 17), utc(2025, 1, 17, 14)),
        (date(2026, 3, 2), date(2026, 3, 9), utc(2026, 3, 9, 13)),  # spans spring-forward
        (date(2026, 10, 26), date(2026, 11, 2), utc(2026, 11, 2, 14)),  # spans fall-back
        (date(2026, 11, 19), date(2026, 11, 26), utc(2026, 11, 26, 14)),  # calendar: lands on Thanksgiving
        (date(2026, 12, 28), date(2027, 1, 4), utc(2027, 1, 4, 14)),
    ],
)
def test_waiting_period(notice_on: date, end: date, over_at: datetime) -> None:
    assert s.waiting_period_end(notice_on) == end
    assert s.waiting_period_over_at(notice_on, NY) == over_at


# ------------------------------------------------------------------------------------------- waivers


@pytest.mark.parametrize(
    ("decided_at", "due", "overdue"),
    [
        (utc(2026, 1, 14, 15), utc(2026, 1, 16, 15), utc(2026, 1, 17, 15)),
        # exact hours across spring-forward: the local wall time shifts by one hour
        (ny(2026, 3, 6, 10), utc(2026, 3, 8, 15), utc(2026, 3, 9, 15)),
        # across a holiday weekend: no business-day adjustment
        (utc(2026, 7, 2, 12), utc(2026, 7, 4, 12), utc(2026, 7, 5, 12)),
        (
            datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            utc(2026, 1, 3, 5),
            utc(2026, 1, 4, 5),
        ),
    ],
)
def test_waiver_report(decided_at: datetime, due: datetime, overdue: datetime) -> None:
    deadline = s.waiver_report_deadline(decided_at)
    assert deadline == overdue
    assert_utc(deadline)
    reminders = s.waiver_report_reminders(decided_at)
    assert reminders == [("due", due), ("overdue", overdue)]
    for _, value in reminders:
        assert_utc(value)


@pytest.mark.parametrize(
    ("issued_on", "max_until"),
    [
        (date(2024, 2, 29), date(2025, 2, 28)),
        (date(2024, 2, 28), date(2025, 2, 28)),
        (date(2024, 3, 1), date(2025, 3, 1)),
        (date(2023, 2, 28), date(2024, 2, 28)),
        (date(2026, 12, 31), date(2027, 12, 31)),
    ],
)
def test_waiver_max_until(issued_on: date, max_until: date) -> None:
    assert s.waiver_max_until(issued_on) == max_until


@pytest.mark.parametrize(
    ("until", "expires_at"),
    [
        (date(2026, 1, 15), utc(2026, 1, 16, 5)),  # midnight EST
        (date(2026, 7, 15), utc(2026, 7, 16, 4)),  # midnight EDT
        (date(2026, 3, 7), utc(2026, 3, 8, 5)),  # midnight before spring-forward is still EST
        (date(2026, 10, 31), utc(2026, 11, 1, 4)),  # midnight before fall-back is still EDT
    ],
)
def test_waiver_expires_at(until: date, expires_at: datetime) -> None:
    assert s.waiver_expires_at(until, NY) == expires_at


def test_waiver_expiry_reminders() -> None:
    # In force through 2026-11-30 -> expires at local midnight starting 2026-12-01.
    got = s.waiver_expiry_reminders(date(2026, 11, 30), NY)
    assert got == [
        ("30d", utc(2026, 11, 1, 14)),  # 2026-11-01 09:00 EST (fall-back day)
        ("7d", utc(2026, 11, 24, 14)),
        ("1d", utc(2026, 11, 30, 14)),  # the last day in force
        ("expired", utc(2026, 12, 1, 5)),
    ]
    times = [value for _, value in got]
    assert times == sorted(times)
    for value in times:
        assert_utc(value)


def test_waiver_expiry_reminders_summer() -> None:
    got = dict(s.waiver_expiry_reminders(date(2026, 8, 31), NY, hour=10))
    assert got == {
        "30d": utc(2026, 8, 2, 14),
        "7d": utc(2026, 8, 25, 14),
        "1d": utc(2026, 8, 31, 14),
        "expired": utc(2026, 9, 1, 4),
    }


# -------------------------------------------------------------------------------- §4(b) excluded notice


@pytest.mark.parametrize(
    ("awarded_on", "due", "reminders"),
    [
        (
            date(2024, 9, 27),
            date(2024, 11, 11),  # Veterans Day 2024: calendar deadline, not rolled
            [
                ("30d", utc(2024, 10, 27, 13)),  # Sun 09:00 EDT
                ("40d", utc(2024, 11, 6, 14)),  # after fall-back (2024-11-03): 09:00 EST
                ("45d", utc(2024, 11, 11, 14)),
            ],
        ),
        (
            date(2026, 1, 2),
            date(2026, 2, 16),
            [("30d", utc(2026, 2, 1, 14)), ("40d", utc(2026, 2, 11, 14)), ("45d", utc(2026, 2, 16, 14))],
        ),
    ],
)
def test_excluded_notice(awarded_on: date, due: date, reminders: list[tuple[str, datetime]]) -> None:
    assert s.excluded_notice_due(awarded_on) == due
    assert s.excluded_notice_reminders(awarded_on, NY) == reminders


# ---------------------------------------------------------------------------------------------- misc


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (ny(2026, 3, 4, 12), utc(2026, 3, 9, 13)),  # Wed -> Mon after spring-forward
        (ny(2026, 3, 9, 8, 59), utc(2026, 3, 9, 13)),  # Monday before 09:00 -> same day
        (ny(2026, 3, 9, 9, 0), utc(2026, 3, 16, 13)),  # exactly 09:00 -> strictly after -> next week
        (ny(2026, 3, 9, 10), utc(2026, 3, 16, 13)),
        (ny(2026, 10, 28, 12), utc(2026, 11, 2, 14)),  # Mon after fall-back
        (ny(2026, 11, 1, 23), utc(2026, 11, 2, 14)),  # Sunday evening
        (ny(2026, 1, 15, 12), utc(2026, 1, 19, 14)),  # MLK Day Monday: not skipped
        (utc(2026, 3, 9, 3), utc(2026, 3, 9, 13)),  # Sun 23:00 EDT in UTC terms Monday already
    ],
)
def test_next_weekly_digest(after: datetime, expected: datetime) -> None:
    got = s.next_weekly_digest(after, NY)
    assert got == expected
    assert_utc(got)


def test_skip_past() -> None:
    times = [
        ("a", utc(2026, 1, 1, 9)),
        ("b", utc(2026, 1, 2, 9)),
        ("c", utc(2026, 1, 3, 9)),
    ]
    assert s.skip_past(times, utc(2026, 1, 2, 9)) == [("c", utc(2026, 1, 3, 9))]  # due == now is not kept
    assert s.skip_past(times, utc(2025, 12, 31)) == times
    assert s.skip_past(times, utc(2026, 2, 1)) == []
    assert s.skip_past([], utc(2026, 2, 1)) == []


@pytest.mark.parametrize(
    ("now", "choice", "expected"),
    [
        (ny(2026, 1, 14, 15), "tomorrow", utc(2026, 1, 15, 14)),
        (ny(2026, 1, 14, 15), "3d", utc(2026, 1, 20, 14)),  # business days: Thu, Fri, (MLK Day Mon 19), Tue
        (ny(2026, 3, 7, 15), "tomorrow", utc(2026, 3, 9, 13)),  # Saturday -> Monday, across spring-forward
        (ny(2026, 10, 31, 15), "tomorrow", utc(2026, 11, 2, 14)),  # Saturday -> Monday, across fall-back
        (ny(2026, 11, 27, 15), "tomorrow", utc(2026, 11, 30, 14)),  # Friday -> Monday, never a Saturday
        (ny(2026, 12, 24, 15), "tomorrow", utc(2026, 12, 28, 14)),  # Christmas Friday, then the weekend
        (ny(2026, 11, 25, 9), "3d", utc(2026, 12, 1, 14)),  # Thanksgiving and the weekend skipped
        (utc(2026, 1, 15, 2), "tomorrow", utc(2026, 1, 15, 14)),  # 21:00 local on the 14th
        (ny(2026, 1, 14, 7), "tomorrow", utc(2026, 1, 15, 14)),  # even before 09:00 today
    ],
)
def test_snooze_until(now: datetime, choice: str, expected: datetime) -> None:
    got = s.snooze_until(now, choice, NY)
    assert got == expected
    assert_utc(got)


@pytest.mark.parametrize("choice", ["", "Tomorrow", "1d", "week", "3 days"])
def test_snooze_until_rejects_unknown_choice(choice: str) -> None:
    with pytest.raises(ValueError):
        s.snooze_until(utc(2026, 1, 14, 15), choice, NY)


NAIVE = datetime(2026, 1, 14, 15, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: s.stopwork_next_ping(NAIVE, NY),
        lambda: s.stopwork_days_elapsed(date(2026, 1, 1), NAIVE, NY),
        lambda: s.stopwork_business_days_elapsed(date(2026, 1, 1), NAIVE, NY),
        lambda: s.unanswered_first_ping(NAIVE, NY),
        lambda: s.unanswered_next_ping(NAIVE, NY),
        lambda: s.escalation_due(NAIVE, NY),
        lambda: s.waiver_report_deadline(NAIVE),
        lambda: s.waiver_report_reminders(NAIVE),
        lambda: s.next_weekly_digest(NAIVE, NY),
        lambda: s.skip_past([("a", utc(2026, 1, 1))], NAIVE),
        lambda: s.skip_past([("a", NAIVE)], utc(2026, 1, 1)),
        lambda: s.snooze_until(NAIVE, "tomorrow", NY),
    ],
)
def test_naive_datetimes_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()


# ----------------------------------------------------------------------------------------- properties

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
hours = st.integers(min_value=0, max_value=23)


def _check_business(value: datetime, hour: int) -> None:
    assert_utc(value)
    local = value.astimezone(NY.zone)
    assert local.weekday() < 5
    assert NY.is_business_day(local.date())
    assert local.hour == hour or NY.at_local(local.date(), hour) == value


@given(d=dates, hour=hours)
def test_stopwork_first_ping_property(d: date, hour: int) -> None:
    got = s.stopwork_first_ping(d, NY, hour)
    _check_business(got, hour)
    assert NY.local_date(got) > d
    assert NY.business_days_between(d, NY.local_date(got)) == 1


@given(at=instants, hour=hours)
def test_instant_based_pings_property(at: datetime, hour: int) -> None:
    first = s.unanswered_first_ping(at, NY, hour)
    nxt = s.unanswered_next_ping(first, NY, hour)
    esc = s.escalation_due(at, NY, hour)
    stop = s.stopwork_next_ping(at, NY, hour)
    for value in (first, nxt, esc, stop):
        _check_business(value, hour)
        assert value > at
    asked_on = NY.local_date(at)
    assert NY.business_days_between(asked_on, NY.local_date(first)) == 2
    assert NY.business_days_between(NY.local_date(first), NY.local_date(nxt)) == 2
    assert NY.business_days_between(asked_on, NY.local_date(esc)) == 5
    assert first < esc


@given(at=instants, d=dates, hour=hours, choice=st.sampled_from(["tomorrow", "3d"]))
def test_all_results_are_aware_utc(at: datetime, d: date, hour: int, choice: str) -> None:
    values: list[datetime] = [
        s.waiting_period_over_at(d, NY, hour),
        s.waiver_report_deadline(at),
        s.waiver_expires_at(d, NY),
        s.next_weekly_digest(at, NY, hour),
        s.snooze_until(at, choice, NY, hour),
    ]
    values += [v for _, v in s.waiver_report_reminders(at)]
    values += [v for _, v in s.waiver_expiry_reminders(d, NY, hour)]
    values += [v for _, v in s.excluded_notice_reminders(d, NY, hour)]
    for value in values:
        assert_utc(value)
    digest = s.next_weekly_digest(at, NY, hour)
    assert digest > at
    assert digest - at <= timedelta(days=7, hours=1)
    assert digest.astimezone(NY.zone).weekday() == 0
    assert s.snooze_until(at, choice, NY, hour) > at - timedelta(hours=24)


@given(d=dates)
def test_waiver_max_until_property(d: date) -> None:
    got = s.waiver_max_until(d)
    assert got.year == d.year + 1
    assert 365 <= (got - d).days <= 366
    assert (got.month, got.day) == ((d.month, d.day) if (d.month, d.day) != (2, 29) else (2, 28))


@given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))
)
def test_a_snooze_always_lands_on_a_business_day_at_the_hour(at: datetime) -> None:
    for choice in s.SNOOZE_CHOICES:
        got = s.snooze_until(at, choice, NY, 9)
        assert NY.is_business_day(NY.local_date(got)) and NY.to_local(got).hour == 9 and got > at


@pytest.mark.parametrize(
    ("label", "today", "superseded"),
    [
        ("30d", date(2026, 12, 2), False),  # on time: 30 days left
        ("30d", date(2026, 12, 25), True),  # late, and "7d" is due too
        ("30d", date(2026, 12, 20), False),  # late, but nothing later due yet: it says 12 days left
        ("7d", date(2026, 12, 25), False),
        ("7d", date(2026, 12, 31), True),  # "1d" is due too
        ("1d", date(2026, 12, 31), False),
        ("1d", date(2027, 1, 1), True),  # the waiver has expired: "expired" says so
        ("expired", date(2027, 1, 5), False),
    ],
)
def test_a_late_expiry_reminder_gives_way_to_the_later_one(label: str, today: date, superseded: bool) -> None:
    assert s.waiver_expiry_superseded(label, date(2026, 12, 31), today) is superseded


def test_days_left_counts_the_last_day_in_force() -> None:
    until = date(2026, 12, 31)
    reminders = dict(s.waiver_expiry_reminders(until, NY))
    for label, n in (("30d", 30), ("7d", 7), ("1d", 1)):
        left = s.waiver_days_left(until, NY.local_date(reminders[label]))
        assert left == n and s.days_left_words(left) == (f"{n} days left" if n > 1 else "1 day left")


def test_digest_week_and_its_deadlines_each_once() -> None:
    today = date(2026, 12, 9)  # a Wednesday: a digest sent late still names its week
    assert s.digest_week(today) == (date(2026, 12, 7), today, date(2026, 12, 15))
    deadlines = [
        ("CR-1", "§4(b) notice due", date(2026, 8, 1)),  # months old: overdue, not "this week"
        ("CR-1", "§4(b) notice due", date(2026, 8, 1)),  # the same deadline twice: listed once
        ("CR-2", "waiver's last day in force", date(2026, 12, 15)),
        ("CR-3", "72-hour waiver report due", date(2026, 12, 9)),
        ("CR-4", "waiver's last day in force", date(2026, 12, 16)),  # after the coming 7 days
        ("CR-5", "72-hour waiver report due", date(2026, 12, 8)),
    ]
    overdue, this_week = s.split_deadlines(deadlines, today)
    assert overdue == [("CR-1", "§4(b) notice due", date(2026, 8, 1)), deadlines[5]]
    assert this_week == [deadlines[3], deadlines[2]]
