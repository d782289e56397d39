"""The order's clocks of one contract as dated spans: what the `timeline` picture, drafts and the annual report draw.

Pure: plain dated facts in, ``Span`` rows out; ``today`` is an argument. One lane per clock, in ``LANES`` order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bot.domain import clocks_far, schedule

__all__ = [
    "LANES",
    "as_of",
    "ClockFacts",
    "Span",
    "clock_spans",
    "term_end",
]

CONTRACT, STOPWORK, DECISION, NOTICE, WAIVER, EXCLUDED = (
    "Contract",
    "Stop-work",
    "Determination",
    "APNSA notice §2(g)",
    "Waiver §2(m)",
    "§4(b) notice",
)
LANES = (CONTRACT, STOPWORK, DECISION, NOTICE, WAIVER, EXCLUDED)

# kinds of span: how the picture draws them
PERIOD, DEADLINE, EVENT = "period", "deadline", "event"

WAIVER_REPORT_DAYS = schedule.WAIVER_REPORT_HOURS // 24  # §2(m): 72 hours, drawn in whole days


@dataclass(frozen=True)
class ClockFacts:
    """What the clocks of one contract are made of; every field is a local calendar date (None: not on record)."""

    ref: str
    awarded_on: date | None = None
    term: str | None = None  # the period of performance as filed: "12 months", "1 year", "ends=2025-09-26"
    term_ends_on: date | None = None  # the period of performance's end when recorded as a date
    purpose: str | None = None
    # every stop-work order: (issued, lifted); lifted None while it is in effect
    stopworks: tuple[tuple[date, date | None], ...] = ()
    stopwork_extended_until: date | None = None  # `stopwork-extend`: the order in effect runs to this day
    determination: str | None = None
    determined_on: date | None = None
    redetermination_on: date | None = None
    certified_on: date | None = None
    certified_by: str | None = None
    notice_on: date | None = None
    cleared_on: date | None = None
    excluded_notice_on: date | None = None  # the §4(b) notice was sent (when the record holds it)
    waiver_issued_on: date | None = None
    waiver_until: date | None = None
    waiver_revoked_on: date | None = None
    waiver_reported_on: date | None = None
    revocation_reported_on: date | None = None
    closed_on: date | None = None


@dataclass(frozen=True)
class Span:
    """One bar or mark on a lane: a period (start..end), a deadline window, or an event (end None: one day).

    ``running`` marks a period still under way on ``today`` (drawn up to today and hatched); ``late`` a deadline
    missed (its report was not sent in time, or has not been and the deadline is past)."""

    lane: str
    label: str
    start: date
    end: date | None = None
    kind: str = PERIOD
    running: bool = False
    late: bool = False

    @property
    def last(self) -> date:
        """The last day the span covers."""
        return self.end if self.end is not None else self.start


_DURATION = re.compile(r"^\s*(\d{1,3})\s*(day|week|month|year)s?\s*$", re.IGNORECASE)
_ENDS = re.compile(r"(?:^|\b)(?:ends?\s*[=:]?\s*)?(\d{4}-\d{2}-\d{2})\s*$", re.IGNORECASE)


def _add_months(day: date, months: int) -> date:
    """``day`` plus whole months, on the last day of a shorter month (31 Jan + 1 month = 28/29 Feb)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("every month has a 28th")


def term_end(awarded_on: date | None, term: str | None) -> date | None:
    """The last day of the period of performance: ``ends=DATE`` (or a bare date), or award + a duration ("12
    months", "1 year", "90 days") less one day; None when the term says neither or the award date is unknown."""
    if not term:
        return None
    ends = _ENDS.search(term)
    if ends:
        try:
            return date.fromisoformat(ends.group(1))
        except ValueError:
            return None
    match = _DURATION.match(term)
    if match is None or awarded_on is None:
        return None
    n, unit = int(match.group(1)), match.group(2).lower()
    if n == 0:
        return None
    if unit == "day":
        return awarded_on + timedelta(days=n - 1)
    if unit == "week":
        return awarded_on + timedelta(days=7 * n - 1)
    months = n if unit == "month" else 12 * n
    return _add_months(awarded_on, months) - timedelta(days=1)


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _contract(f: ClockFacts, today: date) -> list[Span]:
    spans: list[Span] = []
    ends = f.term_ends_on or term_end(f.awarded_on, f.term)
    if f.awarded_on is not None:
        stop = f.closed_on or ends
        if stop is not None and stop < f.awarded_on:
            stop = f.awarded_on
        if stop is not None:
            label = "period of performance" if ends is not None else "award to close"
            spans.append(Span(CONTRACT, label, f.awarded_on, stop, PERIOD))
        else:
            spans.append(
                Span(CONTRACT, "since award", f.awarded_on, max(today, f.awarded_on), PERIOD, running=True)
            )
        spans.append(Span(CONTRACT, f"award {f.awarded_on.isoformat()}", f.awarded_on, None, EVENT))
    if f.closed_on is not None:
        spans.append(Span(CONTRACT, f"closed {f.closed_on.isoformat()}", f.closed_on, None, EVENT))
    elif ends is not None and f.awarded_on is not None and ends != f.awarded_on:
        spans.append(Span(CONTRACT, f"term ends {ends.isoformat()}", ends, None, EVENT))
    return spans


def _stopworks(f: ClockFacts, today: date) -> list[Span]:
    spans: list[Span] = []
    for issued, lifted in sorted(f.stopworks):
        if lifted is not None:
            length = (lifted - issued).days
            spans.append(Span(STOPWORK, f"stop-work {_days(length)}", issued, lifted, PERIOD))
            continue
        # FAR 52.242-15: an order not lifted lapses after its last day (issue + 90 days, or its extension's)
        last_day = clocks_far.stopwork_lapses_on(issued, f.stopwork_extended_until)
        lapsed = today > last_day
        until = max(min(today, last_day), issued)
        if f.closed_on is not None:
            until = max(min(until, f.closed_on), issued)
        length = (until - issued).days
        state = "lapsed" if lapsed else "in effect"
        running = not lapsed and f.closed_on is None
        spans.append(
            Span(STOPWORK, f"stop-work {_days(length)}, {state}", issued, until, PERIOD, running=running)
        )
        if running:
            what = "extended to" if f.stopwork_extended_until else "lapses"
            spans.append(Span(STOPWORK, f"{what} {last_day.isoformat()}", last_day, None, DEADLINE))
    return spans


def _decision(f: ClockFacts, today: date) -> list[Span]:
    spans: list[Span] = []
    if f.determined_on is not None:
        spans.append(
            Span(DECISION, f"determined {f.determination or ''}".rstrip(), f.determined_on, None, EVENT)
        )
    if f.redetermination_on is not None:
        spans.append(
            Span(
                DECISION,
                "re-determination §2(j) open",
                f.redetermination_on,
                max(today, f.redetermination_on),
                PERIOD,
                running=True,
            )
        )
    if f.certified_on is not None:
        spans.append(Span(DECISION, "certified §2(f)", f.certified_on, None, EVENT))
    return spans


def _notice(f: ClockFacts, today: date) -> list[Span]:
    if f.notice_on is None:
        return []
    end = schedule.waiting_period_end(f.notice_on)
    label = f"waiting period {_days(schedule.WAITING_PERIOD_DAYS)}"
    if f.cleared_on is not None and f.cleared_on < end:
        end, label = f.cleared_on, f"waiting period, cleared {f.cleared_on.isoformat()}"
    return [
        Span(NOTICE, label, f.notice_on, end, PERIOD, running=f.notice_on <= today < end),
        Span(NOTICE, f"notice {f.notice_on.isoformat()}", f.notice_on, None, EVENT),
    ]


def _report_window(decided: date, reported: date | None, today: date, what: str) -> list[Span]:
    due = decided + timedelta(days=WAIVER_REPORT_DAYS)
    late = (reported is not None and reported > due) or (reported is None and today > due)
    label = f"72-hour {what} report" + (", late" if late else "")
    spans = [Span(WAIVER, label, decided, due, DEADLINE, late=late)]
    if reported is not None:
        spans.append(Span(WAIVER, f"{what} report sent", reported, None, EVENT, late=reported > due))
    return spans


def _waiver(f: ClockFacts, today: date) -> list[Span]:
    if f.waiver_issued_on is None:
        return []
    spans: list[Span] = []
    until = f.waiver_until or f.waiver_issued_on
    ended = f.waiver_revoked_on if f.waiver_revoked_on is not None and f.waiver_revoked_on < until else until
    label = "waiver in force" if f.waiver_revoked_on is None else "waiver (revoked)"
    running = f.waiver_revoked_on is None and f.waiver_issued_on <= today <= until
    spans.append(Span(WAIVER, label, f.waiver_issued_on, ended, PERIOD, running=running))
    spans += _report_window(f.waiver_issued_on, f.waiver_reported_on, today, "waiver")
    if f.waiver_revoked_on is not None:
        spans.append(
            Span(WAIVER, f"revoked {f.waiver_revoked_on.isoformat()}", f.waiver_revoked_on, None, EVENT)
        )
        spans += _report_window(f.waiver_revoked_on, f.revocation_reported_on, today, "revocation")
    return spans


def _excluded(f: ClockFacts, today: date) -> list[Span]:
    if f.purpose != "excluded" or f.awarded_on is None:
        return []
    due = schedule.excluded_notice_due(f.awarded_on)
    sent = f.excluded_notice_on
    late = (sent is not None and sent > due) or (sent is None and today > due)
    label = f"due within {_days(schedule.EXCLUDED_NOTICE_DAYS)}" + (", late" if late else "")
    spans = [Span(EXCLUDED, label, f.awarded_on, due, DEADLINE, late=late)]
    if sent is not None:
        spans.append(Span(EXCLUDED, f"sent {sent.isoformat()}", sent, None, EVENT, late=sent > due))
    return spans


def clock_spans(facts: ClockFacts, today: date) -> list[Span]:
    """Every clock of the contract as spans, lane by lane (``LANES`` order), each lane in date order."""
    spans = (
        _contract(facts, today)
        + _stopworks(facts, today)
        + _decision(facts, today)
        + _notice(facts, today)
        + _waiver(facts, today)
        + _excluded(facts, today)
    )
    order = {lane: i for i, lane in enumerate(LANES)}
    return sorted(spans, key=lambda s: (order[s.lane], s.start, s.kind != PERIOD))


def as_of(facts: ClockFacts, day: date) -> ClockFacts:
    """The facts as the record stood on ``day``: anything dated later left out (a stop-work lifted later runs on)."""

    def known(value: date | None) -> date | None:
        return value if value is not None and value <= day else None

    stopworks = tuple((start, known(lifted)) for start, lifted in facts.stopworks if start <= day)
    waiver = known(facts.waiver_issued_on)
    determined = known(facts.determined_on)
    return replace(
        facts,
        stopworks=stopworks,
        determination=facts.determination if determined else None,
        determined_on=determined,
        redetermination_on=known(facts.redetermination_on),
        certified_on=known(facts.certified_on),
        notice_on=known(facts.notice_on),
        cleared_on=known(facts.cleared_on),
        excluded_notice_on=known(facts.excluded_notice_on),
        waiver_issued_on=waiver,
        waiver_until=facts.waiver_until if waiver else None,
        waiver_revoked_on=known(facts.waiver_revoked_on) if waiver else None,
        waiver_reported_on=known(facts.waiver_reported_on) if waiver else None,
        revocation_reported_on=known(facts.revocation_reported_on) if waiver else None,
        closed_on=known(facts.closed_on),
    )


def date_range(spans: list[Span], today: date) -> tuple[date, date]:
    """The first and last day the picture must show: every span and today, with a little room either side."""
    days = [today, *(s.start for s in spans), *(s.last for s in spans)]
    first, last = min(days), max(days)
    pad = max(3, (last - first).days // 25)
    return first - timedelta(days=pad), last + timedelta(days=pad)
