"""The §4(d) annual report's selection: which contracts go in each section for a reporting year.

EO 14093 §4(d): (i) current operational uses and why each is not risky; (ii) uses ended in the past year as risky,
how that was decided and how use was ended; (iii) every purchase in the past year and whether it was for
operational use. The reporting year ends on ``annual_report_due`` (27 March by default: one year after the order,
then yearly) and begins the day after the previous one.

Pure: each contract comes as dated snapshots of its record (what the audit trail holds after every change); a
state on a given day is the last snapshot that took effect by then, with anything dated later left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from bot.domain import questions as qs
from bot.domain import review
from bot.domain.errors import InputError
from bot.domain.review import ReviewState

__all__ = [
    "DEFAULT_DUE",
    "FIRST_YEAR",
    "AnnualFacts",
    "AnnualReport",
    "Ended",
    "Purchase",
    "Snapshot",
    "Use",
    "check_year",
    "default_year",
    "parse_due",
    "reporting_year",
    "select",
    "state_on",
]

DEFAULT_DUE = (3, 27)  # EO 14093 was signed on 27 March 2023; §4(d): within one year, then every year
FIRST_YEAR = 2024  # the first report was due on 27 March 2024

_MM_DD = re.compile(r"^(\d{2})-(\d{2})$")


def parse_due(text: str | None) -> tuple[int, int]:
    """The (month, day) of ``annual_report_due`` ("03-27"); the default for None or a value that is not MM-DD
    (29 February is refused: it is not in every year)."""
    if not text:
        return DEFAULT_DUE
    m = _MM_DD.match(text.strip())
    if m is None:
        return DEFAULT_DUE
    month, day = int(m.group(1)), int(m.group(2))
    try:
        date(2023, month, day)  # not a leap year: 02-29 is refused
    except ValueError:
        return DEFAULT_DUE
    return month, day


def reporting_year(year: int, due: tuple[int, int] = DEFAULT_DUE) -> tuple[date, date]:
    """The first and last day of the reporting year whose report is due in ``year``: (due in year-1) + 1 day through
    the due date in ``year`` (year 2025: 2024-03-28 through 2025-03-27)."""
    end = date(year, *due)
    return date(year - 1, *due) + timedelta(days=1), end


def default_year(today: date, due: tuple[int, int] = DEFAULT_DUE) -> int:
    """The year of the next report due (on or after ``today``): the one being prepared."""
    return today.year if today <= date(today.year, *due) else today.year + 1


def check_year(year: int, today: date, due: tuple[int, int] = DEFAULT_DUE) -> None:
    """Raises InputError for a year before the first report or a reporting year that has not begun."""
    if year < FIRST_YEAR:
        raise InputError(
            f"The first §4(d) report was due in {FIRST_YEAR} (one year after EO 14093 of 27 March 2023): "
            f"`year` must be {FIRST_YEAR} or later, not {year}. For example `report annual year={default_year(today, due)}`."
        )
    start, end = reporting_year(year, due)
    if start > today:
        raise InputError(
            f"The reporting year {year} ({start.isoformat()} to {end.isoformat()}) has not begun (today is "
            f"{today.isoformat()}): there is nothing to report yet. The report being prepared is "
            f"`report annual year={default_year(today, due)}`."
        )


@dataclass(frozen=True)
class Snapshot:
    """The record of one contract as it stood after one change, and the day that change took effect."""

    on: date
    action: str
    state: ReviewState
    determination_reason: str | None = None
    determined_by: str | None = None
    waiver_official: str | None = None
    waiver_reason: str | None = None
    close_reason: str | None = None
    stopwork_reason: str | None = None


@dataclass(frozen=True)
class AnnualFacts:
    """One contract for the annual report: the filing, and its snapshots in the order they were recorded."""

    ref: str
    vendor: str
    product: str
    agency: str
    component: str | None = None
    value_cents: int | None = None
    awarded_on: date | None = None
    filed_on: date | None = None
    purpose: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    snapshots: tuple[Snapshot, ...] = ()

    @property
    def purchased_on(self) -> date | None:
        """The purchase's date: the award, else (not recorded) the day it was filed."""
        return self.awarded_on or self.filed_on


_DATED_FIELDS: dict[str, tuple[str, ...]] = {
    # a date after the day asked about: that part of the record had not happened yet (its companions go too)
    "determined_on": (
        "determination",
        "determined_on",
        "certified_on",
        "certified_by",
        "notice_on",
        "cleared_on",
    ),
    "redetermination_on": ("redetermination_on",),
    "certified_on": ("certified_on", "certified_by", "notice_on", "cleared_on"),
    "notice_on": ("notice_on", "cleared_on"),
    "cleared_on": ("cleared_on",),
    "waiver_issued_on": (
        "waiver_issued_on",
        "waiver_until",
        "waiver_revoked_on",
        "waiver_reported_on",
        "revocation_reported_on",
    ),
    "waiver_revoked_on": ("waiver_revoked_on", "revocation_reported_on"),
    "waiver_reported_on": ("waiver_reported_on",),
    "revocation_reported_on": ("revocation_reported_on",),
    "stopwork_since": ("stopwork_since",),
    "stopwork_lifted_on": ("stopwork_lifted_on",),
    "closed_on": ("closed_on",),
}


def _as_of(state: ReviewState, day: date) -> ReviewState:
    """``state`` without anything dated after ``day``."""
    changes: dict[str, Any] = {}
    for dated, companions in _DATED_FIELDS.items():
        value = getattr(state, dated)
        if value is not None and value > day:
            changes.update(dict.fromkeys(companions))
    if "waiver_reported_on" in changes:
        changes["waiver_reported"] = False
    if "revocation_reported_on" in changes:
        changes["revocation_reported"] = False
    return replace(state, **changes) if changes else state


def state_on(facts: AnnualFacts, day: date) -> Snapshot | None:
    """The contract's record on ``day``: the last snapshot that took effect by then, without anything dated later;
    None before its first (it was not bought or filed yet)."""
    current: Snapshot | None = None
    for snap in facts.snapshots:
        if snap.on <= day:
            current = snap
    if current is None:
        return None
    return replace(current, state=_as_of(current.state, day))


def _in(day: date | None, start: date, end: date) -> bool:
    return day is not None and start <= day <= end


@dataclass(frozen=True)
class Use:
    """(i) A current operational use and why it is permitted: a certified `not-risky` determination, or a waiver."""

    facts: AnnualFacts
    state: ReviewState
    reason: str | None  # the determination's reason (why it is not risky), or the waiver's
    via_waiver: bool
    certified_by: str | None
    waiver_official: str | None


@dataclass(frozen=True)
class Ended:
    """(ii) A use ended in the year as risky: how it was decided and how the use was ended."""

    facts: AnnualFacts
    on: date
    how: str  # "prohibited" | "waiver revoked" | "waiver expired" | "closed"
    decided: (
        str  # how that was decided: the determination, its official and reason; the revocation; the close
    )
    ended: str  # how the use was ended
    previous: str | None = None  # the determination before a prohibition, if any


@dataclass(frozen=True)
class Purchase:
    """(iii) A purchase in the year and whether it was for operational use."""

    facts: AnnualFacts
    on: date
    operational: bool | None  # None: the record does not say
    why: str  # what says so: the purpose, or the SCOPE-2 answer
    closed_on: date | None


@dataclass(frozen=True)
class AnnualReport:
    """The three §4(d) sections for one reporting year, as of ``as_of`` (the year's last day, or today)."""

    year: int
    start: date
    end: date
    as_of: date
    uses: tuple[Use, ...]
    ended: tuple[Ended, ...]
    purchases: tuple[Purchase, ...]
    contracts: tuple[AnnualFacts, ...]  # every contract in some section, in reference order

    @property
    def empty(self) -> bool:
        """No contract in any section: the report says so plainly."""
        return not (self.uses or self.ended or self.purchases)


def _operational(facts: AnnualFacts) -> tuple[bool | None, str]:
    purpose = facts.purpose
    if purpose == "operational":
        return True, "purpose: operational"
    if purpose == "excluded":
        return (
            False,
            "purpose: excluded (§2(l): testing, research, analysis, cybersecurity or countermeasures)",
        )
    if purpose == "crime-investigation":
        return False, "purpose: criminal investigation of the spyware's own sale or use (§2(l))"
    scope2 = facts.answers.get("SCOPE-2")
    if scope2 == qs.YES:
        return True, "SCOPE-2 answered Yes (operational use)"
    if scope2 == qs.NO:
        return False, "SCOPE-2 answered No (an excluded purpose)"
    return None, "not recorded (no purpose, SCOPE-2 unanswered)"


def _current_use(facts: AnnualFacts, as_of: date) -> Use | None:
    snap = state_on(facts, as_of)
    if snap is None:
        return None
    verdict = review.operational_use(snap.state, as_of)
    if not verdict.permitted:
        return None
    return Use(
        facts,
        snap.state,
        snap.waiver_reason if verdict.via_waiver else snap.determination_reason,
        verdict.via_waiver,
        snap.state.certified_by,
        snap.waiver_official if verdict.via_waiver else None,
    )


def _words(snap: Snapshot) -> str:
    s = snap.state
    parts = [
        f"`{s.determination}` on {s.determined_on.isoformat()}" if s.determined_on else f"`{s.determination}`"
    ]
    if s.certified_on:
        parts.append(f"certified {s.certified_on.isoformat()}")
    if s.notice_on:
        parts.append(f"APNSA notice {s.notice_on.isoformat()}")
    return ", ".join(parts)


def _how_ended(snap: Snapshot, after: date) -> str:
    """How use was ended, from the record after ``after``: a stop-work order, the close, or the prohibition itself."""
    s = snap.state
    steps = []
    if s.stopwork_since is not None:
        steps.append(f"stop-work order in effect since {s.stopwork_since.isoformat()}")
    if s.closed_on is not None and s.closed_on >= after:
        steps.append(f"contract closed on {s.closed_on.isoformat()}")
    return "; ".join(steps) if steps else "no operational use permitted from that day (§2(a) prohibition)"


def _ended(facts: AnnualFacts, start: date, end: date, as_of: date) -> list[Ended]:
    out: list[Ended] = []
    last = state_on(facts, as_of)
    previous: Snapshot | None = None
    seen_waivers: dict[date, Snapshot] = {}
    for snap in facts.snapshots:
        s = snap.state
        prev = previous.state if previous is not None else None
        newly_prohibited = s.determination == review.PROHIBITED and (
            prev is None or prev.determination != review.PROHIBITED or prev.determined_on != s.determined_on
        )
        if newly_prohibited and _in(s.determined_on, start, end):
            assert s.determined_on is not None  # _in
            before = (
                _words(previous)
                if previous is not None and prev is not None and prev.determination is not None
                else None
            )
            decided = f"determined `prohibited` (§2(a){', re-determination §2(j)' if before else ''}) on {s.determined_on.isoformat()}"
            if snap.determination_reason:
                decided += f": {snap.determination_reason}"
            out.append(
                Ended(
                    facts,
                    s.determined_on,
                    "prohibited",
                    decided,
                    _how_ended(last, s.determined_on) if last is not None else "",
                    before,
                )
            )
        if s.waiver_issued_on is not None:
            seen_waivers[s.waiver_issued_on] = snap
            if (
                s.waiver_revoked_on is not None
                and (
                    prev is None
                    or prev.waiver_revoked_on is None
                    or prev.waiver_issued_on != s.waiver_issued_on
                )
                and _in(s.waiver_revoked_on, start, end)
            ):
                out.append(
                    Ended(
                        facts,
                        s.waiver_revoked_on,
                        "waiver revoked",
                        f"the §2(m) waiver issued {s.waiver_issued_on.isoformat()} by the "
                        f"{snap.waiver_official or 'relevant official'} was revoked on {s.waiver_revoked_on.isoformat()}",
                        "the prohibition applies again from the revocation",
                    )
                )
        previous = snap
    for issued, snap in seen_waivers.items():
        w = snap.state
        # the waiver as the record last held it (a revocation recorded later is in a later snapshot)
        latest = next((x.state for x in reversed(facts.snapshots) if x.state.waiver_issued_on == issued), w)
        until = latest.waiver_until
        if (
            until is not None
            and latest.waiver_revoked_on is None
            and _in(until, start, end)
            and until < as_of
        ):
            out.append(
                Ended(
                    facts,
                    until,
                    "waiver expired",
                    f"the §2(m) waiver issued {issued.isoformat()} by the {snap.waiver_official or 'relevant official'} "
                    f"expired after {until.isoformat()}",
                    "the prohibition applies again from its expiry",
                )
            )
    if last is not None and _in(last.state.closed_on, start, end):
        assert last.state.closed_on is not None  # _in
        day_before = last.state.closed_on - timedelta(days=1)
        until_close = state_on(facts, day_before)
        # a use the close ended (one prohibited before was ended by its prohibition, listed above)
        if until_close is not None and review.operational_use(until_close.state, day_before).permitted:
            out.append(
                Ended(
                    facts,
                    last.state.closed_on,
                    "closed",
                    f"closed out or terminated on {last.state.closed_on.isoformat()} while operational use was "
                    "permitted" + (f": {last.close_reason}" if last.close_reason else ""),
                    f"contract closed on {last.state.closed_on.isoformat()}",
                )
            )
    return out


def select(
    contracts: list[AnnualFacts], year: int, today: date, due: tuple[int, int] = DEFAULT_DUE
) -> AnnualReport:
    """The contracts of each §4(d) section for the reporting year ``year``, as of its last day (or today, while it
    runs); closed contracts included. Raises InputError for a year ``check_year`` refuses."""
    check_year(year, today, due)
    start, end = reporting_year(year, due)
    as_of = min(end, today)
    uses: list[Use] = []
    ended: list[Ended] = []
    purchases: list[Purchase] = []
    for facts in sorted(contracts, key=_ref_number):
        use = _current_use(facts, as_of)
        if use is not None:
            uses.append(use)
        ended.extend(_ended(facts, start, end, as_of))
        bought = facts.purchased_on
        if _in(bought, start, end) and bought is not None and bought <= as_of:
            operational, why = _operational(facts)
            last = state_on(facts, as_of)
            closed = last.state.closed_on if last is not None else None
            purchases.append(Purchase(facts, bought, operational, why, closed))
    ended.sort(key=lambda e: (e.on, _ref_number(e.facts)))
    listed = {
        id(f): f for f in [*(u.facts for u in uses), *(e.facts for e in ended), *(p.facts for p in purchases)]
    }
    return AnnualReport(
        year,
        start,
        end,
        as_of,
        tuple(uses),
        tuple(ended),
        tuple(purchases),
        tuple(sorted(listed.values(), key=_ref_number)),
    )


def _ref_number(facts: AnnualFacts) -> int:
    digits = facts.ref.rpartition("-")[2]
    return int(digits) if digits.isdigit() else 0
