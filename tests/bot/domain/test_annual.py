"""The §4(d) report's selection (bot.domain.annual): the reporting year's edges, and which contract goes where."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain import annual
from bot.domain.annual import AnnualFacts, Snapshot, reporting_year, select, state_on
from bot.domain.errors import InputError
from bot.domain.review import ReviewState

D = date.fromisoformat
TODAY = D("2026-12-07")
DATES = {name for name in ReviewState.__dataclass_fields__ if name.endswith("_on")} | {
    "stopwork_since",
    "waiver_until",
}


def contract(
    ref: str, *events: tuple[str, str, dict], purpose: str | None = "operational", **filing
) -> AnnualFacts:
    """A contract whose record went through ``events`` (day, action, changed fields), each a snapshot."""
    state = ReviewState(ref=ref, purpose=purpose, awarded_on=filing.get("awarded_on"))
    snaps = []
    reasons: dict = {}
    for on, action, changes in events:
        extra = {
            k: changes.pop(k)
            for k in list(changes)
            if k in ("determination_reason", "waiver_official", "close_reason")
        }
        reasons.update(extra)
        state = state.with_(**{k: D(v) if k in DATES and v else v for k, v in changes.items()})
        snaps.append(Snapshot(D(on), action, state, **reasons))
    return AnnualFacts(
        ref=ref,
        vendor=f"Vendor {ref}",
        product="Tool",
        agency="ICE",
        purpose=purpose,
        snapshots=tuple(snaps),
        answers=filing.pop("answers", {}),
        **filing,
    )


def in_use(ref: str, awarded: str, determined: str, notice: str, **filing) -> AnnualFacts:
    """A contract in operational use: determined not-risky, certified, APNSA notified (use from notice + 7)."""
    return contract(
        ref,
        (awarded, "file", {}),
        (
            determined,
            "determine",
            {
                "determination": "not-risky",
                "determined_on": determined,
                "determination_reason": f"{ref}: vendor vetted",
            },
        ),
        (
            determined,
            "certify",
            {"certified_on": determined, "certified_by": "Secretary of Homeland Security"},
        ),
        (notice, "notify", {"notice_on": notice}),
        awarded_on=D(awarded),
        **filing,
    )


@pytest.mark.parametrize(
    ("year", "due", "start", "end"),
    [
        (2025, (3, 27), "2024-03-28", "2025-03-27"),
        (2024, (3, 27), "2023-03-28", "2024-03-27"),
        (2025, (12, 31), "2025-01-01", "2025-12-31"),
        (2025, (1, 1), "2024-01-02", "2025-01-01"),
        (
            2025,
            (2, 28),
            "2024-02-29",
            "2025-02-28",
        ),  # a leap year's 29 February is in the year after the 28th
    ],
)
def test_reporting_year(year, due, start, end):
    assert reporting_year(year, due) == (D(start), D(end))


@pytest.mark.parametrize(
    ("text", "due"),
    [
        (None, (3, 27)),
        ("", (3, 27)),
        ("03-27", (3, 27)),
        ("12-31", (12, 31)),
        ("02-29", (3, 27)),
        ("13-01", (3, 27)),
        ("3-27", (3, 27)),
        ("03-32", (3, 27)),
    ],
)
def test_parse_due(text, due):
    assert annual.parse_due(text) == due


@pytest.mark.parametrize(
    ("today", "year"),
    [("2026-03-27", 2026), ("2026-03-28", 2027), ("2026-12-07", 2027), ("2026-01-01", 2026)],
)
def test_the_default_year_is_the_report_due_next(today, year):
    assert annual.default_year(D(today)) == year


@pytest.mark.parametrize(("year", "ok"), [(2023, False), (2024, True), (2027, True), (2028, False)])
def test_years_before_the_first_report_or_not_begun_are_refused(year, ok):
    if ok:
        annual.check_year(year, TODAY)
    else:
        with pytest.raises(InputError, match="2024 or later|has not begun"):
            annual.check_year(year, TODAY)


@pytest.mark.parametrize(
    ("awarded", "listed"),
    [("2024-03-27", False), ("2024-03-28", True), ("2025-03-27", True), ("2025-03-28", False)],
)
def test_a_purchase_is_in_the_year_it_was_awarded_edges_included(awarded, listed):
    c = contract("CR-1", (awarded, "file", {}), awarded_on=D(awarded))
    report = select([c], 2025, TODAY)
    assert bool(report.purchases) is listed
    assert report.empty is not listed


def test_a_purchase_without_an_award_date_counts_from_its_filing():
    c = contract("CR-1", ("2024-06-01", "file", {}), filed_on=D("2024-06-01"))
    (p,) = select([c], 2025, TODAY).purchases
    assert p.on == D("2024-06-01")


@pytest.mark.parametrize(
    ("purpose", "answers", "operational", "why"),
    [
        ("operational", {}, True, "purpose: operational"),
        ("excluded", {}, False, "purpose: excluded"),
        ("crime-investigation", {}, False, "criminal investigation"),
        (None, {"SCOPE-2": "yes"}, True, "SCOPE-2 answered Yes"),
        (None, {"SCOPE-2": "no"}, False, "SCOPE-2 answered No"),
        (None, {"SCOPE-2": "unknown"}, None, "not recorded"),
        (None, {}, None, "not recorded"),
    ],
)
def test_whether_a_purchase_was_for_operational_use(purpose, answers, operational, why):
    c = contract(
        "CR-1", ("2024-06-01", "file", {}), purpose=purpose, awarded_on=D("2024-06-01"), answers=answers
    )
    (p,) = select([c], 2025, TODAY).purchases
    assert p.operational is operational and why in p.why


def test_a_closed_purchase_is_still_listed_with_its_close():
    c = contract(
        "CR-1",
        ("2024-06-01", "file", {}),
        ("2024-12-01", "close", {"closed_on": "2024-12-01", "close_reason": "terminated"}),
        awarded_on=D("2024-06-01"),
    )
    (p,) = select([c], 2025, TODAY).purchases
    assert p.closed_on == D("2024-12-01")
    assert not select([c], 2025, TODAY).uses


@pytest.mark.parametrize(
    ("notice", "in_use_at_year_end"),
    [("2025-03-20", True), ("2025-03-21", False)],  # use begins notice + 7 days: on 27 March, or on 28 March
)
def test_a_current_use_begins_after_the_waiting_period(notice, in_use_at_year_end):
    c = in_use("CR-1", "2024-09-27", "2025-03-01", notice)
    report = select([c], 2025, TODAY)
    assert bool(report.uses) is in_use_at_year_end
    if in_use_at_year_end:
        (u,) = report.uses
        assert (u.reason, u.via_waiver, u.certified_by) == (
            "CR-1: vendor vetted",
            False,
            "Secretary of Homeland Security",
        )


def test_a_use_from_earlier_years_is_still_current_and_the_past_year_is_as_of_its_end():
    c = in_use("CR-1", "2023-01-10", "2023-02-01", "2023-02-02")
    closed = contract(
        "CR-2",
        ("2023-01-10", "file", {}),
        ("2023-02-01", "determine", {"determination": "not-risky", "determined_on": "2023-02-01"}),
        ("2023-02-01", "certify", {"certified_on": "2023-02-01"}),
        ("2023-02-02", "notify", {"notice_on": "2023-02-02"}),
        ("2025-06-01", "close", {"closed_on": "2025-06-01"}),
        awarded_on=D("2023-01-10"),
    )
    report = select([c, closed], 2025, TODAY)
    assert [u.facts.ref for u in report.uses] == [
        "CR-1",
        "CR-2",
    ]  # CR-2 closed after the year: in use on its last day
    assert not report.purchases  # bought before the year
    later = select([c, closed], 2026, TODAY)
    assert [u.facts.ref for u in later.uses] == ["CR-1"]
    assert [(e.facts.ref, e.how) for e in later.ended] == [("CR-2", "closed")]


def test_a_stopwork_in_effect_is_no_current_use():
    c = contract(
        "CR-1",
        ("2024-09-27", "file", {}),
        ("2024-10-08", "stopwork", {"stopwork_since": "2024-10-08"}),
        awarded_on=D("2024-09-27"),
    )
    report = select([c], 2025, TODAY)
    assert not report.uses and [p.facts.ref for p in report.purchases] == ["CR-1"] and not report.ended


def test_prohibited_after_operational_use_is_an_ended_use_with_how_it_was_decided():
    c = contract(
        "CR-1",
        ("2024-01-10", "file", {}),
        ("2024-02-01", "determine", {"determination": "not-risky", "determined_on": "2024-02-01"}),
        ("2024-02-02", "certify", {"certified_on": "2024-02-02"}),
        ("2024-02-03", "notify", {"notice_on": "2024-02-03"}),
        (
            "2024-11-15",
            "re-determine",
            {
                "determination": "prohibited",
                "determined_on": "2024-11-15",
                "certified_on": None,
                "notice_on": None,
                "determination_reason": "IU-1: misuse reported",
            },
        ),
        ("2024-11-16", "stopwork", {"stopwork_since": "2024-11-16"}),
        awarded_on=D("2024-01-10"),
    )
    report = select([c], 2025, TODAY)
    (e,) = report.ended
    assert (e.how, e.on) == ("prohibited", D("2024-11-15"))
    assert "IU-1: misuse reported" in e.decided and "§2(j)" in e.decided
    assert e.previous is not None and "not-risky" in e.previous and "APNSA notice 2024-02-03" in e.previous
    assert "stop-work order in effect since 2024-11-16" in e.ended
    assert not report.uses
    assert not select([c], 2024, TODAY).ended  # the year before knew nothing of it
    assert [u.facts.ref for u in select([c], 2024, TODAY).uses] == ["CR-1"]


@pytest.mark.parametrize(
    ("day", "listed"),
    [("2024-03-27", False), ("2024-03-28", True), ("2025-03-27", True), ("2025-03-28", False)],
)
def test_a_first_prohibition_in_the_year_edges_included(day, listed):
    c = contract(
        "CR-1",
        ("2023-06-01", "file", {}),
        (day, "determine", {"determination": "prohibited", "determined_on": day}),
        awarded_on=D("2023-06-01"),
    )
    ended = select([c], 2025, TODAY).ended
    assert bool(ended) is listed
    if listed:
        assert ended[0].previous is None and "re-determination" not in ended[0].decided


def waived(*more: tuple[str, str, dict]) -> AnnualFacts:
    return contract(
        "CR-3",
        ("2024-01-10", "file", {}),
        ("2024-02-01", "determine", {"determination": "prohibited", "determined_on": "2024-02-01"}),
        (
            "2024-02-05",
            "waiver",
            {
                "waiver_issued_on": "2024-02-05",
                "waiver_until": "2025-02-04",
                "waiver_official": "Attorney General",
            },
        ),
        ("2024-02-06", "waiver-report", {"waiver_reported": True, "waiver_reported_on": "2024-02-06"}),
        *more,
        awarded_on=D("2024-01-10"),
    )


def test_a_use_under_a_waiver_is_current_and_its_expiry_ends_it():
    report = select([waived()], 2024, TODAY)
    (u,) = report.uses
    assert u.via_waiver and u.waiver_official == "Attorney General"
    later = select([waived()], 2025, TODAY)
    assert not later.uses
    assert [(e.how, e.on) for e in later.ended] == [("waiver expired", D("2025-02-04"))]


def test_a_revoked_waiver_is_an_ended_use():
    c = waived(("2024-06-01", "revoke-waiver", {"waiver_revoked_on": "2024-06-01"}))
    report = select([c], 2025, TODAY)
    assert [(e.how, e.on) for e in report.ended] == [("waiver revoked", D("2024-06-01"))]
    assert "Attorney General" in report.ended[0].decided
    assert not report.uses


def test_a_contract_closed_while_in_use_ended_that_use():
    c = in_use("CR-1", "2024-01-10", "2024-02-01", "2024-02-02")
    c = AnnualFacts(
        **{
            **c.__dict__,
            "snapshots": (
                *c.snapshots,
                Snapshot(
                    D("2025-01-15"),
                    "close",
                    c.snapshots[-1].state.with_(closed_on=D("2025-01-15")),
                    close_reason="done",
                ),
            ),
        }
    )
    report = select([c], 2025, TODAY)
    (e,) = report.ended
    assert (e.how, e.on) == ("closed", D("2025-01-15")) and "done" in e.decided
    assert not report.uses


def test_a_closed_contract_never_in_use_ended_nothing():
    c = contract(
        "CR-1",
        ("2024-06-01", "file", {}),
        ("2024-12-01", "close", {"closed_on": "2024-12-01"}),
        awarded_on=D("2024-06-01"),
    )
    assert not select([c], 2025, TODAY).ended


def test_the_running_year_is_as_of_today():
    c = in_use("CR-1", "2026-05-01", "2026-11-20", "2026-11-29")  # use from 6 December
    report = select([c], 2027, TODAY)
    assert report.as_of == TODAY and [u.facts.ref for u in report.uses] == ["CR-1"]
    early = select([c], 2027, D("2026-12-05"))
    assert not early.uses


def test_state_on_leaves_out_what_was_dated_later():
    c = in_use("CR-1", "2024-01-10", "2024-02-01", "2024-02-03")
    assert state_on(c, D("2024-01-09")) is None
    s = state_on(c, D("2024-02-02"))
    assert s is not None and s.state.certified_on == D("2024-02-01") and s.state.notice_on is None
    # a snapshot recorded later but back-dated earlier still counts by its date, with later dates left out
    backdated = AnnualFacts(
        **{
            **c.__dict__,
            "snapshots": (
                *c.snapshots,
                Snapshot(
                    D("2024-01-20"), "stopwork", c.snapshots[-1].state.with_(stopwork_since=D("2024-01-20"))
                ),
            ),
        }
    )
    s = state_on(backdated, D("2024-01-25"))
    assert s is not None and s.state.stopwork_since == D("2024-01-20") and s.state.determination is None


def test_every_contract_of_the_report_once_in_reference_order():
    a = in_use("CR-10", "2024-09-27", "2024-10-01", "2024-10-02")
    b = in_use("CR-2", "2024-09-27", "2024-10-01", "2024-10-02")
    report = select([a, b], 2025, TODAY)
    assert [c.ref for c in report.contracts] == ["CR-2", "CR-10"]
    assert [p.facts.ref for p in report.purchases] == ["CR-2", "CR-10"]


def test_a_year_with_no_data_is_empty():
    assert select([], 2025, TODAY).empty
