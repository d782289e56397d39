"""The order's clocks as spans (bot.domain.clocks): every clock, the edges of its dates, and what is late."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain import clocks
from bot.domain.clocks import ClockFacts, Span, clock_spans, term_end

D = date.fromisoformat


def lane(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.lane == name]


def one(spans: list[Span], label_start: str) -> Span:
    found = [s for s in spans if s.label.startswith(label_start)]
    assert len(found) == 1, (label_start, [s.label for s in spans])
    return found[0]


@pytest.mark.parametrize(
    ("awarded", "term", "end"),
    [
        ("2024-09-27", "1 year", "2025-09-26"),
        ("2024-09-27", "12 months", "2025-09-26"),
        ("2024-01-31", "1 month", "2024-02-28"),  # the 31st plus a month: the end of February, less a day
        ("2024-02-29", "1 year", "2025-02-27"),
        ("2024-09-27", "90 days", "2024-12-25"),
        ("2024-09-27", "2 weeks", "2024-10-10"),
        ("2024-09-27", "ends=2025-06-30", "2025-06-30"),
        ("2024-09-27", "2025-06-30", "2025-06-30"),
        (None, "ends=2025-06-30", "2025-06-30"),
        (None, "1 year", None),
        ("2024-09-27", "until the money runs out", None),
        ("2024-09-27", "0 months", None),
        ("2024-09-27", "ends=2025-02-30", None),
        ("2024-09-27", None, None),
    ],
)
def test_term_end(awarded, term, end):
    assert term_end(D(awarded) if awarded else None, term) == (D(end) if end else None)


ICE = ClockFacts(
    ref="CR-1",
    awarded_on=D("2024-09-27"),
    term="1 year",
    purpose="operational",
    stopworks=((D("2024-10-08"), D("2025-08-29")),),
    closed_on=D("2026-01-20"),
)


def test_the_ice_contract_award_stopwork_and_close():
    spans = clock_spans(ICE, D("2026-03-01"))
    assert [s.lane for s in spans] == sorted((s.lane for s in spans), key=clocks.LANES.index)
    contract = lane(spans, clocks.CONTRACT)
    bar = one(contract, "period of performance")
    assert (bar.start, bar.end, bar.running) == (D("2024-09-27"), D("2026-01-20"), False)
    assert one(contract, "award").start == D("2024-09-27")
    assert one(contract, "closed 2026-01-20").kind == clocks.EVENT
    stop = one(spans, "stop-work")
    assert (stop.start, stop.end, stop.label) == (D("2024-10-08"), D("2025-08-29"), "stop-work 325 days")
    assert (
        not lane(spans, clocks.NOTICE) and not lane(spans, clocks.WAIVER) and not lane(spans, clocks.EXCLUDED)
    )


def test_an_open_contract_runs_to_today_and_its_term_end_is_marked():
    spans = clock_spans(ClockFacts(ref="CR-2", awarded_on=D("2025-01-10"), term="1 year"), D("2025-03-01"))
    assert one(spans, "period of performance").end == D("2026-01-09")
    assert one(spans, "term ends 2026-01-09").kind == clocks.EVENT
    running = clock_spans(ClockFacts(ref="CR-2", awarded_on=D("2025-01-10")), D("2025-03-01"))
    bar = one(running, "since award")
    assert (bar.end, bar.running) == (D("2025-03-01"), True)


def test_a_stopwork_in_effect_runs_to_today_and_shows_its_lapse():
    facts = ClockFacts(ref="CR-3", awarded_on=D("2025-01-01"), stopworks=((D("2025-02-01"), None),))
    spans = clock_spans(facts, D("2025-03-03"))
    stop = one(spans, "stop-work")
    assert (stop.end, stop.running, stop.label) == (D("2025-03-03"), True, "stop-work 30 days, in effect")
    assert one(spans, "lapses").start == D("2025-05-02")  # 90 days after it was issued
    lapsed = one(clock_spans(facts, D("2025-05-03")), "stop-work")
    assert (lapsed.end, lapsed.running, lapsed.label) == (D("2025-05-02"), False, "stop-work 90 days, lapsed")
    extended = facts.__class__(**{**facts.__dict__, "stopwork_extended_until": D("2025-06-30")})
    spans = clock_spans(extended, D("2025-05-03"))
    assert one(spans, "stop-work").running and one(spans, "extended to 2025-06-30").kind == clocks.DEADLINE
    closed = clock_spans(facts.__class__(**{**facts.__dict__, "closed_on": D("2025-02-20")}), D("2025-03-03"))
    assert one(closed, "stop-work").end == D("2025-02-20")  # a closed contract's stop-work ends with it
    assert not [s for s in closed if s.label.startswith("lapses")]


def test_several_stopworks_each_a_bar_in_order():
    facts = ClockFacts(
        ref="CR-4",
        stopworks=((D("2025-05-01"), None), (D("2025-01-01"), D("2025-01-02"))),
    )
    bars = [s for s in clock_spans(facts, D("2025-05-01")) if s.label.startswith("stop-work")]
    assert [(b.start, b.end, b.label) for b in bars] == [
        (D("2025-01-01"), D("2025-01-02"), "stop-work 1 day"),
        (D("2025-05-01"), D("2025-05-01"), "stop-work 0 days, in effect"),
    ]


def test_determination_certification_notice_and_waiting_period():
    facts = ClockFacts(
        ref="CR-5",
        determination="not-risky",
        determined_on=D("2025-08-01"),
        certified_on=D("2025-08-05"),
        notice_on=D("2025-08-11"),
    )
    during = clock_spans(facts, D("2025-08-17"))
    wait = one(during, "waiting period")
    assert (wait.start, wait.end, wait.running) == (D("2025-08-11"), D("2025-08-18"), True)
    assert one(during, "determined not-risky").start == D("2025-08-01")
    assert one(during, "certified").start == D("2025-08-05")
    assert one(during, "notice 2025-08-11").kind == clocks.EVENT
    assert not one(clock_spans(facts, D("2025-08-18")), "waiting period").running  # over on notice + 7
    cleared = clock_spans(
        facts.__class__(**{**facts.__dict__, "cleared_on": D("2025-08-13")}), D("2025-08-14")
    )
    wait = one(cleared, "waiting period")
    assert (wait.end, wait.label, wait.running) == (
        D("2025-08-13"),
        "waiting period, cleared 2025-08-13",
        False,
    )


def test_a_redetermination_under_way_runs_to_today():
    facts = ClockFacts(
        ref="CR-6",
        determination="not-risky",
        determined_on=D("2025-01-01"),
        redetermination_on=D("2025-03-01"),
    )
    span = one(clock_spans(facts, D("2025-03-10")), "re-determination")
    assert (span.start, span.end, span.running) == (D("2025-03-01"), D("2025-03-10"), True)


WAIVER = ClockFacts(
    ref="CR-7",
    determination="prohibited",
    determined_on=D("2025-02-10"),
    waiver_issued_on=D("2025-02-12"),
    waiver_until=D("2026-02-11"),
)


@pytest.mark.parametrize(
    ("reported", "today", "late"),
    [
        (None, "2025-02-15", False),  # 72 hours end on the 15th: not late yet
        (None, "2025-02-16", True),
        ("2025-02-15", "2025-03-01", False),
        ("2025-02-16", "2025-03-01", True),
    ],
)
def test_the_waiver_and_its_72_hour_report(reported, today, late):
    facts = WAIVER.__class__(**{**WAIVER.__dict__, "waiver_reported_on": D(reported) if reported else None})
    spans = clock_spans(facts, D(today))
    bar = one(spans, "waiver in force")
    assert (bar.start, bar.end, bar.running) == (D("2025-02-12"), D("2026-02-11"), True)
    window = one(spans, "72-hour waiver report")
    assert (window.start, window.end, window.late) == (D("2025-02-12"), D("2025-02-15"), late)
    assert window.label.endswith(", late") is late


def test_a_revoked_waiver_ends_on_its_revocation_with_a_report_of_its_own():
    facts = WAIVER.__class__(
        **{**WAIVER.__dict__, "waiver_reported_on": D("2025-02-13"), "waiver_revoked_on": D("2025-06-01")}
    )
    spans = clock_spans(facts, D("2025-06-10"))
    bar = one(spans, "waiver (revoked)")
    assert (bar.end, bar.running) == (D("2025-06-01"), False)
    assert one(spans, "revoked 2025-06-01").kind == clocks.EVENT
    assert one(spans, "72-hour revocation report").late
    assert not one(spans, "72-hour waiver report").late


@pytest.mark.parametrize(
    ("sent", "today", "late"),
    [
        (None, "2025-02-24", False),
        (None, "2025-02-25", True),
        ("2025-02-24", "2025-06-01", False),
        ("2025-02-25", "2025-06-01", True),
    ],
)
def test_the_excluded_purpose_notice_is_due_45_days_after_award(sent, today, late):
    facts = ClockFacts(
        ref="CR-8",
        awarded_on=D("2025-01-10"),
        purpose="excluded",
        excluded_notice_on=D(sent) if sent else None,
    )
    spans = lane(clock_spans(facts, D(today)), clocks.EXCLUDED)
    window = one(spans, "due within 45 days")
    assert (window.start, window.end, window.late) == (D("2025-01-10"), D("2025-02-24"), late)
    assert bool([s for s in spans if s.label.startswith("sent")]) is (sent is not None)


def test_no_excluded_clock_without_the_purpose_or_the_award():
    assert not lane(
        clock_spans(ClockFacts(ref="CR-9", awarded_on=D("2025-01-10")), D("2025-06-01")), clocks.EXCLUDED
    )
    assert not lane(clock_spans(ClockFacts(ref="CR-9", purpose="excluded"), D("2025-06-01")), clocks.EXCLUDED)


def test_a_contract_with_no_dates_has_no_spans_and_the_range_still_holds_today():
    assert clock_spans(ClockFacts(ref="CR-10"), D("2025-06-01")) == []
    first, last = clocks.date_range([], D("2025-06-01"))
    assert first < D("2025-06-01") < last


def test_as_of_leaves_out_what_came_later():
    facts = ICE.__class__(
        **{
            **ICE.__dict__,
            "determination": "not-risky",
            "determined_on": D("2025-08-11"),
            "certified_on": D("2025-08-13"),
            "notice_on": D("2025-08-14"),
            "waiver_issued_on": D("2025-09-01"),
            "waiver_until": D("2026-01-01"),
        }
    )
    early = clocks.as_of(facts, D("2025-03-27"))
    assert early.stopworks == ((D("2024-10-08"), None),)  # lifted later: still in effect on that day
    assert (early.determination, early.certified_on, early.notice_on, early.closed_on) == (
        None,
        None,
        None,
        None,
    )
    assert early.waiver_issued_on is None and early.waiver_until is None
    assert clocks.as_of(facts, D("2024-10-01")).stopworks == ()
    assert clocks.as_of(facts, D("2026-03-01")) == facts
