"""Review service: every `/contract` action as one unit of work (change + audit + outbox + reminders).

Raises the domain errors (InputError, NotFound, PermissionDenied, InvalidState); refusals of known
actors on known contracts are audited in their own transaction, and admins are told of missing-role attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.clock import Clock
from bot.config import Settings
from bot.domain import access, clocks_far, review, roles, schedule
from bot.domain import questions as qs
from bot.domain.args import AUDIT_PAGE_SIZE, COMMANDS, LIST_PAGE_SIZE
from bot.domain.calendar import BusinessCalendar
from bot.domain.errors import DomainError, InputError, InvalidState, NotFound, PermissionDenied
from bot.domain.text import escape_mrkdwn, find_classification_marking, quoted
from bot.services import planner, runtime, vendor_events
from bot.services.bindings import NOT_ITS_MESSAGE, is_question_message
from bot.services.reminders import deadlines as deadlines_of
from bot.services.runtime import RuntimeSettings
from bot.services.vendors import link_filing, link_vendor
from bot.services.views import ContractView, Page, build_contract_view, page_of, ref_of, state_of
from storage import audit
from storage import repositories as repo
from storage.db import SessionFactory, read_only, unit_of_work
from storage.models import Assignment, AuditEntry, Contract, Question, RoleGrant
from storage.replays import AlreadyCarriedOut

log = logging.getLogger(__name__)

# ADMIN_USER_IDS as the last start saw it (settings table; not settable): a change between starts is a role change
BOOTSTRAP_ADMINS_KEY = "bootstrap_admins"
BOOTSTRAP_ACTOR = "ADMIN_USER_IDS"  # the actor of those role changes in the audit log

CONTRACT_FIELDS = (
    "vendor",
    "product",
    "agency",
    "component",
    "value_cents",
    "awarded_on",
    "term",
    "purpose",
    "third_party",
    "parent",
    "contract_no",
    "scope",
)


# `sent CR-n KIND`: records the notice row inside another action's unit of work; returns the audit note
Sending = Callable[[Session, Contract, date, datetime], str]


@dataclass(frozen=True)
class Done:
    """An action that succeeded; ``text`` is the private confirmation (safe mrkdwn)."""

    text: str
    contract_id: int | None = None
    changed: bool = True


@dataclass(frozen=True)
class ContractList:
    """The answer to `list [status] [page=N]`: one page of contracts, newest first."""

    rows: tuple[ContractView, ...]
    status: str | None
    total: int
    page: Page | None = None


@dataclass(frozen=True)
class Timeline:
    """The answer to `audit CR-n [page=N]`: one page of the contract's audit entries, in the order they happened;
    page 1 holds the newest entries, each further page the ones before.

    ``first_position`` is the place of ``entries[0]`` in the contract's own log (1 = its first entry)."""

    ref: str
    entries: tuple[AuditEntry, ...]
    contract_id: int | None = None
    page: Page | None = None
    first_position: int = 1


@dataclass(frozen=True)
class RolesList:
    """The answer to `admin roles`."""

    bootstrap_admins: tuple[str, ...]
    grants: tuple[tuple[str, str], ...]  # (role, user_id)


@dataclass(frozen=True)
class SettingsList:
    """The answer to `admin settings`."""

    values: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)


def contract_snapshot(c: Contract) -> dict:
    """The audited fields of a contract (before/after of every change)."""
    return {
        k: getattr(c, k)
        for k in (
            *CONTRACT_FIELDS,
            "status",
            "stopwork_since",
            "stopwork_reason",
            "stopwork_lifted_on",
            "stopwork_extended_until",
            "term_ends",
            "determination",
            "determined_on",
            "determination_reason",
            "redetermination_on",
            "redetermination_reason",
            "review_due_since",
            "review_event_id",
            "certified_on",
            "certified_by",
            "notice_on",
            "cleared_on",
            "waiver_official",
            "waiver_issued_on",
            "waiver_until",
            "waiver_reason",
            "waiver_circumstances",
            "waiver_alternatives",
            "waiver_revoked_on",
            "waiver_reported_on",
            "revocation_reported_on",
            "closed_on",
            "close_reason",
            "restricted",
            "question_set",
        )
    }


def record_excluded_notice_sent(s: Session, c: Contract) -> int:
    """`sent CR-n excluded`: the §4(b) notice went out. Call it in the unit of work that wrote its notice row (kind
    "excluded", event "sent"): the reminders of it are cancelled; returns how many. The sweeper, the digest and App
    Home look for that row too, so nothing is reminded or shown overdue once it exists."""
    assert c.id is not None  # a stored contract has its number
    return repo.cancel_reminders(s, c.id, ["excluded-notice"])


def _waiver_justification(circumstances: str | None, alternatives: str | None) -> str:
    """The §2(m) justification after a waiver's reason, or what it lacks (the waiver notice needs both)."""
    parts = []
    if circumstances:
        parts.append("\nExtraordinary circumstances (§2(m)): " + quoted(circumstances))
    if alternatives:
        parts.append("\nNo feasible alternative (§2(m)): " + quoted(alternatives))
    missing = [w for w, v in (("circumstances", circumstances), ("alternatives", alternatives)) if not v]
    if missing:
        parts.append(
            "\nNot recorded: "
            + " and ".join(f'`{m}="…"`' for m in missing)
            + " (§2(m) asks for both; the waiver notice says what is missing)."
        )
    return "".join(parts)


def _reason_in_parentheses(reason: str) -> str:
    """A reason in parentheses on one line; one that spans lines set off as a quote below (bot.domain.text)."""
    text = quoted(reason, "). ")
    return f" ({text}" if text.endswith("). ") else f":{text}"


class ReviewService:
    """The application service behind every command, button and modal."""

    def __init__(
        self,
        session_factory: SessionFactory,
        clock: Clock,
        calendar: BusinessCalendar,
        settings: Settings,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.calendar = calendar
        self.settings = settings
        self.on_commit = on_commit or (lambda: None)
        # refuses a filing while the review channel is unset or the bot cannot post in it (ChannelService), in the
        # filing's own unit of work
        self.filing_gate: Callable[[Session, str | None], None] | None = None

    # ---- plumbing ---------------------------------------------------------------------------------------

    def today(self) -> date:
        """Today in BOT_TIMEZONE."""
        return self.calendar.local_date(self.clock.now())

    def runtime_settings(self, s: Session) -> dict[str, str]:
        """Settings from `/contract admin set`, falling back to the environment."""
        # every setting with its default (bot.services.runtime: one typed source), then what `admin set` stored
        # (read once per transaction by storage.repositories.get_settings)
        values = runtime.as_strings(RuntimeSettings.from_values({}, self.settings))
        values.update(repo.get_settings(s))
        return values

    def roles_of(self, s: Session, user_id: str) -> set[str]:
        """A user's roles: database grants plus bootstrap admin from ADMIN_USER_IDS."""
        held = repo.get_roles(s, user_id)
        if user_id in self.settings.admin_user_ids:
            held.add(roles.ADMIN)
        return held

    def _load(
        self, s: Session, contract_id: int | None, *, for_update: bool = True, reader: str | None = None
    ) -> Contract:
        """The contract; raises NotFound, or NotVisible (the same words) when ``reader`` may not read it.

        ``reader`` is None only for the bot's own reads (tests, rendering the thread): people's reads name them."""
        if contract_id is None:
            raise NotFound("Name the contract by its reference, e.g. `CR-1`.")
        contract = repo.get_contract(s, contract_id, for_update=for_update)
        if contract is None:
            raise NotFound(access.hidden(ref_of(contract_id)))
        if reader is not None and not access.may_read(self._facts(s, contract), self._reader(s, reader)):
            raise access.NotVisible(ref_of(contract_id), reader)
        return contract

    def _reader(self, s: Session, user_id: str) -> access.Reader:
        """The person reading, with their roles (need-to-know)."""
        return access.Reader.of(user_id, self.roles_of(s, user_id))

    @staticmethod
    def _facts(s: Session, c: Contract) -> access.ContractFacts:
        """What need-to-know needs of a contract: filer, restricted, assigned reviewers."""
        assert c.id is not None  # a stored contract has its number
        return access.ContractFacts(c.filed_by, bool(c.restricted), frozenset(repo.list_assignments(s, c.id)))

    def _audit_reads(self, reader: str, contract_ids: Iterable[int], via: str) -> None:
        """Write an audit entry "read" for each restricted contract just read (SPEC "Access"). Runs before the answer
        is returned: a read whose entry cannot be written is not shown (the error reaches the person)."""
        ids = sorted(set(contract_ids))
        if not ids:
            return
        with unit_of_work(self.session_factory) as s:
            now = self.clock.now()
            for cid in ids:
                repo.record_audit(s, at=now, actor=reader, action="read", contract_id=cid, detail=via)
        self.on_commit()

    def _run(
        self, actor: str, action: str, contract_id: int | None, work: Callable[[Session, datetime], object]
    ):
        """Run ``work`` in one unit of work; audit a refusal (and alert admins of a missing role) if it is refused."""
        now = self.clock.now()
        try:
            with unit_of_work(self.session_factory) as s:
                result = work(s, now)
        except (PermissionDenied, InvalidState, NotFound) as exc:
            # An unknown CR-n is bad input (nothing written); role and state refusals are audited, and so is an
            # attempt on a contract the actor may not read (the person is told the words of an unknown one).
            if isinstance(exc, access.NotVisible):
                self._audit_refusal(actor, action, contract_id, exc.audited(), now)
            elif exc.audit_refusal and not (isinstance(exc, NotFound) and contract_id is not None):
                self._audit_refusal(actor, action, contract_id, exc, now)
            raise
        self.on_commit()
        return result

    def _audit_refusal(
        self, actor: str, action: str, contract_id: int | None, exc: DomainError, now: datetime
    ) -> None:
        try:
            with unit_of_work(self.session_factory) as s:
                exists = contract_id is not None and repo.get_contract(s, contract_id) is not None
                repo.record_audit(
                    s,
                    at=now,
                    actor=actor,
                    action=action,
                    outcome="refused",
                    contract_id=contract_id if exists else None,
                    detail=exc.message,
                )
                if isinstance(exc, PermissionDenied):
                    on_contract = f" on {ref_of(contract_id)}" if exists and contract_id is not None else ""
                    text = (
                        f":warning: <@{actor}> tried `{action}`"
                        f"{on_contract} without the *{exc.role}* role. "
                        "Nothing changed; the attempt is in the audit log."
                    )
                    # SPEC "Access": privately, never in the managers' channel (people without a role read it)
                    if self.settings.audit_channel:
                        repo.add_outbox(
                            s,
                            at=now,
                            op="post",
                            target=self.settings.audit_channel,
                            payload={"render": "text", "text": text},
                        )
                    else:
                        self._tell_admins(s, now, text)
        except AlreadyCarriedOut:
            return  # a replay of a request whose first copy was carried out (and audited)
        except Exception:  # noqa: BLE001 - a failed refusal audit must not hide the user's error
            log.exception("could not audit a refusal of %s by %s", action, actor)
        else:
            self.on_commit()

    def refuse_input(
        self, actor: str, action: str, role: str, contract_id: int | None, exc: DomainError
    ) -> DomainError:
        """A malformed attempt at an action: audited as refused (nothing else is written).

        When the actor lacks the action's role, that is the refusal (and admins are told), not the typo.
        Returns the error to show the user.
        """
        now = self.clock.now()
        refusal: DomainError = exc
        try:
            with unit_of_work(self.session_factory) as s:
                # a role that may run it too (`admin export`: managers) is not refused for the table's role
                also = set(COMMANDS[action].also) if action in COMMANDS else set()
                if role != roles.ANYONE and not also & self.roles_of(s, actor):
                    try:
                        self._require(s, actor, role, action)
                    except PermissionDenied as denied:
                        refusal = denied
        except Exception:  # noqa: BLE001 - the user still gets the input error
            log.exception("could not check the role of %s for %s", actor, action)
        audited = refusal
        if refusal is exc and find_classification_marking(exc.message):
            # the log keeps references and status only: input quoted back with a marking is not kept
            audited = InputError(
                f"`{action}` was refused: its input carried a classification marking (not kept)."
            )
        self._audit_refusal(actor, action, contract_id, audited, now)
        return refusal

    def admins(self, s: Session) -> list[str]:
        """Every admin: the bootstrap ones (ADMIN_USER_IDS), then those granted the role."""
        return list(
            dict.fromkeys([*self.settings.admin_user_ids, *repo.list_users_with_role(s, roles.ADMIN)])
        )

    def _tell_admins(
        self, s: Session, now: datetime, text: str, *, also: Iterable[str] = (), but: str = ""
    ) -> None:
        """A direct message to every admin (and ``also`` to others concerned), except ``but`` (who already knows)."""
        for user in dict.fromkeys([*self.admins(s), *also]):
            if user != but:
                repo.add_outbox(s, at=now, op="dm", target=user, payload={"render": "text", "text": text})

    def _require(self, s: Session, actor: str, role: str, action: str) -> None:
        roles.require_role(self.roles_of(s, actor), role, action, actor)

    def _thread(self, s: Session, c: Contract, now: datetime, text: str) -> None:
        repo.add_outbox(
            s, at=now, op="post", target="thread", contract_id=c.id, payload={"render": "text", "text": text}
        )

    def _refresh(
        self,
        s: Session,
        c: Contract,
        now: datetime,
        *,
        update_parent: bool = True,
        questions: list[Question] | None = None,
    ) -> review.ReviewState:
        """Recompute the stored status and queue the parent message's update; ``questions``: the contract's
        questions as this unit of work holds them, current (read when None)."""
        assert c.id is not None  # a stored contract has its number
        state = state_of(c, repo.list_questions(s, c.id) if questions is None else questions)
        c.status = review.status(state, self.calendar.local_date(now))
        s.add(c)
        if update_parent:
            repo.update_parent(s, c.id, now)
        return state

    def _on(self, on: date | None, now: datetime) -> date:
        today = self.calendar.local_date(now)
        day = on or today
        review.check_on_date(day, today)
        return day

    def _at(self, day: date, now: datetime) -> datetime:
        return review.effective_at(
            day, self.calendar.local_date(now), now, self.calendar.start_of_local_day(day)
        )

    # ---- filing and questions ---------------------------------------------------------------------------

    def file_contract(
        self,
        actor: str,
        fields: dict,
        *,
        source_key: str | None = None,
        anyway: bool = False,
        confirm_key: str | None = None,
    ) -> Done:
        """File a contract (anyone); a repeated modal submission (same view id) files it once.

        Raises DuplicateFiling (nothing written) when it looks like an open contract, unless ``anyway``, or unless
        ``confirm_key`` was already warned once (the form submitted again after its warning)."""

        def work(s: Session, now: datetime) -> Done:
            channel = self.runtime_settings(s).get("review_channel")
            if self.filing_gate is not None:  # no review channel, or one the bot cannot post in
                self.filing_gate(s, channel)
            if source_key:
                existing = repo.get_contract_by_source(s, source_key)
                if existing is not None:
                    assert existing.id is not None  # a stored contract has its number
                    return Done(
                        f"{ref_of(existing.id)} was already filed from this form.", existing.id, changed=False
                    )
            if not channel:
                raise InvalidState(
                    "No review channel is set: an admin must set `REVIEW_CHANNEL` or run "
                    "`/contract admin set review_channel #channel` before contracts can be filed."
                )
            awarded = fields.get("awarded_on")
            if awarded is not None:
                review.check_on_date(awarded, self.calendar.local_date(now))
            if not anyway:
                like = self._look_alike(s, fields, actor)
                if like is not None and not (confirm_key and repo.was_seen(s, confirm_key)):
                    raise review.DuplicateFiling(
                        like,
                        how_to_confirm="to file it anyway, repeat the command with `anyway=yes`.",
                    )
            given: dict[str, Any] = {k: fields.get(k) for k in CONTRACT_FIELDS}  # typed by the parser/form
            contract = Contract(
                **given,
                filed_by=actor,
                filed_at=now,
                source_key=source_key,
                channel_id=channel,
                status="intake",
                question_set=qs.QUESTION_SET_VERSION,
                filing_key=review.filing_fingerprint(
                    str(given.get("vendor") or ""),
                    str(given.get("product") or ""),
                    str(given.get("agency") or ""),
                ),
            )
            term_line = self._period_of_performance(contract, fields)
            # its vendor, found or recorded, goes into the contract's own INSERT
            linked = link_vendor(s, contract, now)
            repo.add_contract(s, contract)
            assert contract.id is not None  # flushed: the insert gave it its number
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="file",
                contract_id=contract.id,
                after=contract_snapshot(contract),
            )
            repo.add_outbox(
                s,
                at=now,
                op="post",
                target=channel,
                contract_id=contract.id,
                message_key="parent",
                payload={"render": "parent"},
            )
            self._ask_due_questions(s, contract, now, asked=[])  # filed just now: none asked yet
            planner.on_filed(s, contract, now, self.calendar, self.reminder_settings(s))
            vendor_lines = link_filing(s, contract, now, linked)  # its parent, and screened
            return Done(
                f"Filed *{ref_of(contract.id)}*: {escape_mrkdwn(contract.vendor)} / "
                f"{escape_mrkdwn(contract.product)} for {escape_mrkdwn(contract.agency)}. "
                f"The review runs in <#{channel}>.{term_line}"
                + "".join(f"\n{line}" for line in vendor_lines),
                contract.id,
            )

        try:
            return self._run(actor, "file", None, work)
        except review.DuplicateFiling:
            if confirm_key:  # warned once: the same form submitted again files it
                with unit_of_work(self.session_factory) as s:
                    repo.record_seen(s, confirm_key, self.clock.now())
            raise
        except IntegrityError:
            # the same form submitted twice at once: the other submission filed it (unique source_key)
            if not source_key:
                raise
            with unit_of_work(self.session_factory) as s:
                existing = repo.get_contract_by_source(s, source_key)
            if existing is None:
                raise
            assert existing.id is not None  # a stored contract has its number
            return Done(
                f"{ref_of(existing.id)} was already filed from this form.", existing.id, changed=False
            )

    @staticmethod
    def _period_of_performance(contract: Contract, fields: dict) -> str:
        """Set the period of performance's last day from `ends=`, or from a duration `term=` and the award date;
        the filing's reply says what was understood (a `term=` that is not a duration stays free text)."""
        ends = fields.get("ends_on")
        months = clocks_far.parse_term(contract.term)
        if ends is None and months is not None and contract.awarded_on is not None:
            ends = clocks_far.term_ends_on(contract.awarded_on, months)
        contract.term_ends = ends
        if ends is not None:
            return (
                f" Period of performance: through {ends.isoformat()}; managers are reminded "
                f"{', '.join(str(n) for n in clocks_far.TERM_END_REMINDER_DAYS)} days before it ends."
            )
        if months is not None:
            return (
                f" Period of performance: {clocks_far.term_words(months)}, but with no award date its end is not "
                "known (give `awarded=DATE`, or `ends=DATE`), so nothing reminds of it."
            )
        return ""

    def _look_alike(self, s: Session, fields: dict, actor: str) -> review.LookAlike | None:
        """The oldest open contract with the same vendor, product and agency (normalised), if any, that the person
        filing may read: the warning names it, so one they may not read is not a look-alike (need-to-know: filing
        must not be a way to learn which contracts exist; managers see both and can close the second)."""
        key = review.filing_fingerprint(
            str(fields.get("vendor") or ""), str(fields.get("product") or ""), str(fields.get("agency") or "")
        )
        c = repo.find_open_contract_by_filing_key(s, key)
        if c is None or not access.may_read(self._facts(s, c), self._reader(s, actor)):
            return None
        assert c.id is not None  # a stored contract has its number
        return review.LookAlike(ref_of(c.id), c.filed_by, self.calendar.local_date(c.filed_at))

    def reminder_settings(self, s: Session) -> RuntimeSettings:
        """The typed runtime settings the planner uses (reminder hour, cadences)."""
        return runtime.load(s, self.settings)

    def _ask_due_questions(
        self, s: Session, c: Contract, now: datetime, *, asked: list[Question] | None = None
    ) -> list[str]:
        """Ask the questions now due; ``asked``: the contract's questions as this unit of work holds them (read
        when None)."""
        assert c.id is not None  # a stored contract has its number
        rows = repo.list_questions(s, c.id) if asked is None else asked
        answers = {q.qid: q.answer for q in rows if q.answer}
        qset = qs.question_set(c.question_set)  # the set it was filed under, not today's
        new = qset.questions_to_ask(answers, {q.qid for q in rows})
        sections: list[str] = []
        to_ask: list[dict] = []
        for q in new:
            if q.section not in sections:
                sections.append(q.section)
                section = qset.section_by_key[q.section]
                self._thread(s, c, now, f"*{section.title}*: {section.help}")
            to_ask.append({"contract_id": c.id, "qid": q.qid, "asked_at": now})
            repo.add_outbox(
                s,
                at=now,
                op="post",
                target="thread",
                contract_id=c.id,
                message_key=f"q:{q.qid}",
                payload={"render": "question", "qid": q.qid},
            )
        if to_ask:  # one multi-row INSERT (an ORM object and a flush per question cost most of a filing)
            repo.add_questions(s, to_ask)
        for section_key in sections:
            planner.on_section_asked(s, c, section_key, now, self.calendar, self.reminder_settings(s))
        return [q.qid for q in new]

    def answer(
        self,
        actor: str,
        contract_id: int | None,
        qid: str,
        value: str,
        note: str | None = None,
        *,
        via: str = "answer",
        on_message: tuple[object, object] | None = None,
    ) -> Done:
        """Record a reviewer's answer (button or command); an identical repeat changes nothing.

        ``on_message`` (a button: the clicked message's channel and ts) must be the question's own message, checked
        in this same transaction: a forged value naming another contract or question acts on nothing."""
        qid = qid.upper()
        if value not in qs.ANSWER_VALUES:
            raise InvalidState(f"`{value}` is not an answer; use yes, no or unknown.")

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, roles.REVIEWER, "answer")
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            questions = repo.list_questions(s, c.id)
            state = state_of(c, questions)
            review.check_answer(state)
            qset = qs.question_set(c.question_set)
            if qid not in qset.by_id:
                raise NotFound(
                    f"`{escape_mrkdwn(qid)}` is not a question of {ref_of(c.id)} (question set {qset.version}); "
                    f"its IDs are {', '.join(qset.ids)}."
                )
            row = next((q for q in questions if q.qid == qid), None)
            if on_message is not None and not is_question_message(c, row, *on_message):
                raise InputError(NOT_ITS_MESSAGE)
            if row is None:
                raise InvalidState(
                    f"{qid} has not been asked on {ref_of(c.id)} yet: each section is asked once the one "
                    "before it is complete."
                )
            if row.answer == value and (note is None or note == row.note):
                return Done(
                    f"{ref_of(c.id)} {qid} is already answered *{value.capitalize()}*.", c.id, changed=False
                )
            before = {"answer": row.answer, "note": row.note, "by": row.answered_by}
            row.answer, row.answered_by, row.answered_at = value, actor, now
            if note is not None:
                row.note = note
            s.add(row)
            s.flush()
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="answer",
                contract_id=c.id,
                before=before,
                after={"qid": qid, "answer": value, "note": row.note, "by": actor},
            )
            repo.add_outbox(
                s,
                at=now,
                op="update",
                target="thread",
                contract_id=c.id,
                message_key=f"q:{qid}",
                payload={"render": "question", "qid": qid},
            )
            was_out = qs.out_of_scope(state.answers)
            answers = {**state.answers, qid: value}
            if qs.out_of_scope(answers) and not was_out:
                self._thread(
                    s,
                    c,
                    now,
                    f"SCOPE-1 was answered *No*: EO 14093 does not apply to {ref_of(c.id)}, so "
                    "no further questions are asked. An official can record `determine "
                    f'{ref_of(c.id)} out-of-scope reason="…"`.',
                )
                self._refresh(s, c, now)
            else:
                # the answer just given is in ``row``; the questions held here stay current unless new ones are
                # asked (inserted without the ORM)
                asked = self._ask_due_questions(s, c, now, asked=questions)
                self._refresh(s, c, now, questions=None if asked else questions)
            flag = " (red flag)" if qset.is_red_flag(qid, value) else ""
            return Done(f"Recorded {ref_of(c.id)} {qid}: *{value.capitalize()}*{flag}.", c.id)

        return self._run(actor, via, contract_id, work)

    def add_note(self, actor: str, contract_id: int, qid: str, note: str) -> Done:
        """Attach a note (evidence link or reasoning) to a question."""

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, roles.REVIEWER, "note")
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            review.check_answer(state_of(c, repo.list_questions(s, c.id)))
            row = repo.get_question(s, c.id, qid)
            if row is None:
                raise InvalidState(f"{qid} has not been asked on {ref_of(c.id)} yet.")
            before = {"note": row.note}
            row.note = note
            s.add(row)
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="note",
                contract_id=c.id,
                before=before,
                after={"qid": qid, "note": note},
            )
            repo.add_outbox(
                s,
                at=now,
                op="update",
                target="thread",
                contract_id=c.id,
                message_key=f"q:{qid}",
                payload={"render": "question", "qid": qid},
            )
            return Done(f"Note added to {ref_of(c.id)} {qid}.", c.id)

        return self._run(actor, "note", contract_id, work)

    def assign(self, actor: str, contract_id: int | None, users: Iterable[str]) -> Done:
        """Assign reviewers (manager); they are mentioned in the thread."""
        users = list(dict.fromkeys(users))

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, roles.MANAGER, "assign")
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            review.check_open(state_of(c, []), "assign")
            # only reviewers may answer: assigning anyone else would send them to be refused (and reported)
            outsiders = [u for u in users if roles.REVIEWER not in self.roles_of(s, u)]
            if outsiders:
                named = ", ".join(f"<@{u}>" for u in outsiders)
                verb = "is not a reviewer" if len(outsiders) == 1 else "are not reviewers"
                grants = " and ".join(roles.grant_command(u, roles.REVIEWER) for u in outsiders[:5])
                raise InvalidState(
                    f"{named} {verb}, so nobody was assigned to {ref_of(c.id)}. An admin can grant it with "
                    f"{grants}; then assign again."
                )
            added = [
                u
                for u in users
                if repo.add_assignment(
                    s, Assignment(contract_id=c.id, user_id=u, assigned_by=actor, assigned_at=now)
                )
            ]
            if not added:
                return Done(f"Those reviewers were already assigned to {ref_of(c.id)}.", c.id, changed=False)
            repo.record_audit(
                s, at=now, actor=actor, action="assign", contract_id=c.id, after={"reviewers": added}
            )
            mentions = ", ".join(f"<@{u}>" for u in added)
            self._thread(
                s,
                c,
                now,
                f"{mentions}: you are assigned to review {ref_of(c.id)} (by <@{actor}>). "
                "Answer with the buttons on each question.",
            )
            self._refresh(s, c, now)
            return Done(f"Assigned {mentions} to {ref_of(c.id)}.", c.id)

        return self._run(actor, "assign", contract_id, work)

    def restrict(self, actor: str, contract_id: int | None, restricted: bool = True) -> Done:
        """`restrict CR-n` / `unrestrict CR-n` (manager): limit who may read the contract (SPEC "Access"), audited."""
        action = "restrict" if restricted else "unrestrict"

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, roles.MANAGER, action)
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            ref = ref_of(c.id)
            if bool(c.restricted) == restricted:
                return Done(
                    f"{ref} is already {'restricted' if restricted else 'not restricted'}.", c.id, False
                )
            before = contract_snapshot(c)
            c.restricted = restricted
            s.add(c)
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action=action,
                contract_id=c.id,
                before=before,
                after=contract_snapshot(c),
            )
            if restricted:
                line = (
                    f":lock: {ref} is restricted: only its filer, its assigned reviewers, managers, officials and "
                    "admins may read it, and every read of it is in the audit log."
                )
            else:
                line = f":unlock: {ref} is no longer restricted: anyone holding a role may read it again."
            self._thread(s, c, now, f"{line} (by <@{actor}>)")
            return Done(line, c.id)

        return self._run(actor, action, contract_id, work)

    # ---- reading ----------------------------------------------------------------------------------------

    def _refused_read(self, reader: str, action: str, contract_id: int | None, exc: NotFound) -> None:
        """Audit a read refused by need-to-know (a contract that does not exist writes nothing: bad input)."""
        if isinstance(exc, access.NotVisible):
            self._audit_refusal(reader, action, contract_id, exc.audited(), self.clock.now())

    def show(self, contract_id: int | None, reader: str | None = None) -> ContractView:
        """The full view of one contract; with ``reader`` (every person's read), only one they may read (SPEC
        "Access"), and a restricted one's read is audited. Raises NotFound / NotVisible in the same words."""
        try:
            with read_only(self.session_factory) as s:
                # need-to-know's two reads in one. NOTE: not for a change: there the assignments are read after the
                # contract's row lock, which `assign` takes too, so an assignment being made is waited for
                if reader is not None and contract_id is not None:
                    repo.read_access(s, reader, contract_id)
                c = self._load(s, contract_id, for_update=False, reader=reader)
                view = build_contract_view(s, c, self.today())
        except NotFound as exc:
            if reader is not None:
                self._refused_read(reader, "show", contract_id, exc)
            raise
        if reader is not None and c.restricted and c.id is not None:
            self._audit_reads(reader, [c.id], "show")
        return view

    def list_contracts(
        self,
        status: str | None = None,
        page: int = 1,
        *,
        size: int = LIST_PAGE_SIZE,
        reader: str | None = None,
    ) -> ContractList:
        """One page of contracts, newest first, optionally of one status; with ``reader``, only the contracts they
        may read (each restricted one shown is an audited read). Raises InputError for a page past the last."""
        with read_only(self.session_factory) as s:
            today = self.today()
            visible = (
                None if reader is None else repo.readable_clause(access.scope_of(self._reader(s, reader)))
            )
            total = repo.count_contracts(s, status=status, visible=visible)
            what = "contracts" + (f" with status {status}" if status else "")
            shown = page_of(total, page, size, what)
            rows = (
                repo.list_contracts(s, status=status, limit=size, offset=shown.offset, visible=visible)
                if total
                else []
            )
            views = tuple(build_contract_view(s, c, today, with_reminders=False) for c in rows)
        if reader is not None:
            self._audit_reads(reader, [c.id for c in rows if c.restricted and c.id is not None], "list")
        return ContractList(views, status, total, shown)

    def timeline(
        self,
        contract_id: int | None,
        page: int = 1,
        *,
        size: int = AUDIT_PAGE_SIZE,
        reader: str | None = None,
    ) -> Timeline:
        """One page of a contract's audit entries, refusals included, in time order; page 1 holds the newest
        entries, page 2 the ones before them, and so on. With ``reader`` as `show`. Raises NotFound (NotVisible in
        the same words), or InputError for a page past the last."""
        try:
            with read_only(self.session_factory) as s:
                c = self._load(s, contract_id, for_update=False, reader=reader)
                assert c.id is not None  # a stored contract has its number
                # NOTE: one contract's log is hundreds of entries, not millions: it is read whole and cut here.
                entries = repo.list_audit(s, contract_id=c.id)
                shown = page_of(len(entries), page, size, f"audit entries of {ref_of(c.id)}")
        except NotFound as exc:
            if reader is not None:
                self._refused_read(reader, "audit", contract_id, exc)
            raise
        end = len(entries) - shown.offset  # pages count back from the newest entry
        start = max(end - size, 0)
        if reader is not None and c.restricted:
            self._audit_reads(reader, [c.id], f"audit page {shown.number}")
        return Timeline(ref_of(c.id), tuple(entries[start:end]), c.id, shown, start + 1)

    # ---- compliance actions -----------------------------------------------------------------------------

    def _transition(
        self,
        actor: str,
        contract_id: int | None,
        action: str,
        role: str,
        on: date | None,
        apply: Callable[
            [Session, Contract, review.ReviewState, date, datetime], str | tuple[str, str, str | None]
        ],
    ) -> Done:
        """A dated compliance action: role, date and state checks, the change, audit, thread line, parent update.

        ``apply`` returns the thread line, or (line, audited action, audit note) to audit under another name.
        """

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, role, action)
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            day = self._on(on, now)
            state = state_of(c, repo.list_questions(s, c.id))
            before = contract_snapshot(c)
            result = apply(s, c, state, day, now)
            line, audited, note = (result, action, None) if isinstance(result, str) else result
            self._refresh(s, c, now)
            detail = f"on {day.isoformat()}" + (f": {note}" if note else "")
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action=audited,
                contract_id=c.id,
                before=before,
                after=contract_snapshot(c),
                detail=detail,
            )
            self._thread(s, c, now, f"{line} (by <@{actor}>)")
            return Done(line, c.id)

        return self._run(actor, action, contract_id, work)

    def stopwork(self, actor: str, contract_id: int | None, reason: str, on: date | None = None) -> Done:
        """A stop-work order is in effect (manager)."""

        def apply(s, c, state, day, now):
            review.check_stopwork(state, day)
            c.stopwork_since, c.stopwork_reason = day, reason
            c.stopwork_extended_until = None  # a new order has its own 90 days
            planner.on_stopwork(s, c, now, self.calendar, self.reminder_settings(s))
            return (
                f":octagonal_sign: Stop-work order on {ref_of(c.id)} from {day.isoformat()}: "
                f"{quoted(reason, '. ')}No operational use while it is in effect."
            )

        return self._transition(actor, contract_id, "stopwork", roles.MANAGER, on, apply)

    def resume(self, actor: str, contract_id: int | None, reason: str, on: date | None = None) -> Done:
        """Lift the stop-work order (manager); pending stop-work reminders are cancelled."""

        def apply(s, c, state, day, now):
            review.check_resume(state, day)
            since = c.stopwork_since
            lasted = (day - since).days
            # recorded after it lapsed (FAR 52.242-15): say so; the lift is the day it is recorded
            lapsed = clocks_far.stopwork_lapsed_on(since, c.stopwork_extended_until, day)
            lapse_basis = (
                "at the end of its extension" if c.stopwork_extended_until else "with no extension on record"
            )
            c.stopwork_since, c.stopwork_reason, c.stopwork_lifted_on = None, None, day
            c.stopwork_extended_until = None
            repo.cancel_reminders(s, c.id, ["stopwork", "stopwork-lapse"])
            # lifting a stop-work order is not a compliance finding: say where the review stands
            verdict = review.operational_use(state.with_(stopwork_since=None), self.calendar.local_date(now))
            if verdict.permitted or verdict.closed_on or verdict.not_applicable:
                standing = f"Operational use under the order: {verdict.summary}."
            else:
                standing = (
                    "Operational use is still not permitted: " + "; ".join(verdict.missing) + ". Lifting the "
                    "stop-work order is not a compliance finding: the executive order's conditions are not met."
                )
            if lapsed:
                standing = (
                    f"It had lapsed on {lapsed.isoformat()} under FAR 52.242-15, {lapse_basis}. " + standing
                )
            line = (
                f":arrow_forward: Stop-work order on {ref_of(c.id)} lifted on {day.isoformat()} "
                f"(in effect since {since.isoformat()}, {lasted} day{'s' if lasted != 1 else ''}): "
                f"{quoted(reason, '. ')}"
                f"{standing}"
            )
            return line, "resume", standing

        return self._transition(actor, contract_id, "resume", roles.MANAGER, on, apply)

    def stopwork_extend(self, actor: str, contract_id: int | None, until: date, reason: str) -> Done:
        """FAR 52.242-15: a stop-work order extended by agreement past its 90 days (manager); its lapse reminders
        are re-planned for the new end."""

        def apply(s, c, state, day, now):
            review.check_open(state, "stopwork-extend")
            clocks_far.check_stopwork_extend(
                ref_of(c.id), c.stopwork_since, c.stopwork_extended_until, until, day
            )
            was = clocks_far.stopwork_lapses_on(c.stopwork_since, c.stopwork_extended_until)
            lapsed = clocks_far.stopwork_lapsed_on(c.stopwork_since, c.stopwork_extended_until, day)
            c.stopwork_extended_until = until
            planner.on_stopwork_extended(s, c, now, self.calendar, self.reminder_settings(s))
            line = (
                f":hourglass_flowing_sand: Stop-work order on {ref_of(c.id)} (since {c.stopwork_since.isoformat()}) "
                f"extended by agreement (FAR 52.242-15) through {until.isoformat()}, "
                f"{'after it had lapsed on' if lapsed else 'instead of'} {was.isoformat()}: {escape_mrkdwn(reason)}. "
                "No operational use while it is in effect."
            )
            return line, "stopwork-extend", f"until {until.isoformat()} (was {was.isoformat()}): {reason}"

        return self._transition(actor, contract_id, "stopwork-extend", roles.MANAGER, None, apply)

    def determine(
        self, actor: str, contract_id: int | None, outcome: str, reason: str, on: date | None = None
    ) -> Done:
        """The §2(a) determination (official); a changed outcome after one is a §2(j) re-determination."""

        def apply(s, c, state, day, now):
            review.check_determination(state, outcome, reason, day)
            vendor_events.clear_review(s, c)  # a §2(j) review a vendor event opened is answered
            again = state.determination is not None
            new = review.apply_determination(state, outcome, day)
            if state.redetermination_on is not None:
                # the answers reopened by `redetermine` freeze again: their buttons go
                c.redetermination_on = c.redetermination_reason = c.redetermination_by = None
                self._update_questions(s, c, now)
            c.determination, c.determined_on, c.determination_reason, c.determined_by = (
                outcome,
                day,
                reason,
                actor,
            )
            c.certified_on, c.certified_by, c.notice_on, c.cleared_on = (
                new.certified_on,
                new.certified_by,
                new.notice_on,
                new.cleared_on,
            )
            repo.cancel_reminders(s, c.id, ["unanswered", "escalation", "waiting"])
            kind = "Re-determination (§2(j))" if again else "Determination (§2(a))"
            line = f":scales: {kind} on {ref_of(c.id)}: *{outcome}* on {day.isoformat()}. Reason: {quoted(reason)}"
            if again:
                return line, "re-determine", f"re-determination (§2(j)): {state.determination} → {outcome}"
            return line

        action = "determine"
        return self._transition(actor, contract_id, action, roles.OFFICIAL, on, apply)

    def redetermine(self, actor: str, contract_id: int | None, reason: str, on: date | None = None) -> Done:
        """§2(j): new information reopens the answers for reviewers until the next `determine` (official)."""

        def apply(s, c, state, day, now):
            review.check_redetermine(state, day)
            vendor_events.clear_review(s, c)  # a §2(j) review a vendor event opened is answered
            c.redetermination_on, c.redetermination_reason, c.redetermination_by = day, reason, actor
            self._update_questions(s, c, now)  # their buttons come back
            reviewers = repo.list_assignments(s, c.id)
            who = ", ".join(f"<@{u}>" for u in reviewers[:10]) + ": reviewers" if reviewers else "Reviewers"
            return (
                f":arrows_counterclockwise: Re-determination (§2(j)) of {ref_of(c.id)} opened on {day.isoformat()}: "
                f"{quoted(reason, '. ')}{who} can change the answers again (the record keeps every version) "
                f"until an official records `determine`; the determination `{state.determination}` stands until then."
            )

        return self._transition(actor, contract_id, "redetermine", roles.OFFICIAL, on, apply)

    def _update_questions(self, s: Session, c: Contract, now: datetime) -> None:
        """Queue an edit of every question message: whether its buttons show follows the state."""
        assert c.id is not None  # a stored contract has its number
        for q in repo.list_questions(s, c.id):
            repo.add_outbox(
                s,
                at=now,
                op="update",
                target="thread",
                contract_id=c.id,
                message_key=f"q:{q.qid}",
                payload={"render": "question", "qid": q.qid},
            )

    def certify(self, actor: str, contract_id: int | None, official: str, on: date | None = None) -> Done:
        """§2(f) certification by a relevant official (official)."""

        def apply(s, c, state, day, now):
            review.check_certify(state, day)
            review.check_certifier(state, c.determined_by, actor)
            c.certified_on, c.certified_by = day, official
            return f":white_check_mark: {ref_of(c.id)} certified not-risky (§2(f)) by the {escape_mrkdwn(official)} on {day.isoformat()}."

        return self._transition(actor, contract_id, "certify", roles.OFFICIAL, on, apply)

    def notify(
        self, actor: str, contract_id: int | None, on: date | None = None, *, sending: Sending | None = None
    ) -> Done:
        """§2(g) notice to the APNSA; the 7-day waiting period starts (manager). ``sending`` (`sent … apnsa`)
        records the draft that went out in the same unit of work and returns a note for the audit entry."""

        def apply(s, c, state, day, now):
            review.check_notify(state, day)
            note = sending(s, c, day, now) if sending else None
            c.notice_on = day
            end = review.waiting_period_end(state.with_(notice_on=day))
            assert end is not None  # there is a notice date, so the period has an end
            planner.on_notice(s, c, now, self.calendar, self.reminder_settings(s))
            line = (
                f":envelope: APNSA notified (§2(g)) for {ref_of(c.id)} on {day.isoformat()}. "
                f"No operational use before {end.isoformat()} unless the APNSA clears it sooner."
            )
            return (line, "notify", note) if note else line

        return self._transition(actor, contract_id, "notify", roles.MANAGER, on, apply)

    def clear(self, actor: str, contract_id: int | None, on: date | None = None) -> Done:
        """The APNSA said no further process is needed: the waiting period ends now (manager)."""

        def apply(s, c, state, day, now):
            review.check_clear(state, day)
            c.cleared_on = day
            planner.on_clear(s, c, now)
            return f":white_check_mark: The APNSA cleared {ref_of(c.id)} on {day.isoformat()}: the waiting period is over."

        return self._transition(actor, contract_id, "clear", roles.MANAGER, on, apply)

    def waiver(
        self,
        actor: str,
        contract_id: int | None,
        official: str,
        until: date,
        reason: str,
        on: date | None = None,
        *,
        circumstances: str | None = None,
        alternatives: str | None = None,
    ) -> Done:
        """§2(m) waiver of a prohibition, at most one year (official), with its justification: the extraordinary
        circumstances and why no feasible alternative exists (optional: the waiver notice says which are missing)."""

        def apply(s, c, state, day, now):
            review.check_waiver(state, day, until)
            c.waiver_official, c.waiver_issued_on, c.waiver_until, c.waiver_reason = (
                official,
                day,
                until,
                reason,
            )
            # a new waiver is a new decision: an earlier waiver's justification is not carried over
            c.waiver_circumstances, c.waiver_alternatives = circumstances, alternatives
            c.waiver_issued_at = self._at(day, now)
            c.waiver_revoked_on = c.waiver_revoked_at = c.waiver_reported_on = c.revocation_reported_on = None
            planner.on_waiver(s, c, now, self.calendar, self.reminder_settings(s))
            return (
                f":page_facing_up: Waiver (§2(m)) on {ref_of(c.id)} by the {escape_mrkdwn(official)}, issued "
                f"{day.isoformat()}, in force through {until.isoformat()}. The 72-hour report to the President "
                "(via the APNSA, copy to the DNI) is due. Reason: "
                + quoted(reason)
                + _waiver_justification(circumstances, alternatives)
            )

        return self._transition(actor, contract_id, "waiver", roles.OFFICIAL, on, apply)

    def waiver_report(
        self, actor: str, contract_id: int | None, on: date | None = None, *, sending: Sending | None = None
    ) -> Done:
        """The 72-hour report of a waiver or its revocation was sent (official); ``sending`` as for `notify`."""

        def apply(s, c, state, day, now):
            which = review.check_waiver_report(state, day)
            note = sending(s, c, day, now) if sending else None
            if which == "revocation":
                c.revocation_reported_on = day
            else:
                c.waiver_reported_on = day
            repo.cancel_reminders(s, c.id, [f"waiver-report-{which}"])
            line = (
                f":outbox_tray: The 72-hour {which} report for {ref_of(c.id)} was sent on {day.isoformat()}."
            )
            return (line, "waiver-report", note) if note else line

        return self._transition(actor, contract_id, "waiver-report", roles.OFFICIAL, on, apply)

    def revoke_waiver(self, actor: str, contract_id: int | None, reason: str, on: date | None = None) -> Done:
        """Revoke a waiver in force (official); a new 72-hour report clock starts."""

        def apply(s, c, state, day, now):
            review.check_revoke_waiver(state, day)
            c.waiver_revoked_on, c.waiver_revoked_at = day, self._at(day, now)
            repo.cancel_reminders(s, c.id, ["waiver-expiry"])
            planner.on_waiver_revoked(s, c, now)
            return (
                f":no_entry: Waiver on {ref_of(c.id)} revoked on {day.isoformat()}: {quoted(reason, '. ')}"
                "The 72-hour revocation report is due."
            )

        return self._transition(actor, contract_id, "revoke-waiver", roles.OFFICIAL, on, apply)

    def close(self, actor: str, contract_id: int | None, reason: str, on: date | None = None) -> Done:
        """Close out or terminate a contract (manager); its reminders stop."""

        def apply(s, c, state, day, now):
            review.check_close(state, day)
            c.closed_on, c.close_reason = day, reason
            repo.hold_reminders(s, c.id)  # held, not cancelled: `reopen` gives them back
            self._update_questions(s, c, now)
            return f":lock: {ref_of(c.id)} closed on {day.isoformat()}: {quoted(reason, '.')}"

        return self._transition(actor, contract_id, "close", roles.MANAGER, on, apply)

    def reopen(self, actor: str, contract_id: int | None, reason: str) -> Done:
        """Undo a close made by mistake (manager): the contract is as it was before the close, its reminders back."""

        def work(s: Session, now: datetime) -> Done:
            # the role first: a refusal must not tell whether the contract exists
            self._require(s, actor, roles.MANAGER, "reopen")
            c = self._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            state = state_of(c, repo.list_questions(s, c.id))
            review.check_reopen(state)
            before = contract_snapshot(c)
            closed_on = c.closed_on
            c.closed_on, c.close_reason = None, None
            released = repo.release_held_reminders(s, c.id)
            self._update_questions(s, c, now)
            self._refresh(s, c, now)
            assert closed_on is not None  # check_reopen: it was closed
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="reopen",
                contract_id=c.id,
                before=before,
                after=contract_snapshot(c),
                detail=f"undoes the close of {closed_on.isoformat()}: {reason}",
            )
            line = (
                f":unlock: {ref_of(c.id)} reopened: the close of {closed_on.isoformat()} is undone "
                f"{_reason_in_parentheses(reason)}Status: {c.status}"
                + (f"; {released} reminder{'s' if released != 1 else ''} resumed." if released else ".")
            )
            self._thread(s, c, now, f"{line} (by <@{actor}>)")
            return Done(line, c.id)

        return self._run(actor, "reopen", contract_id, work)

    # ---- administration ---------------------------------------------------------------------------------

    def grant(self, actor: str, user_id: str, role: str) -> Done:
        """Grant a role (admin)."""

        def work(s: Session, now: datetime) -> Done:
            self._require(s, actor, roles.ADMIN, "admin grant")
            self._not_for_oneself(actor, user_id, "grant")
            if not repo.add_role(s, RoleGrant(user_id=user_id, role=role, granted_by=actor, granted_at=now)):
                return Done(f"<@{user_id}> already has the {role} role.", changed=False)
            repo.record_audit(
                s, at=now, actor=actor, action="admin grant", after={"user": user_id, "role": role}
            )
            # AC-5: every change of role is told to the other admins (the one who made it has the reply)
            self._tell_admins(
                s,
                now,
                f":key: Role change: <@{actor}> granted <@{user_id}> the *{role}* role. It is in the audit log.",
                but=actor,
            )
            return Done(f"<@{user_id}> is now {roles.a_role(role)}.")

        return self._run(actor, "admin grant", None, work)

    def revoke(self, actor: str, user_id: str, role: str) -> Done:
        """Revoke a role (admin); bootstrap admins stay admins while listed in ADMIN_USER_IDS."""

        def work(s: Session, now: datetime) -> Done:
            self._require(s, actor, roles.ADMIN, "admin revoke")
            self._not_for_oneself(actor, user_id, "revoke")
            if not repo.remove_role(s, user_id, role):
                extra = (
                    " (bootstrap admins come from ADMIN_USER_IDS)"
                    if user_id in self.settings.admin_user_ids
                    else ""
                )
                return Done(f"<@{user_id}> did not have the {role} role{extra}.", changed=False)
            repo.record_audit(
                s, at=now, actor=actor, action="admin revoke", before={"user": user_id, "role": role}
            )
            self._tell_admins(
                s,
                now,
                f":key: Role change: <@{actor}> revoked the *{role}* role of <@{user_id}>. It is in the audit log.",
                also=(user_id,) if role == roles.ADMIN else (),  # no longer an admin, but the one it concerns
                but=actor,
            )
            text = f"<@{user_id}> is no longer {roles.a_role(role)}."
            if role == roles.REVIEWER:
                # they cannot answer there any more: say so now rather than let them be told to and refused
                still = repo.list_open_assignments_of(s, user_id)
                if still:
                    refs = ", ".join(ref_of(n) for n in still)
                    text += (
                        f" They are still assigned to {refs} and can no longer answer there: a manager can "
                        "`/contract assign` another reviewer."
                    )
            return Done(text)

        return self._run(actor, "admin revoke", None, work)

    def record_bootstrap_admins(self) -> list[str]:
        """At start-up: compare ADMIN_USER_IDS with the list the last start stored, audit each bootstrap admin who
        appeared or disappeared, and tell every admin (and anyone who lost it) by direct message; returns the lines
        told. Several processes starting at once do it once. The first start on an empty database records the list
        (audited) without messages: nothing changed for anyone."""
        try:
            with unit_of_work(self.session_factory) as s:
                return self._bootstrap_changes(s, self.clock.now())
        except IntegrityError:
            # another process starting at the same moment stored the list first: compare with what it stored
            with unit_of_work(self.session_factory) as s:
                return self._bootstrap_changes(s, self.clock.now())

    def _bootstrap_changes(self, s: Session, now: datetime) -> list[str]:
        current = list(dict.fromkeys(self.settings.admin_user_ids))
        stored = repo.get_setting_locked(s, BOOTSTRAP_ADMINS_KEY)
        before = [u for u in (stored or "").split(",") if u]
        if stored is not None and set(before) == set(current):
            return []
        fresh = stored is None and audit.last_entry(s) is None
        added = [u for u in current if u not in before]
        removed = [u for u in before if u not in current]
        for user in added:
            repo.record_audit(
                s,
                at=now,
                actor=BOOTSTRAP_ACTOR,
                action="admin grant",
                after={"user": user, "role": roles.ADMIN},
                detail="ADMIN_USER_IDS at start-up",
            )
        for user in removed:
            repo.record_audit(
                s,
                at=now,
                actor=BOOTSTRAP_ACTOR,
                action="admin revoke",
                before={"user": user, "role": roles.ADMIN},
                detail="ADMIN_USER_IDS at start-up",
            )
        repo.put_setting(s, BOOTSTRAP_ADMINS_KEY, ",".join(current), BOOTSTRAP_ACTOR, now)
        lines = [f"<@{u}> is now an admin (bootstrap)" for u in added]
        lines += [
            f"<@{u}> is no longer a bootstrap admin"
            + (" (still an admin by `/contract admin grant`)" if roles.ADMIN in repo.get_roles(s, u) else "")
            for u in removed
        ]
        if fresh or not lines:
            return []
        text = (
            ":key: Role change at start-up: `ADMIN_USER_IDS` changed on the server. "
            + "; ".join(lines)
            + ". It is in the audit log; if nobody meant this, check who can change the bot's settings."
        )
        self._tell_admins(s, now, text, also=removed)
        return lines

    @staticmethod
    def _not_for_oneself(actor: str, user_id: str, verb: str) -> None:
        """SPEC "Who uses it": nobody grants or revokes a role for themself (separation of duties). This also keeps
        the last admin: only an admin revokes, and not their own role."""
        if actor == user_id:
            raise InvalidState(f"Nobody can {verb} a role for themself: another admin must do it.")

    def list_roles(self, actor: str) -> RolesList:
        """Every role holder (admin)."""

        def work(s: Session, now: datetime) -> RolesList:
            self._require(s, actor, roles.ADMIN, "admin roles")
            return RolesList(
                self.settings.admin_user_ids, tuple((g.role, g.user_id) for g in repo.list_role_grants(s))
            )

        return self._run(actor, "admin roles", None, work)

    def set_setting(self, actor: str, key: str, value: str) -> Done:
        """Change a runtime setting (admin)."""

        def work(s: Session, now: datetime) -> Done:
            self._require(s, actor, roles.ADMIN, "admin set")
            before = repo.put_setting(s, key, value, actor, now)
            repo.record_audit(
                s, at=now, actor=actor, action="admin set", before={key: before}, after={key: value}
            )
            return Done(f"Setting `{key}` is now `{escape_mrkdwn(value)}`.")

        return self._run(actor, "admin set", None, work)

    def list_settings(self, actor: str) -> SettingsList:
        """Runtime settings with where each comes from (admin)."""

        def work(s: Session, now: datetime) -> SettingsList:
            self._require(s, actor, roles.ADMIN, "admin settings")
            stored = repo.get_settings(s)
            values = self.runtime_settings(s)
            values.pop(BOOTSTRAP_ADMINS_KEY, None)  # kept by the bot, not by `admin set`
            return SettingsList(
                values, {k: ("admin set" if k in stored else "environment/default") for k in values}
            )

        return self._run(actor, "admin settings", None, work)

    def check_exporter(self, actor: str, action: str) -> None:
        """Raises PermissionDenied (audited) unless the actor may export every contract (a manager or an admin)."""

        def work(s: Session, now: datetime) -> None:
            held = self.roles_of(s, actor)
            if not access.may_export(held):
                raise PermissionDenied(
                    f"`{action}` needs the *{roles.MANAGER}* or *{roles.ADMIN}* role, which you do not have. An admin "
                    f"can grant it with {roles.grant_command(actor, roles.MANAGER)}.",
                    role=roles.MANAGER,
                )
            repo.record_audit(s, at=now, actor=actor, action=action, detail="every contract")
            for cid in repo.list_restricted_ids(s):  # every read of a restricted contract is audited
                repo.record_audit(s, at=now, actor=actor, action="read", contract_id=cid, detail=action)

        self._run(actor, action, None, work)

    def check_admin(self, actor: str, action: str) -> None:
        """Raises PermissionDenied (audited) unless the actor is an admin."""

        def work(s: Session, now: datetime) -> None:
            self._require(s, actor, roles.ADMIN, action)

        self._run(actor, action, None, work)

    # ---- deliveries, snoozes, dashboard -------------------------------------------------------------------

    def first_delivery(self, key: str) -> bool:
        """True the first time a delivery key (event_id) is seen; False for Slack's retries of it."""
        with unit_of_work(self.session_factory) as s:
            return repo.record_seen(s, key, self.clock.now())

    def snooze(self, actor: str, keys: list[str], choice: str) -> Done:
        """Move reminders to tomorrow or in 3 days at the reminder hour (manager)."""
        from bot.domain import schedule

        def work(s: Session, now: datetime) -> Done:
            self._require(s, actor, roles.MANAGER, "snooze")
            due = schedule.snooze_until(now, choice, self.calendar, self.reminder_settings(s).reminder_hour)
            moved = planner.snooze(s, keys[:50], due)
            if not moved:
                return Done("Those reminders were already snoozed or no longer exist.", changed=False)
            repo.record_audit(
                s, at=now, actor=actor, action="snooze", after={"keys": keys[:50], "until": due.isoformat()}
            )
            return Done(planner.snoozed_text(due, self.calendar.zone, actor))

        return self._run(actor, "snooze", None, work)

    def dashboard(self, user_id: str, limit: int = 10, offsets: dict[str, int] | None = None) -> Dashboard:
        """App Home: open reviews by status, stop-works, waiting periods, deadlines this week, my questions.

        Each list holds at most ``limit`` rows from its offset in ``offsets`` (keyed by DASHBOARD_LISTS), with
        its total; an offset past a list's end shows that list from the start, and ``notice`` says so."""
        offsets = offsets or {}
        with read_only(self.session_factory) as s:
            now = self.clock.now()
            today = self.calendar.local_date(now)
            # need-to-know: every list holds only the contracts this user may read (SPEC "Access")
            visible = repo.readable_clause(access.scope_of(self._reader(s, user_id)))
            counts = repo.count_by_status(s, visible)
            stopworks: list[tuple[str, str, date]] = []
            for c in repo.list_stopworks(s, DASHBOARD_CAP, visible):
                # stored, and the query keeps only contracts with a stop-work date
                assert c.id is not None and c.stopwork_since is not None
                stopworks.append((ref_of(c.id), c.vendor, c.stopwork_since))
            waiting = []
            for c in repo.list_waiting(s, DASHBOARD_CAP, today=today, visible=visible):
                assert c.id is not None  # a stored contract has its number
                end = review.waiting_period_end(state_of(c, []))
                waiting.append((ref_of(c.id), c.vendor, end))
            # the deadlines themselves, overdue first (bot.services.reminders.deadlines), not reminder rows
            due = deadlines_of(s, self.calendar, today, DASHBOARD_CAP)
            if visible is not None:
                seen = repo.visible_ids(s, {_number(ref) for ref, _, _ in due}, visible)
                due = [row for row in due if _number(row[0]) in seen]
            overdue, week = schedule.split_deadlines(due, today)
            deadlines = [(ref, f"{what} (overdue)", on) for ref, what, on in overdue] + week
            mine = []
            for c, q in repo.list_open_questions_for_user(s, user_id, DASHBOARD_CAP):
                assert c.id is not None  # a stored contract has its number
                mine.append((ref_of(c.id), q.qid))
            lists: dict[str, list] = {
                "stopworks": stopworks,
                "waiting": waiting,
                "deadlines": deadlines,
                "my_questions": mine,
            }
            starts: dict[str, int] = {}
            gone: list[str] = []
            for key, rows in lists.items():
                start = offsets.get(key, 0)
                if start < 0 or (start and start >= len(rows)):
                    gone.append(DASHBOARD_LISTS[key])
                    start = 0
                starts[key] = start
            cut = {key: rows[starts[key] : starts[key] + limit] for key, rows in lists.items()}
            shown = repo.get_contracts(s, {_number(row[0]) for rows in cut.values() for row in rows})
            restricted = [cid for cid, c in shown.items() if c.restricted]
            dashboard = Dashboard(
                today=today,
                counts=counts,
                stopworks=cut["stopworks"],
                waiting=cut["waiting"],
                deadlines=cut["deadlines"],
                my_questions=cut["my_questions"],
                roles=tuple(sorted(self.roles_of(s, user_id))),
                totals={key: len(rows) for key, rows in lists.items()},
                offsets=starts,
                capped=frozenset(key for key, rows in lists.items() if len(rows) >= DASHBOARD_CAP),
                notice=(
                    f"The {', '.join(gone)} list{'s' if len(gone) > 1 else ''} had no more rows there "
                    "(it changed since): shown from the start."
                    if gone
                    else None
                ),
            )
        self._audit_reads(user_id, restricted, "App Home")
        return dashboard


def _number(ref: str) -> int:
    """The number of a reference the service wrote itself (`CR-12` -> 12)."""
    return int(ref.removeprefix("CR-"))


# The App Home lists, by the key their "More" buttons carry, and how each is named to the user.
DASHBOARD_LISTS = {
    "stopworks": "stop-work orders",
    "waiting": "waiting periods",
    "deadlines": "deadlines",
    "my_questions": "open questions",
}
DASHBOARD_CAP = 1000  # rows read per list; a longer list is counted as "1000 or more"


@dataclass(frozen=True)
class Dashboard:
    """What the App Home tab shows one user: a page of each list, with where it starts and how long it is."""

    today: date
    counts: dict[str, int]
    stopworks: list[tuple[str, str, date]]
    waiting: list[tuple[str, str, date | None]]
    deadlines: list[tuple[str, str, date]]  # (ref, what, due date): overdue ones first
    my_questions: list[tuple[str, str]]
    roles: tuple[str, ...]
    totals: dict[str, int] = field(default_factory=dict)  # by DASHBOARD_LISTS key; absent: not counted
    offsets: dict[str, int] = field(default_factory=dict)
    capped: frozenset[str] = frozenset()  # lists whose total is at least DASHBOARD_CAP
    notice: str | None = None
