"""Read models: what `show`, the parent message, the thread and App Home display about a contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from bot.domain import questions as qs
from bot.domain import review, schedule
from storage import repositories as repo
from storage.models import Contract, Question


def ref_of(contract_id: int) -> str:
    """The public reference of a contract number."""
    return f"CR-{contract_id}"


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
    determination_reason: str | None = None
    determined_by: str | None = None
    waiver_official: str | None = None
    waiver_reason: str | None = None
    close_reason: str | None = None
    waiting_end: date | None = None
    waiver_report_due: datetime | None = None
    next_reminders: tuple[tuple[str, datetime], ...] = field(default_factory=tuple)

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
        stopwork_since=contract.stopwork_since,
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
        closed_on=contract.closed_on,
    )


def build_contract_view(
    s: Session, contract: Contract, today: date, *, with_reminders: bool = True
) -> ContractView:
    """Assemble the view of one contract from the database."""
    assert contract.id is not None  # a stored contract has its number
    questions = repo.list_questions(s, contract.id)
    by_qid = {q.qid: q for q in questions}
    state = state_of(contract, questions)
    answers = dict(state.answers)
    qviews = []
    for q in qs.QUESTIONS:
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
                red_flag=qs.is_red_flag(q.qid, row.answer if row else None),
                message_ts=row.message_ts if row else None,
            )
        )
    answered, total = qs.progress(answers)
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
        reminders = tuple(
            (r.kind, r.due_at) for r in repo.list_pending_reminders(s, contract_id=contract.id, limit=5)
        )
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
        red_flags=tuple(qs.red_flags(answers)),
        out_of_scope=qs.out_of_scope(answers),
        reviewers=tuple(repo.list_assignments(s, contract.id)),
        stopwork_reason=contract.stopwork_reason,
        determination_reason=contract.determination_reason,
        determined_by=contract.determined_by,
        waiver_official=contract.waiver_official,
        waiver_reason=contract.waiver_reason,
        close_reason=contract.close_reason,
        waiting_end=review.waiting_period_end(state),
        waiver_report_due=report_due,
        next_reminders=reminders,
    )
