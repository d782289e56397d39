"""Business-day calendar: US federal holidays plus weekends, in one IANA time zone.

Pure: no clock of its own. Every instant it returns is an aware UTC ``datetime``; local time is used only
inside the calculations. Holidays come from the ``holidays`` package's US public holidays (the eleven
federal holidays and their "(observed)" weekday substitutes), computed lazily and cached per year.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["BusinessCalendar"]

_SATURDAY = 5
_ONE_DAY = timedelta(days=1)


def _federal_holidays_of(year: int) -> dict[date, str]:
    """The US federal holidays (and observed days) that fall in ``year``, keyed by date."""
    # Generate the neighbouring years too, so an observed day that crosses a year boundary (New Year's Day
    # on a Saturday is observed on 31 December of the year before) is found whichever year produces it.
    table = holidays.country_holidays("US", years=[year - 1, year, year + 1])
    return {d: name for d, name in table.items() if d.year == year}


class BusinessCalendar:
    """Business days (Mon-Fri, not a US federal holiday) and local wall-clock arithmetic in one time zone."""

    def __init__(self, zone_name: str) -> None:
        """Build a calendar for an IANA zone name such as "America/New_York"; raises ValueError if unknown."""
        if not isinstance(zone_name, str) or not zone_name.strip():
            raise ValueError(f"unknown time zone: {zone_name!r}")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone: {zone_name!r}") from exc
        self._zone_name = zone_name
        self._zone = zone
        self._holidays: dict[int, dict[date, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BusinessCalendar({self._zone_name!r})"

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._zone

    @property
    def zone_name(self) -> str:
        """The IANA name the calendar was built with."""
        return self._zone_name

    # ----------------------------------------------------------------------------------------- holidays

    def _year(self, year: int) -> dict[date, str]:
        table = self._holidays.get(year)
        if table is None:
            with self._lock:
                table = self._holidays.get(year)
                if table is None:
                    table = _federal_holidays_of(year)
                    self._holidays[year] = table
        return table

    def holiday_name(self, d: date) -> str | None:
        """The federal holiday name on ``d`` (e.g. "Independence Day (observed)"), or None if none."""
        return self._year(d.year).get(_as_date(d))

    def is_holiday(self, d: date) -> bool:
        """True if ``d`` is a US federal holiday or an observed substitute day."""
        return self.holiday_name(d) is not None

    def is_business_day(self, d: date) -> bool:
        """True if ``d`` is a Monday-Friday that is not a federal holiday (nor an observed holiday)."""
        d = _as_date(d)
        return d.weekday() < _SATURDAY and d not in self._year(d.year)

    def holidays_between(self, start: date, end: date) -> list[tuple[date, str]]:
        """Federal holidays (incl. observed days) in the closed interval [start, end], in date order."""
        start, end = _as_date(start), _as_date(end)
        found: list[tuple[date, str]] = []
        for year in range(start.year, end.year + 1):
            found.extend((d, n) for d, n in self._year(year).items() if start <= d <= end)
        return sorted(found)

    # ------------------------------------------------------------------------------------ business days

    def next_business_day(self, d: date) -> date:
        """The first business day strictly after ``d``."""
        d = _as_date(d) + _ONE_DAY
        while not self.is_business_day(d):
            d += _ONE_DAY
        return d

    def add_business_days(self, d: date, n: int) -> date:
        """The n-th business day after ``d``; n == 0 gives ``d`` itself if a business day, else the next one.

        Raises ValueError if n is negative. For n >= 1 the result is ``next_business_day`` applied n times,
        so ``business_days_between(d, add_business_days(d, n)) == n`` for any ``d``. For n == 0 the choice is
        "roll forward": a deadline that lands on a weekend or holiday moves to the next business day.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int")
        if n < 0:
            raise ValueError("n must be >= 0")
        d = _as_date(d)
        if n == 0:
            return d if self.is_business_day(d) else self.next_business_day(d)
        for _ in range(n):
            d = self.next_business_day(d)
        return d

    def business_days_between(self, start: date, end: date) -> int:
        """The number of business days in the half-open interval (start, end]; 0 if end <= start."""
        start, end = _as_date(start), _as_date(end)
        if end <= start:
            return 0
        days = (end - start).days
        weeks, rest = divmod(days, 7)
        count = weeks * 5
        d = start + timedelta(days=weeks * 7)
        for _ in range(rest):
            d += _ONE_DAY
            if d.weekday() < _SATURDAY:
                count += 1
        first = start + _ONE_DAY
        count -= sum(1 for h, _ in self.holidays_between(first, end) if h.weekday() < _SATURDAY)
        return count

    # -------------------------------------------------------------------------------------- local time

    def local_date(self, instant: datetime) -> date:
        """The calendar date of an aware instant in this zone; raises ValueError for a naive datetime."""
        _require_aware(instant)
        return instant.astimezone(self._zone).date()

    def local_now_date(self, now: datetime) -> date:
        """Alias of ``local_date`` for "today" given ``now``; raises ValueError for a naive datetime."""
        return self.local_date(now)

    def to_local(self, instant: datetime) -> datetime:
        """The aware instant expressed in this zone (for display); raises ValueError for a naive datetime."""
        _require_aware(instant)
        return instant.astimezone(self._zone)

    def at_local(self, d: date, hour: int, minute: int = 0) -> datetime:
        """The aware UTC instant of local wall time ``hour:minute`` on ``d``; ValueError if out of range.

        Across DST: a wall time that does not exist (spring-forward gap) moves forward to the first valid
        instant after the gap (02:30 on a 02:00->03:00 night gives 03:00 local); a wall time that occurs
        twice (fall-back) takes the first occurrence (fold=0, the pre-transition offset).
        """
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise ValueError(f"hour must be an int in 0..23, got {hour!r}")
        if isinstance(minute, bool) or not isinstance(minute, int) or not 0 <= minute <= 59:
            raise ValueError(f"minute must be an int in 0..59, got {minute!r}")
        wall = datetime.combine(_as_date(d), time(hour, minute))
        first = wall.replace(tzinfo=self._zone, fold=0)
        utc0 = first.astimezone(UTC)
        if utc0.astimezone(self._zone).replace(tzinfo=None) == wall:
            return utc0  # exists; if ambiguous, fold=0 is the first occurrence
        # Nonexistent: fold=0 uses the pre-gap offset (lands after the transition), fold=1 the post-gap one
        # (lands before it). The transition instant lies between; find it to the second.
        utc1 = wall.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        lo, hi = min(utc0, utc1), max(utc0, utc1)
        after = hi.astimezone(self._zone).utcoffset()
        while (hi - lo) > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(microsecond=0)
            if mid <= lo:
                break
            if mid.astimezone(self._zone).utcoffset() == after:
                hi = mid
            else:
                lo = mid
        return hi

    def start_of_local_day(self, d: date) -> datetime:
        """The aware UTC instant of local midnight starting ``d`` (first valid instant if it is skipped)."""
        return self.at_local(d, 0, 0)


def _as_date(d: date) -> date:
    if isinstance(d, datetime):
        raise TypeError("expected a date, got a datetime; use local_date() to convert an instant")
    if not isinstance(d, date):
        raise TypeError(f"expected a date, got {type(d).__name__}")
    return d


def _require_aware(instant: datetime) -> None:
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
