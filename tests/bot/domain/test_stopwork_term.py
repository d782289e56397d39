"""The contract's FAR clocks (bot.domain.clocks_far): a stop-work order's 90 days and its extension (FAR
52.242-15), the period of performance, and their reminders across weekends, federal holidays and DST."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain import clocks_far as far
from bot.domain import review
from bot.domain.calendar import BusinessCalendar
from bot.domain.errors import InvalidState

CAL = BusinessCalendar("America/New_York")


def local(reminders):
    """(label, "Fri 2024-12-06 09:00") in New York time."""
    return [(label, CAL.to_local(t).strftime("%a %Y-%m-%d %H:%M")) for label, t in reminders]


# ---- stop-work -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "extended", "lapses"),
    [
        (date(2024, 10, 8), None, date(2025, 1, 6)),  # the ICE order: 90 days after 8 Oct 2024
        (date(2024, 12, 1), None, date(2025, 3, 1)),  # across a year end
        (date(2023, 12, 1), None, date(2024, 2, 29)),  # a leap day
        (date(2024, 10, 8), date(2025, 3, 31), date(2025, 3, 31)),  # extended: the agreed last day
    ],
)
def test_a_stop_work_order_lapses_90_calendar_days_after_issue_unless_extended(since, extended, lapses):
    assert far.stopwork_lapses_on(since, extended) == lapses


@pytest.mark.parametrize(
    ("today", "in_effect", "lapsed_on"),
    [
        (date(2024, 10, 8), True, None),
        (date(2025, 1, 5), True, None),
        (date(2025, 1, 6), True, None),  # its 90th day: still in effect
        (date(2025, 1, 7), False, date(2025, 1, 6)),  # the day after: lapsed on the 6th
        (date(2025, 8, 29), False, date(2025, 1, 6)),
    ],
)
def test_in_effect_through_its_last_day_and_lapsed_after(today, in_effect, lapsed_on):
    assert far.stopwork_in_effect(date(2024, 10, 8), None, today) is in_effect
    assert far.stopwork_lapsed_on(date(2024, 10, 8), None, today) == lapsed_on


def test_no_order_is_neither_in_effect_nor_lapsed():
    assert not far.stopwork_in_effect(None, None, date(2025, 1, 1))
    assert far.stopwork_lapsed_on(None, None, date(2025, 1, 1)) is None


@pytest.mark.parametrize(
    ("since", "extended", "expected"),
    [
        # day 60 is a Saturday: the reminder goes on the Friday before; day 80 a Friday; day 90 a Monday
        (
            date(2024, 10, 8),
            None,
            [
                ("60d", "Fri 2024-12-06 09:00"),
                ("80d", "Fri 2024-12-27 09:00"),
                ("90d", "Mon 2025-01-06 09:00"),
                ("lapsed", "Tue 2025-01-07 09:00"),
            ],
        ),
        # day 60 is the eve of Thanksgiving, day 90 Christmas Day: the Thursday before it, and "lapsed" on the
        # Monday after (the 26th is a Saturday)
        (
            date(2026, 9, 26),
            None,
            [
                ("60d", "Wed 2026-11-25 09:00"),
                ("80d", "Tue 2026-12-15 09:00"),
                ("90d", "Thu 2026-12-24 09:00"),
                ("lapsed", "Mon 2026-12-28 09:00"),
            ],
        ),
        # extended to 31 Mar 2025: 30 and 10 days before the new end (a Saturday: the Friday), and on it
        (
            date(2024, 10, 8),
            date(2025, 3, 31),
            [
                ("60d", "Fri 2025-02-28 09:00"),
                ("80d", "Fri 2025-03-21 09:00"),
                ("90d", "Mon 2025-03-31 09:00"),
                ("lapsed", "Tue 2025-04-01 09:00"),
            ],
        ),
        # the last day falls the day after DST ends: still 09:00 local
        (
            date(2026, 8, 4),
            None,
            [
                ("60d", "Fri 2026-10-02 09:00"),
                ("80d", "Fri 2026-10-23 09:00"),
                ("90d", "Mon 2026-11-02 09:00"),
                ("lapsed", "Tue 2026-11-03 09:00"),
            ],
        ),
    ],
)
def test_lapse_reminders_land_on_the_business_day_on_or_before(since, extended, expected):
    assert local(far.stopwork_lapse_reminders(since, extended, CAL, 9)) == expected


def test_lapse_reminders_at_the_reminder_hour():
    assert local(far.stopwork_lapse_reminders(date(2024, 10, 8), None, CAL, 14))[0] == (
        "60d",
        "Fri 2024-12-06 14:00",
    )


@pytest.mark.parametrize(
    ("since", "extended", "until", "refused"),
    [
        (date(2024, 10, 8), None, date(2025, 1, 7), None),  # one day past the 90
        (
            date(2024, 10, 8),
            None,
            date(2025, 1, 6),
            "after the stop-work order's current lapse date (2025-01-06)",
        ),
        (date(2024, 10, 8), None, date(2024, 12, 1), "current lapse date (2025-01-06)"),
        (date(2024, 10, 8), date(2025, 3, 31), date(2025, 3, 31), "current lapse date (2025-03-31)"),
        (date(2024, 10, 8), date(2025, 3, 31), date(2025, 6, 30), None),  # a second extension
        (None, None, date(2025, 6, 30), "no stop-work order is in effect"),
    ],
)
def test_an_extension_must_end_after_the_current_lapse_date(since, extended, until, refused):
    if refused is None:
        far.check_stopwork_extend("CR-1", since, extended, until, date(2024, 12, 1))
        return
    with pytest.raises(InvalidState) as exc:
        far.check_stopwork_extend("CR-1", since, extended, until, date(2024, 12, 1))
    assert refused.lower() in exc.value.message.lower()


def test_a_lapsed_order_still_blocks_until_its_end_is_recorded():
    """Fail-safe: FAR 52.242-15(b) lets the contractor resume work once the order lapses, but the bot cannot tell a
    lapse from an extension nobody recorded: it keeps blocking, and says the order lapsed and what to record."""
    state = review.ReviewState(
        ref="CR-1",
        stopwork_since=date(2024, 10, 8),
        determination=review.NOT_RISKY,
        determined_on=date(2024, 10, 20),
        certified_on=date(2024, 10, 21),
        notice_on=date(2024, 10, 22),
    )
    [during] = review.operational_use(state, date(2025, 1, 6)).missing
    assert during.startswith(
        "a stop-work order has been in effect since 2024-10-08 (90 days; `resume` lifts it"
    )
    assert "it lapses after 2025-01-06 unless extended" in during
    [after] = review.operational_use(state, date(2025, 1, 7)).missing
    assert "it lapsed on 2025-01-06 under FAR 52.242-15, so the contractor may resume work" in after
    assert "until `resume` (or `stopwork-extend`) is recorded it is treated as still in effect" in after
    assert review.status(state, date(2025, 1, 7)) == "stop-work"
    # its end recorded: only the executive order's own conditions remain, and here they are met
    assert review.operational_use(state.with_(stopwork_since=None), date(2025, 1, 7)).permitted
    extended = state.with_(stopwork_extended_until=date(2025, 3, 31))
    [ext] = review.operational_use(extended, date(2025, 3, 31)).missing
    assert "it lapses after 2025-03-31 unless extended" in ext


@pytest.mark.parametrize(
    ("before", "left", "superseded"),
    [
        (30, 30, False),  # on time
        (30, 12, False),  # late, but the next (10 days before) is not due yet
        (30, 10, True),  # the 10-day one is due too: it goes alone
        (10, 0, True),
        (0, 0, False),
        (0, -3, False),
    ],
)
def test_a_countdown_reminder_sent_late_gives_way_to_a_later_one(before, left, superseded):
    assert far.superseded(before, left, (30, 10, 0)) is superseded


# ---- period of performance -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("12 months", 12),
        ("1 year", 12),
        ("18 months", 18),
        ("2 years", 24),
        ("one year", 12),
        ("One-Year", 12),
        ("6 mo", 6),
        ("3 yrs", 36),
        ("  24 Months ", 24),
        ("1 month", 1),
        ("base year plus four option years", None),
        ("through FY2026", None),
        ("12", None),
        ("0 months", None),
        ("300 years", None),
        ("", None),
        (None, None),
    ],
)
def test_term_is_a_duration_or_stays_free_text(text, months):
    assert far.parse_term(text) == months


@pytest.mark.parametrize(
    ("start", "months", "ends"),
    [
        (date(2024, 9, 27), 12, date(2025, 9, 26)),  # the ICE contract: one year from 27 Sep 2024
        (date(2024, 9, 30), 12, date(2025, 9, 29)),  # ... or from 30 Sep 2024, as other reports date it
        (date(2024, 1, 31), 1, date(2024, 2, 28)),  # 31 Jan + 1 month = 29 Feb (leap), last day the 28th
        (date(2024, 2, 29), 12, date(2025, 2, 27)),
        (date(2025, 3, 15), 18, date(2026, 9, 14)),
        (date(2025, 12, 1), 24, date(2027, 11, 30)),
    ],
)
def test_a_duration_ends_the_day_before_the_same_date_months_later(start, months, ends):
    assert far.term_ends_on(start, months) == ends


@pytest.mark.parametrize(
    ("months", "words"), [(12, "1 year"), (24, "2 years"), (18, "18 months"), (1, "1 month")]
)
def test_term_words(months, words):
    assert far.term_words(months) == words


@pytest.mark.parametrize(
    ("ends", "expected"),
    [
        (
            date(2025, 9, 26),
            [
                ("60d", "Mon 2025-07-28 09:00"),
                ("30d", "Wed 2025-08-27 09:00"),
                ("7d", "Fri 2025-09-19 09:00"),
            ],
        ),
        # 60 days before is Thanksgiving, 30 days before a Saturday after Christmas Day, 7 days before MLK Day
        (
            date(2027, 1, 25),
            [
                ("60d", "Wed 2026-11-25 09:00"),
                ("30d", "Thu 2026-12-24 09:00"),
                ("7d", "Fri 2027-01-15 09:00"),
            ],
        ),
    ],
)
def test_term_reminders_land_on_the_business_day_on_or_before(ends, expected):
    assert local(far.term_end_reminders(ends, CAL, 9)) == expected
