"""BusinessCalendar: weekends, US federal holidays (incl. observed days), local wall time across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.calendar import BusinessCalendar

NY = BusinessCalendar("America/New_York")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# ----------------------------------------------------------------------------------------- construction


def test_zone_is_zoneinfo() -> None:
    assert NY.zone.key == "America/New_York"
    assert NY.zone_name == "America/New_York"


@pytest.mark.parametrize("name", ["Nope/Nowhere", "", "America", "../etc/passwd", "America/New_York/", "   "])
def test_unknown_zone_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(name)


# ------------------------------------------------------------------------------------------- holidays


@pytest.mark.parametrize(
    ("d", "business", "holiday"),
    [
        # weekends
        (date(2026, 3, 7), False, None),  # Saturday
        (date(2026, 3, 8), False, None),  # Sunday
        (date(2026, 3, 9), True, None),  # Monday
        (date(2026, 3, 6), True, None),  # Friday
        # Thanksgiving and the day after (not a federal holiday)
        (date(2026, 11, 26), False, "Thanksgiving Day"),
        (date(2026, 11, 27), True, None),
        # Independence Day 2026 is a Saturday -> observed Friday 3 July
        (date(2026, 7, 3), False, "Independence Day (observed)"),
        (date(2026, 7, 4), False, "Independence Day"),
        (date(2026, 7, 6), True, None),
        # Christmas 2027 is a Saturday -> observed Friday 24 December
        (date(2027, 12, 24), False, "Christmas Day (observed)"),
        (date(2027, 12, 25), False, "Christmas Day"),
        (date(2027, 12, 23), True, None),
        # New Year 2028 is a Saturday: the holidays package observes it on Friday 31 December 2027
        (date(2027, 12, 31), False, "New Year's Day (observed)"),
        (date(2028, 1, 1), False, "New Year's Day"),
        (date(2028, 1, 3), True, None),
        # Columbus Day 2024 (the ICE/Paragon timeline)
        (date(2024, 10, 14), False, "Columbus Day"),
        (date(2024, 10, 15), True, None),
        # other federal holidays
        (date(2026, 1, 19), False, "Martin Luther King Jr. Day"),
        (date(2026, 2, 16), False, "Washington's Birthday"),
        (date(2026, 5, 25), False, "Memorial Day"),
        (date(2026, 6, 19), False, "Juneteenth National Independence Day"),
        (date(2027, 6, 18), False, "Juneteenth National Independence Day (observed)"),
        (date(2026, 9, 7), False, "Labor Day"),
        (date(2026, 11, 11), False, "Veterans Day"),
        (date(2028, 11, 10), False, "Veterans Day (observed)"),
        # not federal holidays
        (date(2026, 12, 24), True, None),  # Christmas Eve on a Thursday
        (date(2026, 12, 31), True, None),  # New Year 2027 is a Friday: no observed day
        (date(2026, 2, 14), False, None),  # Saturday, no holiday
    ],
)
def test_business_days_and_holidays(d: date, business: bool, holiday: str | None) -> None:
    assert NY.is_business_day(d) is business
    assert NY.holiday_name(d) == holiday
    assert NY.is_holiday(d) is (holiday is not None)


def test_new_year_observed_found_whichever_year_is_asked_first() -> None:
    fresh = BusinessCalendar("America/New_York")
    assert fresh.holiday_name(date(2028, 1, 1)) == "New Year's Day"
    assert not fresh.is_business_day(date(2027, 12, 31))
    fresh = BusinessCalendar("America/Los_Angeles")
    assert not fresh.is_business_day(date(2027, 12, 31))


def test_holidays_between_crosses_years() -> None:
    got = NY.holidays_between(date(2027, 12, 20), date(2028, 1, 5))
    assert got == [
        (date(2027, 12, 24), "Christmas Day (observed)"),
        (date(2027, 12, 25), "Christmas Day"),
        (date(2027, 12, 31), "New Year's Day (observed)"),
        (date(2028, 1, 1), "New Year's Day"),
    ]


def test_holidays_are_zone_independent() -> None:
    la = BusinessCalendar("Pacific/Honolulu")
    assert la.holiday_name(date(2026, 7, 3)) == "Independence Day (observed)"


# ------------------------------------------------------------------------------------- business days


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 3, 6), date(2026, 3, 9)),  # Fri -> Mon
        (date(2026, 3, 7), date(2026, 3, 9)),  # Sat -> Mon
        (date(2026, 3, 9), date(2026, 3, 10)),  # Mon -> Tue
        (date(2026, 7, 2), date(2026, 7, 6)),  # Thu -> (Fri observed, weekend) -> Mon
        (date(2026, 11, 25), date(2026, 11, 27)),  # Wed -> (Thanksgiving) -> Fri
        (date(2027, 12, 23), date(2027, 12, 27)),  # Thu -> (Christmas observed, weekend) -> Mon
        (date(2027, 12, 30), date(2028, 1, 3)),  # Thu -> (New Year observed, weekend) -> Mon
        (date(2024, 10, 11), date(2024, 10, 15)),  # Fri -> (weekend, Columbus Day) -> Tue
        (date(2024, 10, 8), date(2024, 10, 9)),
    ],
)
def test_next_business_day(d: date, expected: date) -> None:
    assert NY.next_business_day(d) == expected


@pytest.mark.parametrize(
    ("d", "n", "expected"),
    [
        (date(2026, 3, 9), 0, date(2026, 3, 9)),  # business day: itself
        (date(2026, 3, 7), 0, date(2026, 3, 9)),  # Saturday rolls forward
        (date(2026, 11, 26), 0, date(2026, 11, 27)),  # holiday rolls forward
        (date(2026, 3, 9), 1, date(2026, 3, 10)),
        (date(2026, 3, 6), 2, date(2026, 3, 10)),  # Fri + 2 -> Tue
        (date(2026, 3, 7), 2, date(2026, 3, 10)),  # Sat + 2 -> Tue
        (date(2026, 3, 9), 5, date(2026, 3, 16)),  # a full week
        (date(2026, 11, 24), 2, date(2026, 11, 27)),  # Tue + 2 over Thanksgiving -> Fri
        (date(2026, 11, 20), 5, date(2026, 11, 30)),  # Fri + 5 over Thanksgiving -> Mon
        (date(2027, 12, 22), 3, date(2027, 12, 28)),  # Wed -> Thu 23, (Fri 24 observed) Mon 27, Tue 28
    ],
)
def test_add_business_days(d: date, n: int, expected: date) -> None:
    assert NY.add_business_days(d, n) == expected


def test_add_business_days_over_year_end_holidays() -> None:
    # Thu 30 Dec 2027 -> Mon 3 Jan 2028 (Fri 31 is New Year observed)
    assert NY.add_business_days(date(2027, 12, 30), 1) == date(2028, 1, 3)
    assert NY.add_business_days(date(2027, 12, 23), 1) == date(2027, 12, 27)


def test_add_business_days_rejects_negative() -> None:
    with pytest.raises(ValueError):
        NY.add_business_days(date(2026, 3, 9), -1)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 9), date(2026, 3, 9), 0),  # empty
        (date(2026, 3, 10), date(2026, 3, 9), 0),  # reversed
        (date(2026, 3, 9), date(2026, 3, 10), 1),
        (date(2026, 3, 6), date(2026, 3, 9), 1),  # Fri -> Mon: only Mon counts
        (date(2026, 3, 6), date(2026, 3, 8), 0),  # Fri -> Sun: weekend only
        (date(2026, 3, 9), date(2026, 3, 16), 5),
        (date(2026, 11, 23), date(2026, 11, 30), 4),  # Thanksgiving week
        (date(2026, 6, 29), date(2026, 7, 6), 4),  # observed Independence Day
        (date(2027, 12, 20), date(2028, 1, 3), 8),  # 21-23, 27-30, Jan 3: not 24 or 31 (observed)
        (date(2024, 10, 8), date(2024, 10, 15), 4),  # Wed, Thu, Fri, (Columbus), Tue
        (date(2026, 1, 1), date(2027, 1, 1), 250),  # whole year 2026: 261 weekdays - 11 holidays
    ],
)
def test_business_days_between(start: date, end: date, expected: int) -> None:
    assert NY.business_days_between(start, end) == expected


# ---------------------------------------------------------------------------------------- local time


@pytest.mark.parametrize(
    ("d", "hour", "expected"),
    [
        # 09:00 New York: 14:00 UTC in winter (EST), 13:00 UTC in summer (EDT)
        (date(2026, 1, 15), 9, utc(2026, 1, 15, 14)),
        (date(2026, 7, 15), 9, utc(2026, 7, 15, 13)),
        # around spring-forward (Sunday 2026-03-08)
        (date(2026, 3, 6), 9, utc(2026, 3, 6, 14)),
        (date(2026, 3, 7), 9, utc(2026, 3, 7, 14)),
        (date(2026, 3, 8), 9, utc(2026, 3, 8, 13)),
        (date(2026, 3, 9), 9, utc(2026, 3, 9, 13)),
        # around fall-back (Sunday 2026-11-01)
        (date(2026, 10, 30), 9, utc(2026, 10, 30, 13)),
        (date(2026, 10, 31), 9, utc(2026, 10, 31, 13)),
        (date(2026, 11, 1), 9, utc(2026, 11, 1, 14)),
        (date(2026, 11, 2), 9, utc(2026, 11, 2, 14)),
        # the nights themselves
        (date(2026, 3, 8), 1, utc(2026, 3, 8, 6)),  # 01:00 EST
        (date(2026, 3, 8), 3, utc(2026, 3, 8, 7)),  # 03:00 EDT
        (date(2026, 11, 1), 0, utc(2026, 11, 1, 4)),  # midnight EDT
        (date(2026, 11, 1), 2, utc(2026, 11, 1, 7)),  # 02:00 EST
    ],
)
def test_at_local_dst(d: date, hour: int, expected: datetime) -> None:
    got = NY.at_local(d, hour)
    assert got == expected
    assert got.tzinfo is UTC


def test_spring_forward_gap_moves_to_first_valid_instant() -> None:
    # 02:30 on 2026-03-08 does not exist in New York; the first valid instant after it is 03:00 EDT.
    got = NY.at_local(date(2026, 3, 8), 2, 30)
    assert got == utc(2026, 3, 8, 7, 0)
    assert got.astimezone(NY.zone).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 0)
    assert NY.at_local(date(2026, 3, 8), 2, 0) == utc(2026, 3, 8, 7, 0)
    assert NY.at_local(date(2026, 3, 8), 2, 59) == utc(2026, 3, 8, 7, 0)


def test_fall_back_ambiguous_time_takes_first_occurrence() -> None:
    # 01:30 on 2026-11-01 happens twice: first at EDT (05:30 UTC), then at EST (06:30 UTC).
    got = NY.at_local(date(2026, 11, 1), 1, 30)
    assert got == utc(2026, 11, 1, 5, 30)
    assert got.astimezone(NY.zone).utcoffset() == timedelta(hours=-4)


def test_gap_in_other_zones() -> None:
    # Europe/London: 01:30 on 2026-03-29 does not exist; first valid instant is 02:00 BST = 01:00 UTC.
    london = BusinessCalendar("Europe/London")
    assert london.at_local(date(2026, 3, 29), 1, 30) == utc(2026, 3, 29, 1, 0)
    # Lord Howe Island has a 30-minute DST shift: 02:00 -> 02:30 on 2026-10-04.
    lhi = BusinessCalendar("Australia/Lord_Howe")
    got = lhi.at_local(date(2026, 10, 4), 2, 15)
    assert got.astimezone(lhi.zone).replace(tzinfo=None) == datetime(2026, 10, 4, 2, 30)


def test_midnight_gap_start_of_local_day() -> None:
    # America/Havana springs forward at midnight: 2026-03-08 00:00 does not exist -> 01:00 CDT.
    havana = BusinessCalendar("America/Havana")
    got = havana.start_of_local_day(date(2026, 3, 8))
    assert got.astimezone(havana.zone).replace(tzinfo=None) == datetime(2026, 3, 8, 1, 0)
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 1, 15), utc(2026, 1, 15, 5)),
        (date(2026, 7, 15), utc(2026, 7, 15, 4)),
        (date(2026, 3, 8), utc(2026, 3, 8, 5)),
        (date(2026, 3, 9), utc(2026, 3, 9, 4)),
        (date(2026, 11, 1), utc(2026, 11, 1, 4)),
        (date(2026, 11, 2), utc(2026, 11, 2, 5)),
    ],
)
def test_start_of_local_day(d: date, expected: datetime) -> None:
    assert NY.start_of_local_day(d) == expected


@pytest.mark.parametrize(
    ("bad_hour", "bad_minute"),
    [(24, 0), (-1, 0), (9, 60), (9, -1)],
)
def test_at_local_rejects_out_of_range(bad_hour: int, bad_minute: int) -> None:
    with pytest.raises(ValueError):
        NY.at_local(date(2026, 1, 1), bad_hour, bad_minute)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 1, 15, 4, 59), date(2026, 1, 14)),  # 23:59 EST the day before
        (utc(2026, 1, 15, 5, 0), date(2026, 1, 15)),
        (utc(2026, 7, 15, 3, 59), date(2026, 7, 14)),
        (utc(2026, 7, 15, 4, 0), date(2026, 7, 15)),
        (datetime(2026, 7, 15, 1, 0, tzinfo=timezone(timedelta(hours=2))), date(2026, 7, 14)),
    ],
)
def test_local_date(instant: datetime, expected: date) -> None:
    assert NY.local_date(instant) == expected
    assert NY.local_now_date(instant) == expected


def test_local_date_rejects_naive() -> None:
    with pytest.raises(ValueError):
        NY.local_date(datetime(2026, 1, 15, 12, 0))
    with pytest.raises(ValueError):
        NY.local_now_date(datetime(2026, 1, 15, 12, 0))


def test_date_methods_reject_datetimes() -> None:
    with pytest.raises(TypeError):
        NY.is_business_day(utc(2026, 1, 15, 12))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- properties

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))


@given(d=dates, n=st.integers(min_value=0, max_value=60))
def test_add_business_days_lands_on_business_day(d: date, n: int) -> None:
    got = NY.add_business_days(d, n)
    assert NY.is_business_day(got)
    assert got.weekday() < 5
    assert got >= d


@given(d=dates, n=st.integers(min_value=1, max_value=60))
def test_between_inverts_add(d: date, n: int) -> None:
    if not NY.is_business_day(d):
        d = NY.next_business_day(d)
    assert NY.business_days_between(d, NY.add_business_days(d, n)) == n


@given(start=dates, span=st.integers(min_value=-10, max_value=400))
def test_between_matches_day_by_day_count(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    naive = sum(1 for i in range(1, span + 1) if NY.is_business_day(start + timedelta(days=i)))
    assert NY.business_days_between(start, end) == naive


@given(d=dates)
def test_next_business_day_is_strictly_after_and_business(d: date) -> None:
    nxt = NY.next_business_day(d)
    assert nxt > d
    assert NY.is_business_day(nxt)
    assert NY.business_days_between(d, nxt) == 1


@given(
    zone=st.sampled_from(["America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Lord_Howe"]),
    d=dates,
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_at_local_is_aware_utc_and_round_trips(zone: str, d: date, hour: int, minute: int) -> None:
    cal = BusinessCalendar(zone)
    got = cal.at_local(d, hour, minute)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)
    assert cal.local_date(got) == d
    wall = got.astimezone(cal.zone).replace(tzinfo=None)
    requested = datetime(d.year, d.month, d.day, hour, minute)
    # Exact unless the wall time fell in a gap, in which case it moved forward by less than the gap.
    assert timedelta(0) <= wall - requested < timedelta(hours=1)
