"""The EO 14093 due-diligence questionnaire (IDs and wording from EO14093.md §2) and how it is asked.

The questions are versioned: each contract keeps the version of the set it was filed under
(``Contract.question_set``; none stored means the first set), and is asked, answered and shown under that
set, so a later change of the questions does not rewrite old reviews. A new version goes into QUESTION_SETS
and becomes QUESTION_SET_VERSION; the old ones stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

YES, NO, UNKNOWN = "yes", "no", "unknown"
ANSWER_VALUES = (YES, NO, UNKNOWN)


@dataclass(frozen=True)
class Question:
    """One due-diligence question; ``red_flag_on`` is the answer that counts as a red flag, if any."""

    qid: str
    section: str
    citation: str
    text: str
    red_flag_on: str | None = None


@dataclass(frozen=True)
class Section:
    """A group of questions asked together, once the section before it is complete."""

    key: str
    title: str
    help: str


SECTIONS: tuple[Section, ...] = (
    Section("SCOPE", "Scope", "Does EO 14093 apply at all? SCOPE-1 = No ends the review."),
    Section("PROC", "Procurement (§3)", "Yes = the step was done."),
    Section("CI", "Counterintelligence / security risk (§2(a)(i))", "Yes = red flag."),
    Section("IU", "Improper-use risk (§2(a)(ii))", "Yes = red flag."),
    Section(
        "MIT", "Mitigating considerations (§2(a)(iii))", "Yes lowers the risk (MIT-1: yes raises concern)."
    ),
)

QUESTIONS: tuple[Question, ...] = (
    Question(
        "SCOPE-1",
        "SCOPE",
        "§5(b)",
        "Is the product an end-to-end software suite, furnished commercially (directly or through a third party or subsidiary), that lets its user get remote access to a computer without the consent of the computer's user, administrator or owner, in order to take content, record calls, audio or video, or track location? If no, the order does not apply.",
    ),
    Question(
        "SCOPE-2",
        "SCOPE",
        "§5(i), §2(l)",
        "Is the intended use an operational use, i.e. remote, non-consensual access for one of those three purposes? Or is it one of the excluded purposes: testing, research, analysis, cybersecurity, countermeasure development, or a criminal investigation of the spyware's own sale or use?",
    ),
    Question(
        "SCOPE-3",
        "SCOPE",
        "§2(b)",
        "Will a contractor or other third party run the tool at the agency's request or with its direct help? That counts as the agency's own operational use.",
    ),
    Question(
        "SCOPE-4",
        "SCOPE",
        "§5(l)",
        "Is the access remote, i.e. over an external network while the device is not in the physical possession of whoever is accessing it?",
    ),
    Question(
        "SCOPE-5",
        "SCOPE",
        "§5(a)",
        'Is the buyer an "agency" under 44 U.S.C. 3502(1)? Independent regulatory agencies (44 U.S.C. 3502(5)) are excluded.',
    ),
    Question(
        "PROC-1", "PROC", "§3(a)", "Has the reviewer read the current DNI intelligence assessment (§2(c))?"
    ),
    Question(
        "PROC-2",
        "PROC",
        "§3(b)",
        "Has the agency asked the DNI for any further information on this product that bears on the §2(a) factors?",
    ),
    Question("PROC-3", "PROC", "§3(c)", "Have CI-1…IU-3 been weighed against the DNI information?"),
    Question(
        "PROC-4",
        "PROC",
        "§3(d)",
        "Does the vendor have reasonable due-diligence procedures, standards and controls that could detect and prevent risky uses, in line with State Department guidance on business and human rights and on foreign-government end users of surveillance products?",
    ),
    Question(
        "CI-1",
        "CI",
        "§2(a)(i)(A)",
        "Is there credible information that a foreign government or foreign person has used or acquired this spyware to get into, or try to get into, USG computers or the computers of USG personnel without USG permission?",
        YES,
    ),
    Question(
        "CI-2",
        "CI",
        "§2(a)(i)(B)(1)",
        'Does the entity furnishing the spyware keep, pass on, or use data collected through the spyware without permission from the licensed end user or the USG? (Also answer "yes" if it has done so in the past; the order says "was or is furnished".)',
        YES,
    ),
    Question(
        "CI-3",
        "CI",
        "§2(a)(i)(B)(2)",
        "Has the furnishing entity disclosed, or does it intend to disclose, non-public USG information or non-public information about USG activities without USG permission?",
        YES,
    ),
    Question(
        "CI-4",
        "CI",
        "§2(a)(i)(B)(3)",
        "Is the furnishing entity under the direct or effective control of a foreign government or foreign person that runs intelligence activities (including surveillance or espionage) aimed at the United States?",
        YES,
    ),
    Question(
        "IU-1",
        "IU",
        "§2(a)(ii)(A)(1)",
        "Has a foreign government or foreign person used this spyware, or any other spyware from the same vendor, to gather information on activists, academics, journalists, dissidents, political figures, NGO members or marginalized communities, for any of these ends: intimidating them, curbing dissent or political opposition, restricting expression, assembly or association, or enabling other human-rights abuses or suppression of civil liberties?",
        YES,
    ),
    Question(
        "IU-2",
        "IU",
        "§2(a)(ii)(A)(2)",
        "Has a foreign government or foreign person used this spyware, or other spyware from the same vendor, to monitor a U.S. person without that person's consent, to help track or target them without proper legal authorization, safeguards and oversight?",
        YES,
    ),
    Question(
        "IU-3",
        "IU",
        "§2(a)(ii)(B)",
        "Was the spyware furnished by an entity that supplies commercial spyware to governments which the State Department's annual human-rights country reports credibly describe as engaging in systematic political repression? Repression here includes arbitrary arrest or detention, torture, extrajudicial or politically motivated killing, or other gross human-rights violations, consistent with any State findings under NDAA FY22 §5502 or similar findings.",
        YES,
    ),
    Question(
        "MIT-1",
        "MIT",
        "§2(a)(iii)",
        'Did the furnishing entity know, or should it reasonably have known, that the spyware posed any CI-* or IU-* risk? (Here "yes" raises concern.)',
    ),
    Question(
        "MIT-2",
        "MIT",
        "§2(a)(iii)",
        "Has the entity taken appropriate steps to remove the risk by cancelling the licensing agreements or contracts that created it?",
    ),
    Question(
        "MIT-3",
        "MIT",
        "§2(a)(iii)",
        "Has the entity taken other verifiable action to stop the risky uses from continuing?",
    ),
    Question(
        "MIT-4",
        "MIT",
        "§2(a)(iii)",
        "Is the entity cooperating with USG efforts to counter improper use of the spyware?",
    ),
)

RISK_SECTIONS = ("CI", "IU")


@dataclass(frozen=True)
class QuestionSet:
    """One version of the questionnaire: its sections and questions, and the rules of asking them."""

    version: str
    sections: tuple[Section, ...]
    questions: tuple[Question, ...]
    by_id: dict[str, Question] = field(init=False, repr=False, compare=False)
    section_by_key: dict[str, Section] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {q.qid: q for q in self.questions})
        object.__setattr__(self, "section_by_key", {s.key: s for s in self.sections})

    @property
    def ids(self) -> tuple[str, ...]:
        """The question IDs in questionnaire order."""
        return tuple(q.qid for q in self.questions)

    def questions_in(self, section: str) -> tuple[Question, ...]:
        """The questions of one section, in order."""
        return tuple(q for q in self.questions if q.section == section)

    def get(self, qid: str) -> Question:
        """The question with that ID (case-insensitive); raises KeyError for an ID not in this set."""
        return self.by_id[qid.strip().upper()]

    def risk_ids(self) -> list[str]:
        """The IDs of the risk questions (CI, IU): a `not-risky` determination needs each answered Yes or No."""
        return [q.qid for q in self.questions if q.section in RISK_SECTIONS]

    def sections_to_ask(self, answers: Mapping[str, str]) -> tuple[str, ...]:
        """The sections that should have been asked by now: each one once the one before it is complete.

        An ``unknown`` answer completes a question (it is an answer); SCOPE-1 = No stops at SCOPE.
        """
        asked: list[str] = []
        for section in self.sections:
            asked.append(section.key)
            if section.key == "SCOPE" and out_of_scope(answers):
                break
            if any(q.qid not in answers for q in self.questions_in(section.key)):
                break
        return tuple(asked)

    def questions_to_ask(
        self, answers: Mapping[str, str], already_asked: set[str] | frozenset[str]
    ) -> list[Question]:
        """Questions that are due to be asked and have not been asked yet, in questionnaire order."""
        due = set(self.sections_to_ask(answers))
        return [q for q in self.questions if q.section in due and q.qid not in already_asked]

    def is_red_flag(self, qid: str, value: str | None) -> bool:
        """True when this answer is a red flag (CI/IU answered Yes)."""
        q = self.by_id.get(qid)
        return bool(q and q.red_flag_on and value == q.red_flag_on)

    def red_flags(self, answers: Mapping[str, str]) -> list[str]:
        """IDs of the answers that are red flags, in questionnaire order."""
        return [q.qid for q in self.questions if self.is_red_flag(q.qid, answers.get(q.qid))]

    def progress(self, answers: Mapping[str, str]) -> tuple[int, int]:
        """(answered, total) over the questions that apply: only SCOPE when the order does not apply."""
        applicable = self.questions_in("SCOPE") if out_of_scope(answers) else self.questions
        return sum(1 for q in applicable if q.qid in answers), len(applicable)

    def open_questions(
        self, answers: Mapping[str, str], already_asked: set[str] | frozenset[str]
    ) -> list[str]:
        """IDs of questions asked in the thread and still without an answer."""
        return [q.qid for q in self.questions if q.qid in already_asked and q.qid not in answers]


# the version new filings are asked under; contracts filed before versions existed (none stored) have the first
QUESTION_SET_VERSION = "2026-12"
FIRST_QUESTION_SET = "2026-12"
QUESTION_SETS: dict[str, QuestionSet] = {"2026-12": QuestionSet("2026-12", SECTIONS, QUESTIONS)}


def current_set() -> QuestionSet:
    """The set new filings are asked under (read at call time: a new version takes effect at once)."""
    return QUESTION_SETS[QUESTION_SET_VERSION]


def question_set(version: str | None) -> QuestionSet:
    """The set a contract was filed under (``Contract.question_set``); none stored is the first set."""
    return QUESTION_SETS[version or FIRST_QUESTION_SET]


def known_ids() -> frozenset[str]:
    """Every question ID of every set: an answer names one of them (its contract's set decides if it is valid)."""
    return frozenset(qid for qset in QUESTION_SETS.values() for qid in qset.by_id)


# The current set's questions by module name, for help and the callers that have no contract at hand.
QUESTION_BY_ID: dict[str, Question] = {q.qid: q for q in QUESTIONS}
SECTION_BY_KEY: dict[str, Section] = {s.key: s for s in SECTIONS}


def _of(qset: QuestionSet | None) -> QuestionSet:
    return qset if qset is not None else current_set()


def questions_in(section: str, qset: QuestionSet | None = None) -> tuple[Question, ...]:
    """The questions of one section, in order (of ``qset``, by default the current set)."""
    return _of(qset).questions_in(section)


def get_question(qid: str, qset: QuestionSet | None = None) -> Question:
    """The question with that ID (case-insensitive); raises KeyError for an unknown ID."""
    return _of(qset).get(qid)


def out_of_scope(answers: Mapping[str, str]) -> bool:
    """True when scoping shows the order does not apply (SCOPE-1 answered No): the order's own test, every set."""
    return answers.get("SCOPE-1") == NO


def sections_to_ask(answers: Mapping[str, str], qset: QuestionSet | None = None) -> tuple[str, ...]:
    """The sections that should have been asked by now (QuestionSet.sections_to_ask)."""
    return _of(qset).sections_to_ask(answers)


def questions_to_ask(
    answers: Mapping[str, str], already_asked: set[str] | frozenset[str], qset: QuestionSet | None = None
) -> list[Question]:
    """Questions that are due to be asked and have not been asked yet, in questionnaire order."""
    return _of(qset).questions_to_ask(answers, already_asked)


def is_red_flag(qid: str, value: str | None, qset: QuestionSet | None = None) -> bool:
    """True when this answer is a red flag (CI/IU answered Yes)."""
    return _of(qset).is_red_flag(qid, value)


def red_flags(answers: Mapping[str, str], qset: QuestionSet | None = None) -> list[str]:
    """IDs of the answers that are red flags, in questionnaire order."""
    return _of(qset).red_flags(answers)


def progress(answers: Mapping[str, str], qset: QuestionSet | None = None) -> tuple[int, int]:
    """(answered, total) over the questions that apply: only SCOPE when the order does not apply."""
    return _of(qset).progress(answers)


def open_questions(
    answers: Mapping[str, str], already_asked: set[str] | frozenset[str], qset: QuestionSet | None = None
) -> list[str]:
    """IDs of questions asked in the thread and still without an answer."""
    return _of(qset).open_questions(answers, already_asked)
