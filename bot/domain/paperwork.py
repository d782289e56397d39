"""The order's paperwork: the notices EO 14093 requires, built from what the record holds (SPEC "The order's paperwork").

Pure: plain record facts in (``RecordFacts``, filled by the service), a ``Document`` out (title, heading lines,
sections of paragraphs and tables, and what the record still lacks for that notice). Rendering to Markdown or Word
is bot.services.documents. Text is plain here; each renderer escapes it for its own format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from bot.domain import questions as qs
from bot.domain import schedule
from bot.domain.errors import InvalidState

KINDS = ("apnsa", "dni", "waiver", "redetermination", "excluded")
SECTION_OF = {
    "apnsa": "§2(g)",
    "dni": "§2(d)",
    "waiver": "§2(m)",
    "redetermination": "§2(j)",
    "excluded": "§4(b)",
}
TITLES = {
    "apnsa": "Notice to the APNSA of a decision to make operational use (EO 14093 §2(g))",
    "dni": "Determination and key elements of its analysis, for the DNI (EO 14093 §2(d))",
    "waiver": "Notice of a waiver of a prohibition (EO 14093 §2(m))",
    "redetermination": "Re-determination on new information (EO 14093 §2(j))",
    "excluded": "Notice of a purchase for an excluded purpose (EO 14093 §4(b))",
}
DRAFT_LINE = "DRAFT — references only, no classified content"
LEGAL_BASIS = (
    "Executive Order 14093, Prohibition on Use by the United States Government of Commercial Spyware That "
    "Poses Risks to National Security (27 March 2023), 88 FR 18957"
)
# until bot.domain.questions names its versions (issue 15, "question-set versions")
DEFAULT_QUESTION_SET = "EO 14093 due diligence questions, 2026-12"
MISSING_HEADING = "Not yet complete:"
NOT_RECORDED = "not recorded"


def current_question_set() -> str:
    """The name of the question set new reviews are answered under."""
    version = getattr(qs, "QUESTION_SET_VERSION", None)
    return f"EO 14093 due diligence questions, {version}" if version else DEFAULT_QUESTION_SET


# ---- the facts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerFact:
    """One question of the set with its current answer (``answer`` None: not answered)."""

    qid: str
    section: str
    citation: str
    text: str
    answer: str | None = None
    note: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class RecordFacts:
    """What the record holds about one contract, as plain values (people as member IDs, dates local)."""

    ref: str
    vendor: str
    product: str
    agency: str
    filed_by: str
    filed_at: datetime
    component: str | None = None
    value_cents: int | None = None
    awarded_on: date | None = None
    term: str | None = None
    purpose: str | None = None
    third_party: bool | None = None
    parent: str | None = None
    contract_no: str | None = None
    scope: str | None = None
    question_set: str = ""
    answers: tuple[AnswerFact, ...] = ()
    stopwork_since: date | None = None
    stopwork_reason: str | None = None
    stopwork_lifted_on: date | None = None
    determination: str | None = None
    determined_on: date | None = None
    determined_by: str | None = None
    determination_reason: str | None = None
    certified_on: date | None = None
    certified_by: str | None = None  # the relevant official's title
    notice_on: date | None = None
    cleared_on: date | None = None
    waiver_official: str | None = None
    waiver_issued_on: date | None = None
    waiver_issued_at: datetime | None = None
    waiver_until: date | None = None
    waiver_reason: str | None = None
    waiver_circumstances: str | None = None
    waiver_alternatives: str | None = None
    waiver_revoked_on: date | None = None
    waiver_revoked_at: datetime | None = None
    waiver_reported_on: date | None = None
    revocation_reported_on: date | None = None
    # §2(j): the re-determination under way, or the last one (from the audit trail once decided)
    redetermination_on: date | None = None
    redetermination_reason: str | None = None
    redetermination_by: str | None = None
    redetermination_open: bool = False  # answers reopened, no new determination yet
    previous_determination: str | None = None
    closed_on: date | None = None
    close_reason: str | None = None
    # screening-list results of the vendor, its parent and affiliates, in words; how many are still open
    screening: tuple[str, ...] = ()
    open_screening_matches: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def answer_map(self) -> dict[str, str]:
        """QID -> answer, answered questions only."""
        return {a.qid: a.answer for a in self.answers if a.answer}


# ---- the document ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table: header row and rows of plain-text cells."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = str | Table


@dataclass(frozen=True)
class DocSection:
    """A heading and its paragraphs and tables, in order."""

    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """One notice drafted from the record."""

    kind: str
    ref: str
    title: str
    banner: str
    headings: tuple[str, ...]  # lines under the title: the draft line, legal basis, question set, contract
    missing: tuple[str, ...]  # what the record lacks for this notice (shown at the top)
    sections: tuple[DocSection, ...]

    @property
    def filename_stem(self) -> str:
        """e.g. ``CR-1-apnsa-draft``."""
        return f"{self.ref}-{self.kind}-draft"

    def text(self) -> str:
        """Every piece of text, in order (for checks and search)."""
        parts = [self.banner, self.title, *self.headings, *self.missing]
        for sec in self.sections:
            parts.append(sec.heading)
            for b in sec.blocks:
                parts.extend(
                    [*b.headers, *(c for row in b.rows for c in row)] if isinstance(b, Table) else [b]
                )
        parts.append(self.banner)
        return "\n".join(parts)


# ---- helpers --------------------------------------------------------------------------------------------------


def _d(day: date | None) -> str:
    return day.isoformat() if day else NOT_RECORDED


def _dt(at: datetime | None, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if at else ""


def _money(cents: int | None) -> str:
    if cents is None:
        return NOT_RECORDED
    return f"USD {cents // 100:,}.{cents % 100:02d}"


def _or(value: str | None) -> str:
    return value if value else NOT_RECORDED


def _yes_no(value: bool | None) -> str:
    return NOT_RECORDED if value is None else ("yes" if value else "no")


def _purchase(f: RecordFacts) -> Table:
    rows = [
        ("Contract", f.ref + (f" (contract number {f.contract_no})" if f.contract_no else "")),
        ("Vendor", f.vendor + (f" (ultimate owner: {f.parent})" if f.parent else "")),
        ("Product", f.product),
        ("Agency", f.agency + (f", {f.component}" if f.component else "")),
        ("Value", _money(f.value_cents)),
        ("Awarded", _d(f.awarded_on)),
        ("Period of performance", _or(f.term)),
        ("Purpose", _or(f.purpose)),
        ("Run by a third party (§2(b))", _yes_no(f.third_party)),
        ("Scope", _or(f.scope)),
    ]
    return Table(("Item", "Record"), tuple(rows))


def pw_fact(q: qs.Question) -> AnswerFact:
    """A question of the set, not answered."""
    return AnswerFact(q.qid, q.section, q.citation, q.text)


def kind_problem(f: RecordFacts, kind: str) -> str | None:
    """Why this contract cannot have a notice of this kind (the message), or None."""
    ref = f.ref
    if kind == "waiver" and f.waiver_issued_on is None:
        return (
            f"{ref} has no waiver: a §2(m) notice reports a waiver. Record it first with "
            f'`/contract waiver {ref} official="…" until=DATE reason="…"`.'
        )
    if kind == "excluded" and f.purpose != "excluded":
        return (
            f"{ref} was not bought for an excluded purpose (purpose={f.purpose or 'not recorded'}): the §4(b) notice "
            "is for a purchase for testing, research, analysis, cybersecurity or countermeasures (`purpose=excluded`)."
        )
    if kind == "redetermination" and f.redetermination_on is None:
        return (
            f"{ref} has no re-determination: the §2(j) notice follows new information. Record it first with "
            f'`/contract redetermine {ref} reason="…"`.'
        )
    if kind == "apnsa":
        if f.purpose == "excluded":
            return (
                f"{ref} was bought for an excluded purpose: no §2(g) notice applies; its notice is "
                f"`/contract draft {ref} excluded` (§4(b))."
            )
        if f.determination in ("prohibited", "out-of-scope"):
            return (
                f"{ref} is determined *{f.determination}*: the §2(g) notice announces a decision to make "
                "operational use after a not-risky determination."
            )
    return None


def check_kind(f: RecordFacts, kind: str) -> None:
    """Raises InvalidState when the contract cannot have a notice of this kind."""
    problem = kind_problem(f, kind)
    if problem:
        raise InvalidState(problem)


def _answer_rows(f: RecordFacts, zone: tzinfo, qids: set[str] | None = None) -> tuple[tuple[str, ...], ...]:
    rows = []
    for a in f.answers:
        if qids is not None and a.qid not in qids:
            continue
        flag = " (red flag)" if qs.is_red_flag(a.qid, a.answer) else ""
        rows.append(
            (
                a.qid,
                f"{a.text} [{a.citation}]",
                (a.answer or "not answered") + flag,
                a.note or "",
                a.answered_by or "",
                _dt(a.answered_at, zone),
            )
        )
    return tuple(rows)


ANSWER_HEADERS = ("ID", "Question", "Answer", "Note", "Answered by", "When")


def _missing_answers(f: RecordFacts) -> list[str]:
    out = []
    # the facts list every question of the contract's set; with none, the current set's are all unanswered
    asked = f.answers or tuple(pw_fact(q) for q in qs.QUESTIONS)
    scope_only = qs.out_of_scope(f.answer_map)
    unanswered = [a.qid for a in asked if not a.answer and (not scope_only or a.section == "SCOPE")]
    if unanswered:
        out.append("answers to " + ", ".join(unanswered))
    unknown = [
        a.qid for a in f.answers if a.section in qs.RISK_SECTIONS and a.answer == qs.UNKNOWN
    ]  # §2(a): not-risky needs every risk question answered
    if unknown:
        out.append("CI/IU questions answered Unknown: " + ", ".join(unknown))
    return out


def _weighing(f: RecordFacts, zone: tzinfo) -> DocSection:
    answers = f.answer_map
    flags = qs.red_flags(answers)
    blocks: list[Block] = [
        "Red flags (§2(a)(i) and (ii) answered Yes): " + (", ".join(flags) if flags else "none"),
    ]
    mit = {a.qid for a in f.answers if a.section == "MIT"}
    rows = _answer_rows(f, zone, mit)
    if rows:
        blocks.append("Mitigating considerations (§2(a)(iii)):")
        blocks.append(Table(ANSWER_HEADERS, rows))
    return DocSection("How the §2(a) factors were weighed", tuple(blocks))


def _determination(f: RecordFacts) -> DocSection:
    if f.determination is None:
        return DocSection("Determination (§2(a))", ("No determination is recorded yet.",))
    return DocSection(
        "Determination (§2(a))",
        (
            f"Determination: {f.determination}, recorded {_d(f.determined_on)} by {_or(f.determined_by)}.",
            f"Reason: {_or(f.determination_reason)}",
        ),
    )


def _certification(f: RecordFacts) -> DocSection:
    if f.certified_on is None:
        return DocSection("Certification (§2(f))", ("No certification is recorded yet.",))
    return DocSection(
        "Certification (§2(f))",
        (f"Certified not-risky by the {_or(f.certified_by)} on {_d(f.certified_on)} (non-delegable).",),
    )


# ---- the five notices -----------------------------------------------------------------------------------------


def _apnsa(f: RecordFacts, zone: tzinfo) -> tuple[list[str], list[DocSection]]:
    missing = _missing_answers(f)
    if f.determination is None:
        missing.append("the §2(a) determination (`determine`)")
    if f.determination is not None and not f.determination_reason:
        missing.append("the reason for the determination")
    if f.certified_on is None:
        missing.append("the §2(f) certification by a relevant official (`certify`)")
    if f.redetermination_open:
        missing.append(
            f"a new determination: a §2(j) re-determination is open since {_d(f.redetermination_on)}"
        )
    if f.open_screening_matches:
        missing.append(
            f"a manager's decision on {f.open_screening_matches} possible screening-list match(es) (`screen`)"
        )
    if f.notice_on:
        end = f.notice_on + timedelta(days=schedule.WAITING_PERIOD_DAYS)
        wait = f"Notice recorded as sent on {_d(f.notice_on)}; no operational use before {end.isoformat()}"
        wait += (
            f" (the APNSA cleared it on {_d(f.cleared_on)})."
            if f.cleared_on
            else " unless the APNSA clears it sooner."
        )
    else:
        wait = (
            "Operational use may not start until at least 7 days after this notice, or until the APNSA says no "
            "further process is needed (§2(g))."
        )
    sections = [
        DocSection("The purchase", (_purchase(f),)),
        DocSection(
            "Due diligence done (§3)",
            (
                f"Every question of the set ({f.question_set}), its answer and note, who answered and when.",
                Table(ANSWER_HEADERS, _answer_rows(f, zone)),
            ),
        ),
        _weighing(f, zone),
        DocSection(
            "Screening lists (the vendor, its parent and affiliates)",
            f.screening or ("No possible match on the screening lists loaded.",),
        ),
        _determination(f),
        _certification(f),
        DocSection("Waiting period (§2(g))", (wait,)),
    ]
    return missing, sections


def _dni(f: RecordFacts, zone: tzinfo) -> tuple[list[str], list[DocSection]]:
    missing = []
    if f.determination is None:
        missing.append("the §2(a) determination (`determine`)")
    if f.redetermination_open:
        missing.append(
            f"a new determination: a §2(j) re-determination is open since {_d(f.redetermination_on)}"
        )
    missing += _missing_answers(f)
    risk = {a.qid for a in f.answers if a.section in qs.RISK_SECTIONS}
    sections = [
        DocSection("The purchase", (_purchase(f),)),
        _determination(f),
        DocSection(
            "Key elements of the analysis",
            (
                "Counterintelligence / security and improper-use factors (§2(a)(i), (ii)):",
                Table(ANSWER_HEADERS, _answer_rows(f, zone, risk)),
            ),
        ),
        _weighing(f, zone),
        DocSection(
            "Operational sensitivities",
            (
                "The DNI consults the agency on operational sensitivities before sharing this material (§2(d)).",
            ),
        ),
    ]
    return missing, sections


def _waiver(f: RecordFacts, zone: tzinfo) -> tuple[list[str], list[DocSection]]:
    missing = []
    if not f.waiver_circumstances:
        missing.append('the extraordinary circumstances (`waiver … circumstances="…"`)')
    if not f.waiver_alternatives:
        missing.append('why no feasible alternative exists (`waiver … alternatives="…"`)')
    if f.determination == "prohibited":
        waived = (
            f"The prohibition on operational use that follows the §2(a) determination of {_d(f.determined_on)} "
            f"(prohibited): {_or(f.determination_reason)}"
        )
    else:
        waived = "The prohibition on operational use under §2(a) of the order."
    deadline = (
        _dt(schedule.waiver_report_deadline(f.waiver_issued_at), zone) if f.waiver_issued_at else NOT_RECORDED
    )
    term = (
        f"Issued {_d(f.waiver_issued_on)}, in force through {_d(f.waiver_until)} (at most one year, §2(m))."
    )
    report = (
        f"Report sent on {_d(f.waiver_reported_on)}."
        if f.waiver_reported_on
        else f"The report to the President (through the APNSA), with a copy to the DNI, is due by {deadline}."
    )
    blocks: list[Block] = [term, f"72-hour report: {report}"]
    if f.waiver_revoked_on:
        revoked_due = (
            _dt(schedule.waiver_report_deadline(f.waiver_revoked_at), zone)
            if f.waiver_revoked_at
            else NOT_RECORDED
        )
        done = (
            f"sent on {_d(f.revocation_reported_on)}" if f.revocation_reported_on else f"due by {revoked_due}"
        )
        blocks.append(
            f"Revoked on {_d(f.waiver_revoked_on)}; the 72-hour report of the revocation is {done}."
        )
    sections = [
        DocSection("The purchase", (_purchase(f),)),
        DocSection("The prohibition waived", (waived,)),
        DocSection(
            "The official",
            (
                f"{_or(f.waiver_official)} (non-delegable; only the Attorney General may delegate, to the Deputy).",
            ),
        ),
        DocSection(
            "Extraordinary circumstances",
            (_or(f.waiver_circumstances), f"Reason recorded with the waiver: {_or(f.waiver_reason)}"),
        ),
        DocSection("Why no feasible alternative exists", (_or(f.waiver_alternatives),)),
        DocSection("Term and the 72-hour deadline", tuple(blocks)),
    ]
    return missing, sections


def _redetermination(f: RecordFacts, zone: tzinfo) -> tuple[list[str], list[DocSection]]:
    missing = []
    if f.redetermination_open:
        missing.append("the new determination (`determine`): the answers are still open")
    steps: list[str] = []
    if f.stopwork_since and (f.stopwork_lifted_on is None or f.stopwork_lifted_on < f.stopwork_since):
        steps.append(f"Stop-work order in effect since {_d(f.stopwork_since)}: {_or(f.stopwork_reason)}")
    if f.closed_on:
        steps.append(f"Contract closed on {_d(f.closed_on)}: {_or(f.close_reason)}")
    if not f.redetermination_open and f.determination == "prohibited" and not steps:
        missing.append("the steps taken to end operational use (a stop-work order or close-out on record)")
    if not steps:
        steps.append(
            "None recorded."
            if f.determination == "prohibited"
            else "Not needed unless the new determination finds the use risky."
        )
    new = (
        "Not yet made: the answers reopened for review."
        if f.redetermination_open
        else f"{_or(f.determination)}, recorded {_d(f.determined_on)} by {_or(f.determined_by)}. "
        f"Reason: {_or(f.determination_reason)}"
    )
    if f.previous_determination and not f.redetermination_open:
        new += f" (before: {f.previous_determination})"
    sections = [
        DocSection("The purchase", (_purchase(f),)),
        DocSection(
            "The new information",
            (
                f"Recorded {_d(f.redetermination_on)} by {_or(f.redetermination_by)}: {_or(f.redetermination_reason)}",
            ),
        ),
        DocSection("The new determination", (new,)),
        DocSection(
            "Answers under the re-determination",
            (Table(ANSWER_HEADERS, _answer_rows(f, zone)),),
        ),
        DocSection("Steps to end operational use (§2(j))", tuple(steps)),
        DocSection("Recipients", ("The DNI and the APNSA (§2(j)).",)),
    ]
    return missing, sections


def _excluded(f: RecordFacts, zone: tzinfo) -> tuple[list[str], list[DocSection]]:
    missing = []
    if f.awarded_on is None:
        missing.append("the award date (`awarded=`): the notice is due 45 days after it")
    if not f.scope:
        missing.append("the authorized uses (the filing's `scope=`)")
    due = schedule.excluded_notice_due(f.awarded_on).isoformat() if f.awarded_on else NOT_RECORDED
    sections = [
        DocSection("The purchase", (_purchase(f),)),
        DocSection(
            "Purpose and authorized uses",
            (
                "Purpose: excluded (§2(l): testing, research, analysis, cybersecurity, or developing "
                "countermeasures); not for operational use.",
                f"Authorized uses: {_or(f.scope)}",
            ),
        ),
        DocSection("Deadline", (f"Due to the APNSA within 45 days of the purchase: by {due} (§4(b)).",)),
    ]
    return missing, sections


_BUILDERS = {
    "apnsa": _apnsa,
    "dni": _dni,
    "waiver": _waiver,
    "redetermination": _redetermination,
    "excluded": _excluded,
}


def build_document(f: RecordFacts, kind: str, *, today: date, zone: tzinfo, banner: str) -> Document:
    """The notice of ``kind`` for this record; raises InvalidState when the contract cannot have that notice."""
    check_kind(f, kind)
    if not f.question_set:
        f = replace(f, question_set=current_question_set())
    missing, sections = _BUILDERS[kind](f, zone)
    headings = (
        DRAFT_LINE,
        f"Legal basis: {LEGAL_BASIS}, {SECTION_OF[kind]}.",
        f"Question set: {f.question_set}.",
        f"Contract {f.ref}: {f.vendor}, {f.product}, {f.agency}. Drafted from the record on {today.isoformat()}.",
    )
    return Document(
        kind=kind,
        ref=f.ref,
        title=TITLES[kind],
        banner=banner,
        headings=headings,
        missing=tuple(missing),
        sections=tuple(sections),
    )
