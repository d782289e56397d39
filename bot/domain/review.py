"""EO 14093 review rules for one contract: state checks for every action and the operational-use verdict.

Pure: takes a ``ReviewState`` snapshot and dates; raises ``InvalidState`` naming what is wrong and the fix.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from bot.domain import clocks_far, schedule
from bot.domain import questions as qs
from bot.domain.errors import DomainError, InvalidState

NOT_RISKY, PROHIBITED, OUT_OF_SCOPE = "not-risky", "prohibited", "out-of-scope"
OUTCOMES = (NOT_RISKY, PROHIBITED, OUT_OF_SCOPE)
WAITING_DAYS = (
    schedule.WAITING_PERIOD_DAYS
)  # §2(g): calendar days (EO14093.md §3.2 reads it as calendar days)

STATUSES = (
    "intake",
    "in-review",
    "stop-work",
    "determined",
    "prohibited",
    "certified",
    "waiting",
    "cleared",
    "waiver",
    "out-of-scope",
    "closed",
)


@dataclass(frozen=True)
class ReviewState:
    """What the rules need to know about one contract; dates are local calendar dates."""

    ref: str = "CR-0"
    purpose: str | None = None
    awarded_on: date | None = None
    answers: Mapping[str, str] = field(default_factory=dict)
    question_set: str | None = None  # the version of the questions it was filed under (None: the first)
    stopwork_since: date | None = None
    stopwork_lifted_on: date | None = None  # the last `resume`
    stopwork_extended_until: date | None = None  # `stopwork-extend`: the order's new last day (FAR 52.242-15)
    determination: str | None = None
    determined_on: date | None = None
    certified_on: date | None = None
    certified_by: str | None = None
    notice_on: date | None = None
    cleared_on: date | None = None
    waiver_issued_on: date | None = None
    waiver_until: date | None = None
    waiver_revoked_on: date | None = None
    waiver_reported: bool = False
    revocation_reported: bool = False
    waiver_reported_on: date | None = None
    revocation_reported_on: date | None = None
    redetermination_on: date | None = None  # a §2(j) re-determination under way since (answers open again)
    closed_on: date | None = None

    def with_(self, **changes: Any) -> ReviewState:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class UseVerdict:
    """Whether operational use is permitted on a day, and if not, exactly what is still missing."""

    permitted: bool
    missing: tuple[str, ...]
    via_waiver: bool = False
    earliest_on: date | None = None
    closed_on: date | None = None  # closed: nothing is "missing", the contract is over
    not_applicable: bool = False  # determined out of scope: the order does not apply

    @property
    def summary(self) -> str:
        """The verdict in a few words, for the parent message, `list` and App Home."""
        if self.closed_on is not None:
            return f"closed on {self.closed_on.isoformat()}"
        if self.not_applicable:
            return "the order does not apply (out of scope)"
        if self.permitted:
            return "permitted" + (" (waiver)" if self.via_waiver else "")
        return "not permitted"

    @property
    def headline(self) -> str:
        """The verdict as the first line of `show` (mrkdwn, without the list of what is missing)."""
        if self.closed_on is not None:
            return f":lock: *Closed on {self.closed_on.isoformat()}*: no operational use under this contract."
        if self.not_applicable:
            return ":white_circle: *The order does not apply (out of scope)*: no operational-use clearance is tracked."
        if self.permitted:
            return ":large_green_circle: *Operational use is permitted*"
        return ":red_circle: *Operational use is not permitted.* Still missing:"


def waiting_period_end(state: ReviewState) -> date | None:
    """The day the §2(g) waiting period ends: notice + 7 days, or the APNSA clearance day if earlier."""
    if state.notice_on is None:
        return None
    end = schedule.waiting_period_end(state.notice_on)
    if state.cleared_on is not None and state.cleared_on < end:
        return state.cleared_on
    return end


def waiver_in_force(state: ReviewState, today: date) -> bool:
    """True when a waiver was issued, has not been revoked, and has not expired (in force through ``until``)."""
    return (
        state.waiver_issued_on is not None
        and state.waiver_revoked_on is None
        and state.waiver_until is not None
        and state.waiver_issued_on <= today <= state.waiver_until
    )


def waiver_counts(state: ReviewState, today: date) -> bool:
    """A waiver permits use only while it waives the current prohibition (not one a re-determination replaced)."""
    return (
        state.determination == PROHIBITED
        and waiver_in_force(state, today)
        and state.waiver_issued_on is not None  # implied by waiver_in_force; stated for the type checker
        and (state.determined_on is None or state.waiver_issued_on >= state.determined_on)
    )


def _waiver_note(state: ReviewState, today: date) -> str | None:
    """Why an issued waiver does not permit use today (revoked or expired), if one was issued."""
    if state.waiver_issued_on is None:
        return None
    if state.waiver_revoked_on is not None:
        return f"the waiver was revoked on {state.waiver_revoked_on.isoformat()}"
    if state.waiver_until is not None and today > state.waiver_until:
        return f"the waiver expired after {state.waiver_until.isoformat()}"
    if state.determined_on is not None and state.waiver_issued_on < state.determined_on:
        return f"the waiver of {state.waiver_issued_on.isoformat()} predates the current determination"
    return None


def operational_use(state: ReviewState, today: date) -> UseVerdict:
    """SPEC "Operational use": every condition that must hold, and the ones still missing on ``today``."""
    blockers: list[str] = []
    if state.closed_on is not None:
        # a closed contract is over: what a permission would still need is beside the point
        return UseVerdict(
            False, (f"the contract was closed on {state.closed_on.isoformat()}",), closed_on=state.closed_on
        )
    if state.stopwork_since is not None:
        days = (today - state.stopwork_since).days
        lapsed = clocks_far.stopwork_lapsed_on(state.stopwork_since, state.stopwork_extended_until, today)
        lapses = clocks_far.stopwork_lapses_on(state.stopwork_since, state.stopwork_extended_until)
        # Fail-safe (clocks_far): a lapsed order still blocks here until a manager records `resume` (or an extension
        # nobody recorded): permission never comes from the passing of time alone.
        blockers.append(
            f"a stop-work order has been in effect since {state.stopwork_since.isoformat()} "
            f"({days} day{'s' if days != 1 else ''}; `resume` lifts it; "
            + (
                f"it lapsed on {lapsed.isoformat()} under FAR 52.242-15, so the contractor may resume work, but "
                "until `resume` (or `stopwork-extend`) is recorded it is treated as still in effect)"
                if lapsed
                else f"it lapses after {lapses.isoformat()} unless extended)"
            )
        )
    if state.determination == OUT_OF_SCOPE:
        return UseVerdict(
            False,
            (*blockers, "the order does not apply (out of scope): no operational-use clearance is tracked"),
            not_applicable=True,
        )
    if waiver_counts(state, today):
        if not blockers:
            return UseVerdict(True, (), via_waiver=True)
        return UseVerdict(False, tuple(blockers), via_waiver=False)

    missing: list[str] = list(blockers)
    end = waiting_period_end(state)
    if state.determination == PROHIBITED:
        note = _waiver_note(state, today)
        missing.append(
            "the determination is `prohibited`: only a waiver in force (§2(m)) permits use"
            + (f" ({note})" if note else "")
        )
        return UseVerdict(False, tuple(missing))
    if state.determination != NOT_RISKY:
        missing.append("a `not-risky` determination (§2(a)) by an official: `determine`")
    if state.certified_on is None:
        missing.append("certification by a relevant official (§2(f)): `certify`")
    if state.notice_on is None:
        missing.append(f"notice to the APNSA (§2(g)): `notify`, then the {WAITING_DAYS}-day waiting period")
    elif end is not None and today < end:
        left = (end - today).days
        missing.append(
            f"the {WAITING_DAYS}-day waiting period: {left} day{'s' if left != 1 else ''} left, "
            f"ends {end.isoformat()} (or APNSA clearance: `clear`)"
        )
    earliest = end if (state.determination == NOT_RISKY and end is not None and not blockers) else None
    return UseVerdict(not missing, tuple(missing), earliest_on=earliest)


def status(state: ReviewState, today: date) -> str:
    """The one-word status shown on the parent message and used by ``list``."""
    if state.closed_on is not None:
        return "closed"
    if state.stopwork_since is not None:
        return "stop-work"
    if state.determination == OUT_OF_SCOPE:
        return "out-of-scope"
    if state.determination == PROHIBITED:
        return "waiver" if waiver_counts(state, today) else "prohibited"
    if state.determination == NOT_RISKY:
        if state.notice_on is not None:
            return "cleared" if operational_use(state, today).permitted else "waiting"
        return "certified" if state.certified_on is not None else "determined"
    return "in-review" if state.answers else "intake"


# ---- action checks: each raises InvalidState with the reason and the fix -------------------------------


def check_open(state: ReviewState, action: str) -> None:
    """Closed contracts accept nothing but show, list and audit."""
    if state.closed_on is not None:
        raise InvalidState(
            f"{state.ref} was closed on {state.closed_on.isoformat()}; a closed contract accepts only "
            f"`show`, `list` and `audit`, not `{action}`."
        )


def _not_before(on: date, earlier: date | None, what: str, ref: str, action: str) -> None:
    if earlier is not None and on < earlier:
        raise InvalidState(
            f"`{action}` on {on.isoformat()} would come before {what} ({earlier.isoformat()}) on {ref}; "
            f"give `on=` a date on or after {earlier.isoformat()}."
        )


def answers_open(state: ReviewState) -> bool:
    """Reviewers may answer: before the first determination, and during a §2(j) re-determination."""
    return state.closed_on is None and (state.determination is None or state.redetermination_on is not None)


def check_answer(state: ReviewState) -> None:
    """Answers can change until a determination is recorded, then again once `redetermine` reopens them."""
    check_open(state, "answer")
    if not answers_open(state):
        raise InvalidState(
            f"Answers on {state.ref} are frozen: the determination `{state.determination}` was recorded "
            f"on {state.determined_on.isoformat() if state.determined_on else 'an earlier date'}. The audit log keeps "
            f"every version; new information calls for a re-determination (§2(j)): an official reopens the answers "
            f'with `/contract redetermine {state.ref} reason="…"`.'
        )


def check_redetermine(state: ReviewState, on: date) -> None:
    """§2(j): new information reopens the answers of a determined contract until the next `determine`."""
    check_open(state, "redetermine")
    if state.determination is None:
        raise InvalidState(
            f"{state.ref} has no determination to revisit: its answers are open until the first one "
            f'(`determine {state.ref} not-risky|prohibited|out-of-scope reason="…"`).'
        )
    if state.redetermination_on is not None:
        raise InvalidState(
            f"A re-determination (§2(j)) of {state.ref} has been under way since "
            f"{state.redetermination_on.isoformat()}: its answers are open; `determine` records the outcome."
        )
    _not_before(on, state.determined_on, "the determination it revisits", state.ref, "redetermine")


def check_determination(state: ReviewState, outcome: str, reason: str, on: date) -> None:
    """SPEC "Determination" preconditions, plus re-determination only with a changed outcome (§2(j))."""
    check_open(state, "determine")
    if outcome not in OUTCOMES:
        raise InvalidState(f"Unknown determination `{outcome}`; use one of {', '.join(OUTCOMES)}.")
    # during a re-determination the new information is on record: any outcome may follow, the same one too
    if state.determination is not None and state.redetermination_on is None:
        if state.determination == outcome:
            raise InvalidState(
                f"{state.ref} is already determined `{outcome}`. A new determination needs new information "
                f"(§2(j)) and a different outcome."
            )
        if state.determination == OUT_OF_SCOPE:
            raise InvalidState(
                f"{state.ref} was determined out of scope; the order does not apply to it. If new information "
                f'brings it into scope, an official reopens its answers with `redetermine {state.ref} reason="…"`.'
            )
    _not_before(on, state.determined_on, "the previous determination", state.ref, "determine")
    _not_before(on, state.redetermination_on, "the re-determination (§2(j))", state.ref, "determine")
    answers = state.answers
    if outcome == OUT_OF_SCOPE:
        if answers.get("SCOPE-1") != qs.NO:
            raise InvalidState(
                f"`out-of-scope` needs SCOPE-1 answered No on {state.ref} "
                f"(it is {answers.get('SCOPE-1', 'unanswered')})."
            )
        return
    if outcome == NOT_RISKY:
        qset = qs.question_set(state.question_set)
        risk_qids = qset.risk_ids()
        unanswered = [qid for qid in risk_qids if qid not in answers]
        unknown = [qid for qid in risk_qids if answers.get(qid) == qs.UNKNOWN]
        if unanswered or unknown:
            parts = []
            if unanswered:
                parts.append("unanswered: " + ", ".join(unanswered))
            if unknown:
                parts.append("answered Unknown: " + ", ".join(unknown))
            raise InvalidState(
                f"`not-risky` needs every CI and IU question answered Yes or No on {state.ref} ({'; '.join(parts)})."
            )
        flags = qset.red_flags(answers)
        if flags:
            mit = [q.qid for q in qset.questions_in("MIT")]
            open_mit = [qid for qid in mit if answers.get(qid) in (None, qs.UNKNOWN)]
            if open_mit:
                raise InvalidState(
                    f"{state.ref} has red flags ({', '.join(flags)}): `not-risky` also needs the mitigation "
                    f"questions answered Yes or No (open: {', '.join(open_mit)})."
                )
            unaddressed = [qid for qid in flags if not names_question(reason, qid)]
            if unaddressed:
                raise InvalidState(
                    f"{state.ref} has red flags ({', '.join(flags)}): the reason must address each of them by ID "
                    f'(missing: {", ".join(unaddressed)}), e.g. reason="{flags[0]}: why it is not significant".'
                )


def names_question(text: str, qid: str) -> bool:
    """True when ``text`` names the question ID as a word (``CI-1`` but not ``CI-12`` or ``XCI-1``)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(qid)}(?![0-9])", text, flags=re.IGNORECASE) is not None


def apply_determination(state: ReviewState, outcome: str, on: date) -> ReviewState:
    """The state after a (re-)determination: a new outcome voids earlier certification and notice, and it ends
    a re-determination under way (the answers freeze again)."""
    return state.with_(
        determination=outcome,
        determined_on=on,
        redetermination_on=None,
        certified_on=None,
        certified_by=None,
        notice_on=None,
        cleared_on=None,
    )


def check_certify(state: ReviewState, on: date) -> None:
    """§2(f): certification only of a `not-risky` determination, once."""
    check_open(state, "certify")
    if state.determination != NOT_RISKY:
        raise InvalidState(
            f"Certification (§2(f)) certifies a `not-risky` determination; {state.ref} is "
            f"{'`' + state.determination + '`' if state.determination else 'not determined yet'} "
            f'(`determine {state.ref} not-risky reason="…"` comes first).'
        )
    if state.certified_on is not None:
        raise InvalidState(
            f"{state.ref} was already certified on {state.certified_on.isoformat()} by {state.certified_by}."
        )
    _not_before(on, state.determined_on, "the determination", state.ref, "certify")


def check_certifier(state: ReviewState, determined_by: str | None, actor: str) -> None:
    """§2(f) makes certification a separate, non-delegable act of the relevant official: whoever recorded the
    determination may not record its certification too (two people; SPEC "Who uses it")."""
    if determined_by is not None and determined_by == actor:
        raise InvalidState(
            "§2(f): certification is a separate act of the relevant official; the person who recorded the "
            f"determination (<@{actor}>) may not also record its certification. Another official records "
            f'`certify {state.ref} official="…"`.'
        )


def check_notify(state: ReviewState, on: date) -> None:
    """§2(g): notice to the APNSA only after certification, once."""
    check_open(state, "notify")
    if state.determination != NOT_RISKY or state.certified_on is None:
        raise InvalidState(
            f"The APNSA notice (§2(g)) comes after a certified `not-risky` determination; {state.ref} is not certified yet "
            f'(`certify {state.ref} official="…"` first).'
        )
    if state.notice_on is not None:
        raise InvalidState(
            f"The APNSA was already notified for {state.ref} on {state.notice_on.isoformat()}."
        )
    _not_before(on, state.certified_on, "the certification", state.ref, "notify")


def check_clear(state: ReviewState, on: date) -> None:
    """The APNSA may end the waiting period early: only after notice and before it ended."""
    check_open(state, "clear")
    if state.notice_on is None:
        raise InvalidState(
            f"Nothing to clear: the APNSA has not been notified for {state.ref} (`notify` first)."
        )
    if state.cleared_on is not None:
        raise InvalidState(f"The APNSA already cleared {state.ref} on {state.cleared_on.isoformat()}.")
    _not_before(on, state.notice_on, "the APNSA notice", state.ref, "clear")
    end = schedule.waiting_period_end(state.notice_on)
    if on >= end:
        raise InvalidState(
            f"The waiting period for {state.ref} already ended on {end.isoformat()}; there is nothing to clear."
        )


def check_stopwork(state: ReviewState, on: date) -> None:
    """A stop-work order can be issued once at a time."""
    check_open(state, "stopwork")
    if state.stopwork_since is not None:
        raise InvalidState(
            f"A stop-work order has been in effect on {state.ref} since {state.stopwork_since.isoformat()}; "
            f'`resume {state.ref} reason="…"` lifts it before a new one can be recorded.'
        )
    _not_before(on, state.awarded_on, "the award", state.ref, "stopwork")
    if state.stopwork_lifted_on is not None and on < state.stopwork_lifted_on:
        raise InvalidState(
            f"`stopwork` on {on.isoformat()} would fall inside (or before) the previous stop-work order on {state.ref}, "
            f"lifted on {state.stopwork_lifted_on.isoformat()}; give `on=` a date on or after "
            f"{state.stopwork_lifted_on.isoformat()}."
        )


def check_resume(state: ReviewState, on: date) -> None:
    """Only a stop-work order in effect can be lifted, not before it started."""
    check_open(state, "resume")
    if state.stopwork_since is None:
        raise InvalidState(
            f"No stop-work order is in effect on {state.ref}; there is nothing to resume "
            f'(`stopwork {state.ref} reason="…"` records one).'
        )
    _not_before(on, state.stopwork_since, "the stop-work order", state.ref, "resume")


def check_waiver(state: ReviewState, on: date, until: date) -> None:
    """§2(m): a waiver of a prohibition, at most one year, not while another is in force."""
    check_open(state, "waiver")
    if state.determination != PROHIBITED:
        raise InvalidState(
            f"A waiver (§2(m)) waives a prohibition; {state.ref} is "
            f"{'`' + state.determination + '`' if state.determination else 'not determined'}, not `prohibited` "
            f'(an official records `determine {state.ref} prohibited reason="…"` first).'
        )
    if waiver_counts(state, on):
        assert state.waiver_until is not None  # a waiver in force has its end date
        raise InvalidState(
            f"A waiver is already in force on {state.ref} through {state.waiver_until.isoformat()}; "
            f'`revoke-waiver {state.ref} reason="…"` first to replace it.'
        )
    _not_before(on, state.determined_on, "the prohibition", state.ref, "waiver")
    _not_before(on, state.waiver_issued_on, "the previous waiver", state.ref, "waiver")
    _not_before(on, state.waiver_revoked_on, "the revocation of the previous waiver", state.ref, "waiver")
    if pending_waiver_report(state) == "revocation":
        raise InvalidState(
            f"The 72-hour report of the revocation of the previous waiver on {state.ref} is still outstanding; "
            f"record it with `waiver-report {state.ref}` before issuing a new waiver."
        )
    limit = schedule.waiver_max_until(on)
    if until <= on:
        raise InvalidState(f"`until` ({until.isoformat()}) must be after the issue date ({on.isoformat()}).")
    if until > limit:
        raise InvalidState(
            f"A waiver lasts at most one year (§2(m)): `until` may be {limit.isoformat()} at the latest, not {until.isoformat()}."
        )


def check_revoke_waiver(state: ReviewState, on: date) -> None:
    """Only a waiver in force can be revoked."""
    check_open(state, "revoke-waiver")
    if (
        state.waiver_issued_on is None
        or state.waiver_revoked_on is not None
        or not waiver_in_force(state, on)
    ):
        raise InvalidState(
            f"No waiver is in force on {state.ref} on that date; there is nothing to revoke (`show {state.ref}` "
            "shows the waiver)."
        )
    _not_before(on, state.waiver_issued_on, "the waiver", state.ref, "revoke-waiver")


def pending_waiver_report(state: ReviewState) -> str | None:
    """Which 72-hour report is outstanding: 'revocation', 'waiver', or None."""
    if state.waiver_revoked_on is not None and not state.revocation_reported:
        return "revocation"
    if state.waiver_issued_on is not None and not state.waiver_reported:
        return "waiver"
    return None


def check_waiver_report(state: ReviewState, on: date) -> str:
    """§2(m) 72-hour report: returns which report (waiver or revocation) this records."""
    check_open(state, "waiver-report")
    which = pending_waiver_report(state)
    if which is None:
        raise InvalidState(
            f"No waiver or revocation report is outstanding on {state.ref}: every 72-hour report was recorded "
            "(or no waiver was issued)."
        )
    start = state.waiver_revoked_on if which == "revocation" else state.waiver_issued_on
    _not_before(on, start, f"the {which}", state.ref, "waiver-report")
    return which


def last_milestone(state: ReviewState) -> tuple[str, date] | None:
    """The latest dated event on record (award, stop-work, determination, certification, notice…), named."""
    dated = [
        ("the award", state.awarded_on),
        ("the stop-work order", state.stopwork_since),
        ("the lifting of the stop-work order", state.stopwork_lifted_on),
        ("the determination", state.determined_on),
        ("the re-determination (§2(j))", state.redetermination_on),
        ("the certification", state.certified_on),
        ("the APNSA notice", state.notice_on),
        ("the APNSA clearance", state.cleared_on),
        ("the waiver", state.waiver_issued_on),
        ("the waiver's 72-hour report", state.waiver_reported_on),
        ("the revocation of the waiver", state.waiver_revoked_on),
        ("the revocation's 72-hour report", state.revocation_reported_on),
    ]
    known = [(what, day) for what, day in dated if day is not None]
    return max(known, key=lambda item: item[1]) if known else None


def check_close(state: ReviewState, on: date) -> None:
    """A contract is closed once, on or after its last milestone."""
    check_open(state, "close")
    latest = last_milestone(state)
    if latest is not None:
        _not_before(on, latest[1], latest[0], state.ref, "close")


def check_reopen(state: ReviewState) -> None:
    """Only a closed contract can be reopened (a close made by mistake)."""
    if state.closed_on is None:
        raise InvalidState(f"{state.ref} is not closed; there is nothing to reopen.")


def check_on_date(on: date, today: date) -> None:
    """Dates in the past are accepted and shift every clock; dates in the future are refused."""
    if on > today:
        raise InvalidState(
            f"`on={on.isoformat()}` is in the future; dates in the future are refused (today is {today.isoformat()})."
        )


def effective_at(on: date | None, today: date, now: datetime, start_of_day: datetime) -> datetime:
    """When a dated action happened: now for today, else the start of that local day (the conservative clock)."""
    if on is None or on == today:
        return now
    return start_of_day


# ---- duplicate filings ----------------------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[\W_]+")


def filing_key(vendor: str, product: str, agency: str) -> tuple[str, str, str]:
    """What makes two filings the same contract: vendor, product and agency, ignoring case, accents' forms,
    punctuation and spacing ("Paragon Solutions, Inc." = "paragon solutions inc")."""

    def norm(text: str) -> str:
        return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())

    return norm(vendor), norm(product), norm(agency)


def filing_fingerprint(vendor: str, product: str, agency: str) -> str:
    """``filing_key`` as one short string the database can index (SHA-256 of its parts)."""
    return hashlib.sha256("\x1f".join(filing_key(vendor, product, agency)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LookAlike:
    """An open contract a new filing looks like."""

    ref: str
    filed_by: str
    filed_on: date


class DuplicateFiling(DomainError):
    """The filing looks like an open contract already filed: the user is asked to confirm (nothing is written)."""

    def __init__(self, like: LookAlike, *, how_to_confirm: str) -> None:
        super().__init__(
            f"This looks like *{like.ref}* (filed {like.filed_on.isoformat()} by <@{like.filed_by}>): the same "
            f"vendor, product and agency, still open. Nothing was filed. `/contract show {like.ref}` shows it; "
            f"{how_to_confirm}"
        )
        self.like = like
