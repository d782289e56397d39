"""`draft CR-n KIND` and `sent CR-n KIND`: the order's notices drafted from the record, and their sending recorded.

A draft is checked (role, need-to-know, a kind the contract can have; refusals audited), built from a read-only
snapshot (no write lock is held while the Word file is made), then recorded: an audit entry "draft" and a notice row
with the SHA-256 of the Word file. `sent` records the fingerprint of the last draft of that kind; `sent … apnsa` is
`notify` and `sent … waiver` is `waiver-report`, in the same unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from bot.domain import paperwork, roles
from bot.domain.errors import InvalidState, PermissionDenied
from bot.domain.text import escape_mrkdwn
from bot.services.documents import RenderedDraft, build_draft
from bot.services.reviews import Done, ReviewService
from bot.services.views import ref_of
from storage import repositories as repo
from storage.db import read_only
from storage.models import Contract

DRAFTERS = (roles.MANAGER, roles.OFFICIAL)
# audit actions that do not change what a draft says
UNCHANGING = frozenset({"draft", "read", "sent", "assign", "restrict", "unrestrict"})


@dataclass(frozen=True)
class DraftRequest:
    """`draft` was allowed: the handler builds the notice after the answer (the Word file and its picture take
    longer than a request may) and sends it to whoever asked."""

    contract_id: int
    kind: str

    @property
    def text(self) -> str:
        """The private reply."""
        ref = ref_of(self.contract_id)
        return (
            f":page_facing_up: Drafting the {paperwork.SECTION_OF[self.kind]} `{self.kind}` notice of {ref} from the "
            "record: it will arrive as a Word file in a direct message, with its SHA-256. "
            f"`/contract sent {ref} {self.kind}` records it as sent."
        )


@dataclass(frozen=True)
class DraftReady:
    """A drafted notice, recorded: the Word file to send, the Markdown to show."""

    ref: str
    kind: str
    draft: RenderedDraft

    @property
    def comment(self) -> str:
        """The words sent with the file."""
        missing = len(self.draft.document.missing)
        gaps = (
            f" The record is not yet complete for it: {missing} item{'s' if missing != 1 else ''} listed at the top."
            if missing
            else ""
        )
        return (
            f"contract-bot draft: {self.ref} `{self.kind}` notice ({paperwork.SECTION_OF[self.kind]}), SHA-256 "
            f"`{self.draft.sha256}`.{gaps} Check it, complete it and send it through your agency's channels; then "
            f"`/contract sent {self.ref} {self.kind}`."
        )


def require_drafter(held: set[str], action: str, actor: str) -> None:
    """Raises PermissionDenied unless the actor is a manager or an official (SPEC `draft`, `sent`)."""
    if not held & set(DRAFTERS):
        raise PermissionDenied(
            f"`{action}` needs the *{roles.MANAGER}* or *{roles.OFFICIAL}* role, which you do not have. An admin can "
            f"grant it with {roles.grant_command(actor, roles.MANAGER)}.",
            role=roles.MANAGER,
        )


class DraftService:
    """Drafting and recording the order's notices, on the review service's unit of work and audit."""

    def __init__(self, reviews: ReviewService, names: Callable[[str], str] | None = None) -> None:
        self.reviews = reviews
        self.names = names  # Slack user ID -> name (users.info, cached), for the people a notice names

    def _banner(self) -> str:
        return self.reviews.settings.cui_banner

    def check_draft(self, actor: str, contract_id: int | None, kind: str) -> DraftRequest:
        """Whether the actor may draft this notice: raises PermissionDenied, NotFound (NotVisible) or InvalidState
        (a kind the contract cannot have), each audited as refused."""
        r = self.reviews

        def check(s: Session, now: datetime) -> DraftRequest:
            # the role first: a refusal must not tell whether the contract exists
            require_drafter(r.roles_of(s, actor), "draft", actor)
            c = r._load(s, contract_id, for_update=False, reader=actor)
            assert c.id is not None  # a stored contract has its number
            paperwork.check_kind(_facts_for_kind(s, c), kind)
            return DraftRequest(c.id, kind)

        return r._run(actor, "draft", contract_id, check)

    def draft(self, actor: str, contract_id: int, kind: str) -> DraftReady:
        """Build the notice from the record and record it (audit entry "draft" and a notice row with the SHA-256 of
        the Word file). Run after check_draft; raises as check_draft does if the record changed in between."""
        r = self.reviews
        self.check_draft(actor, contract_id, kind)
        today = r.today()
        # a read-only snapshot: no write lock is held while the Word file and its picture are made
        with read_only(r.session_factory) as s:
            c = r._load(s, contract_id, for_update=False)
            rendered = build_draft(
                s, c, kind, today=today, zone=r.calendar.zone, banner=self._banner(), names=self.names
            )

        def record(s: Session, now: datetime) -> DraftReady:
            missing = len(rendered.document.missing)
            repo.add_notice(
                s,
                contract_id=contract_id,
                kind=kind,
                event="drafted",
                actor=actor,
                at=now,
                sha256=rendered.sha256,
            )
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="draft",
                contract_id=contract_id,
                detail=f"{kind} ({paperwork.SECTION_OF[kind]}), sha256 {rendered.sha256}"
                + (f", {missing} item(s) not yet complete" if missing else ""),
            )
            return DraftReady(ref_of(contract_id), kind, rendered)

        return r._run(actor, "draft", contract_id, record)

    def sent(
        self, actor: str, contract_id: int | None, kind: str, ref: str | None = None, on: date | None = None
    ) -> Done:
        """Record that the notice of ``kind`` went out, with the SHA-256 of its last draft; raises as the action it
        stands for (`notify`, `waiver-report`), or InvalidState when nothing was drafted."""
        r = self.reviews

        def sending(s: Session, c: Contract, day: date, now: datetime) -> str:
            assert c.id is not None  # a stored contract has its number
            last = repo.last_notice(s, c.id, kind, "drafted")
            if last is None or not last.sha256:
                raise InvalidState(
                    f"No `{kind}` notice of {ref_of(c.id)} was drafted: draft it first with "
                    f"`/contract draft {ref_of(c.id)} {kind}`, then record the one you sent."
                )
            repo.add_notice(
                s,
                contract_id=c.id,
                kind=kind,
                event="sent",
                actor=actor,
                at=now,
                sha256=last.sha256,
                on_date=day,
                ref=ref,
            )
            return f"sent {kind} ({paperwork.SECTION_OF[kind]}), sha256 {last.sha256}" + (
                f", ref {ref}" if ref else ""
            )

        if kind == "apnsa":
            done = r.notify(actor, contract_id, on, sending=sending)
        elif kind == "waiver":
            done = r.waiver_report(actor, contract_id, on, sending=sending)
        else:
            done = self._sent_other(actor, contract_id, kind, ref, on, sending)
        return Done(f"{done.text}{self._fingerprint_line(contract_id, kind, ref)}", done.contract_id)

    def _fingerprint_line(self, contract_id: int | None, kind: str, ref: str | None) -> str:
        assert contract_id is not None  # the action succeeded on it
        with read_only(self.reviews.session_factory) as s:
            last = repo.last_notice(s, contract_id, kind, "sent")
            # what the record gained after that draft (in the chain's order: a stopped clock gives equal times),
            # reads, other drafts and sendings aside
            changed: list[str] = []
            drafted_seen = False
            for e in repo.list_audit(s, contract_id=contract_id):
                if (
                    e.action == "draft"
                    and last is not None
                    and last.sha256
                    and last.sha256 in (e.detail or "")
                ):
                    drafted_seen, changed = True, []
                elif (
                    drafted_seen
                    and e.outcome == "ok"
                    and e.action not in UNCHANGING
                    and f"sent {kind} (" not in (e.detail or "")
                ):
                    changed.append(e.action)
        sha = last.sha256 if last and last.sha256 else ""
        shown_ref = f", reference {escape_mrkdwn(ref)}" if ref else ""
        line = f" Recorded as sent: the `{kind}` draft with SHA-256 `{sha}`{shown_ref}."
        if changed:
            line += (
                f" :warning: The record changed after that draft ({', '.join(dict.fromkeys(changed))}): if what you "
                f"sent should show it, `/contract draft {ref_of(contract_id)} {kind}` again and record that one."
            )
        return line

    def _sent_other(self, actor, contract_id, kind, ref, on, sending) -> Done:
        """`sent` for dni, redetermination and excluded: the notice row and its audit entry (no other change)."""
        r = self.reviews

        def work(s: Session, now: datetime) -> Done:
            require_drafter(r.roles_of(s, actor), "sent", actor)
            c = r._load(s, contract_id, reader=actor)
            assert c.id is not None  # a stored contract has its number
            paperwork.check_kind(_facts_for_kind(s, c), kind)
            day = r._on(on, now)
            note = sending(s, c, day, now)
            if kind == "excluded":
                repo.cancel_reminders(s, c.id, ["excluded-notice"])  # §4(b) done: no more reminders of it
            line = (
                f":outbox_tray: The {paperwork.SECTION_OF[kind]} `{kind}` notice for {ref_of(c.id)} was sent on "
                f"{day.isoformat()}."
            )
            repo.record_audit(
                s, at=now, actor=actor, action="sent", contract_id=c.id, detail=f"on {day}: {note}"
            )
            r._thread(s, c, now, f"{line} (by <@{actor}>)")
            return Done(line, c.id)

        return r._run(actor, "sent", contract_id, work)


def _facts_for_kind(s: Session, c: Contract) -> paperwork.RecordFacts:
    """Just what check_kind reads (no questions): whether the contract can have that notice."""
    assert c.id is not None  # a stored contract has its number
    redetermined = c.redetermination_on
    if redetermined is None and any(
        e.action == "redetermine" and e.outcome == "ok" for e in repo.list_audit(s, contract_id=c.id)
    ):
        redetermined = c.determined_on  # decided since: `determine` clears the fields, the trail keeps them
    return paperwork.RecordFacts(
        ref=ref_of(c.id),
        vendor=c.vendor,
        product=c.product,
        agency=c.agency,
        filed_by=c.filed_by,
        filed_at=c.filed_at,
        purpose=c.purpose,
        determination=c.determination,
        waiver_issued_on=c.waiver_issued_on,
        redetermination_on=redetermined,
    )
