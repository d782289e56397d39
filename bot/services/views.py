"""Read models: what `show`, the parent message, the thread and App Home display about a contract."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from bot.domain import questions as qs
from bot.domain import review, schedule
from bot.domain.errors import InputError
from bot.services import planner, vendor_events
from bot.services.vendors import screening_lines
from storage import repositories as repo
from storage.models import Contract, Question


def ref_of(contract_id: int) -> str:
    """The public reference of a contract number."""
    return f"CR-{contract_id}"


# ---- links -------------------------------------------------------------------------------------------------

# A link Slack gave us (chat.getPermalink): https, no spaces and none of the characters that end a <url|label>.
_SAFE_URL = re.compile(r"https://[^\s<>|`\x00-\x1f\x7f]{1,480}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")


def link(url: str | None, label: str) -> str | None:
    """``<url|label>`` for a link Slack gave us, or None when it is not a plain https URL.

    NOTE: a bare URL is not turned into a link inside ``verbatim`` text (SLACK-FACTS F1.29), so every link is
    written in Slack's own form; ``&`` in the URL is escaped like any other text (F1.22). ``label`` must already
    be safe mrkdwn."""
    if not url or not _SAFE_URL.fullmatch(url):
        return None
    return f"<{url.replace('&', '&amp;')}|{label}>"


def thread_link(permalink: str | None, channel_id: str | None, *, posted: bool = True) -> str:
    """Where a contract's thread is: a link from chat.getPermalink, else the channel it is in (never a guessed
    host: GovSlack's differs, F1.30), or "" when not even the channel is known."""
    linked = link(permalink, "open the thread")
    if linked is not None:
        return linked
    if not channel_id or not _CHANNEL_ID.fullmatch(channel_id):
        return ""
    if not posted:
        return f"in <#{channel_id}> once its first message is posted"
    return f"in <#{channel_id}> (its link is not known yet)"


# ---- pages of long answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a long answer: which page, how many a page holds, how many there are in all."""

    number: int  # 1-based
    size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one, so "page 1 of 1" also describes an empty answer)."""
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        """How many items come before this page."""
        return (self.number - 1) * self.size

    @property
    def count(self) -> int:
        """How many items this page holds."""
        return max(0, min(self.size, self.total - self.offset))

    @property
    def is_last(self) -> bool:
        """Whether no page follows."""
        return self.number >= self.pages


def page_of(total: int, number: int, size: int, what: str) -> Page:
    """Page ``number`` of ``total`` items, ``size`` a page; raises InputError for a page that does not exist.

    ``what`` names the items for the refusal, e.g. "audit entries of CR-3"."""
    if number < 1:
        raise InputError(f"Pages are numbered from 1, so page {number} does not exist.")
    page = Page(number, size, total)
    if number > page.pages:
        if total == 0:
            held = f"there are no {what}"
        elif page.pages == 1:
            held = f"there is only one page ({total} {what})"
        else:
            held = f"there are {page.pages} pages ({total} {what}, {size} a page)"
        raise InputError(f"Page {number} does not exist: {held}.")
    return page


@dataclass(frozen=True)
class QuestionView:
    """One question as shown in the thread."""

    qid: str
    section: str
    citation: str
    text: str
    asked: bool
    answer: str | None = None
    note: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    red_flag: bool = False
    message_ts: str | None = None


@dataclass(frozen=True)
class ContractView:
    """Everything shown about one contract at one moment."""

    id: int
    ref: str
    vendor: str
    product: str
    agency: str
    component: str | None
    value_cents: int | None
    awarded_on: date | None
    term: str | None
    purpose: str | None
    third_party: bool | None
    parent: str | None
    contract_no: str | None
    scope: str | None
    filed_by: str
    filed_at: datetime
    status: str
    channel_id: str | None
    parent_ts: str | None
    state: review.ReviewState
    verdict: review.UseVerdict
    today: date
    questions: tuple[QuestionView, ...]
    answered: int
    total: int
    red_flags: tuple[str, ...]
    out_of_scope: bool
    reviewers: tuple[str, ...]
    stopwork_reason: str | None = None
    # the vendor and the screening results of it, its parent and affiliates (bot.services.vendors), in words
    screening: tuple[str, ...] = ()
    determination_reason: str | None = None
    determined_by: str | None = None
    waiver_official: str | None = None
    waiver_reason: str | None = None
    waiver_circumstances: str | None = None  # §2(m): the extraordinary circumstances (none on older waivers)
    waiver_alternatives: str | None = None  # §2(m): why no feasible alternative exists
    close_reason: str | None = None
    waiting_end: date | None = None
    waiver_report_due: datetime | None = None
    next_reminders: tuple[tuple[str, datetime], ...] = field(default_factory=tuple)
    permalink: str | None = None  # the parent message's link from chat.getPermalink, once known
    restricted: bool = False  # need-to-know (`restrict CR-n`): its reads are audited
    term_ends: date | None = None  # the period of performance's last day (bot.domain.clocks_far)
    review_due: str | None = None  # a §2(j) review a vendor event opened (bot.services.vendor_events)
    question_set: str = qs.FIRST_QUESTION_SET  # the version of the questions it was filed under

    @property
    def thread(self) -> str:
        """Where the contract's thread is, as mrkdwn: a link when Slack gave us one (see thread_link)."""
        return thread_link(self.permalink, self.channel_id, posted=self.parent_ts is not None)

    def question(self, qid: str) -> QuestionView | None:
        """The view of one question."""
        return next((q for q in self.questions if q.qid == qid), None)


def state_of(contract: Contract, questions: list[Question]) -> review.ReviewState:
    """The pure review state of a stored contract."""
    assert contract.id is not None  # a stored contract has its number
    return review.ReviewState(
        ref=ref_of(contract.id),
        purpose=contract.purpose,
        awarded_on=contract.awarded_on,
        answers={q.qid: q.answer for q in questions if q.answer},
        question_set=contract.question_set,
        stopwork_since=contract.stopwork_since,
        stopwork_lifted_on=contract.stopwork_lifted_on,
        stopwork_extended_until=contract.stopwork_extended_until,
        determination=contract.determination,
        determined_on=contract.determined_on,
        certified_on=contract.certified_on,
        certified_by=contract.certified_by,
        notice_on=contract.notice_on,
        cleared_on=contract.cleared_on,
        waiver_issued_on=contract.waiver_issued_on,
        waiver_until=contract.waiver_until,
        waiver_revoked_on=contract.waiver_revoked_on,
        waiver_reported=contract.waiver_reported_on is not None,
        revocation_reported=contract.revocation_reported_on is not None,
        waiver_reported_on=contract.waiver_reported_on,
        revocation_reported_on=contract.revocation_reported_on,
        redetermination_on=contract.redetermination_on,
        closed_on=contract.closed_on,
    )


def build_contract_view(
    s: Session,
    contract: Contract,
    today: date,
    *,
    with_reminders: bool = True,
    with_vendor: bool = True,
    with_reviewers: bool = True,
) -> ContractView:
    """Assemble the view of one contract from the database; without its next reminders, its vendor's screening
    lines or its reviewers when the caller shows none of them (each is a query or more)."""
    assert contract.id is not None  # a stored contract has its number
    questions = repo.list_questions(s, contract.id)
    by_qid = {q.qid: q for q in questions}
    state = state_of(contract, questions)
    answers = dict(state.answers)
    qset = qs.question_set(contract.question_set)  # the set it was filed under, not today's
    qviews = []
    for q in qset.questions:
        row = by_qid.get(q.qid)
        qviews.append(
            QuestionView(
                qid=q.qid,
                section=q.section,
                citation=q.citation,
                text=q.text,
                asked=row is not None,
                answer=row.answer if row else None,
                note=row.note if row else None,
                answered_by=row.answered_by if row else None,
                answered_at=row.answered_at if row else None,
                red_flag=qset.is_red_flag(q.qid, row.answer if row else None),
                message_ts=row.message_ts if row else None,
            )
        )
    answered, total = qset.progress(answers)
    report_due = None
    pending = review.pending_waiver_report(state)
    decision_time_of: dict[str | None, datetime | None] = {
        "revocation": contract.waiver_revoked_at,
        "waiver": contract.waiver_issued_at,
    }
    decided_at = decision_time_of.get(pending)
    if decided_at is not None:
        report_due = schedule.waiver_report_deadline(decided_at)
    reminders: tuple[tuple[str, datetime], ...] = ()
    if with_reminders:
        # in words, each once, only those still due to say something (bot.services.planner.upcoming)
        rows = repo.list_pending_reminders(s, contract_id=contract.id, limit=50)
        reminders = planner.upcoming(rows, contract, state, questions)
    return ContractView(
        id=contract.id,
        ref=ref_of(contract.id),
        vendor=contract.vendor,
        product=contract.product,
        agency=contract.agency,
        component=contract.component,
        value_cents=contract.value_cents,
        awarded_on=contract.awarded_on,
        term=contract.term,
        purpose=contract.purpose,
        third_party=contract.third_party,
        parent=contract.parent,
        contract_no=contract.contract_no,
        scope=contract.scope,
        filed_by=contract.filed_by,
        filed_at=contract.filed_at,
        status=review.status(state, today),
        channel_id=contract.channel_id,
        parent_ts=contract.parent_ts,
        state=state,
        verdict=review.operational_use(state, today),
        today=today,
        questions=tuple(qviews),
        answered=answered,
        total=total,
        red_flags=tuple(qset.red_flags(answers)),
        out_of_scope=qs.out_of_scope(answers),
        reviewers=tuple(repo.list_assignments(s, contract.id)) if with_reviewers else (),
        screening=screening_lines(s, contract) if with_vendor else (),
        stopwork_reason=contract.stopwork_reason,
        determination_reason=contract.determination_reason,
        determined_by=contract.determined_by,
        waiver_official=contract.waiver_official,
        waiver_reason=contract.waiver_reason,
        waiver_circumstances=contract.waiver_circumstances,
        waiver_alternatives=contract.waiver_alternatives,
        close_reason=contract.close_reason,
        waiting_end=review.waiting_period_end(state),
        waiver_report_due=report_due,
        next_reminders=reminders,
        permalink=contract.permalink,
        restricted=bool(contract.restricted),
        term_ends=contract.term_ends,
        review_due=vendor_events.review_due_line(s, contract),
        question_set=qset.version,
    )
