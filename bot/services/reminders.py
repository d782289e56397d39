"""The reminder sweep: claims due reminder rows, re-checks each one's condition, and queues the messages.

Claiming, marking sent, scheduling the next occurrence and writing the outbox rows happen in ONE
transaction: on PostgreSQL the claimed rows stay locked (FOR UPDATE SKIP LOCKED) until it commits, and
SQLite serialises writers, so two processes never send the same reminder and a crash sends nothing
twice (the transaction rolls back and the rows are still due). Reminders for one recipient at one moment
are merged into one message.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from bot.clock import Clock
from bot.config import Settings
from bot.domain import clocks_far, review, schedule
from bot.domain import questions as qs
from bot.domain.annual import parse_due, reporting_year
from bot.domain.calendar import BusinessCalendar
from bot.domain.text import escape_mrkdwn
from bot.services import planner, runtime, vendor_events
from bot.services.outbox import worker_id
from bot.services.runtime import RuntimeSettings
from bot.services.vendors import digest_line as screening_digest_line
from bot.services.views import ref_of, state_of, thread_link
from storage import repositories as repo
from storage.db import SessionFactory, unit_of_work
from storage.models import Contract, Reminder

log = logging.getLogger(__name__)
MANAGER = "manager"
SYSTEM_ACTOR = "contract-bot"  # the actor of the changes the bot makes on its own, in the audit log


@dataclass
class SweepResult:
    """What one sweep did (or, as a preview, would do)."""

    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)  # (recipient, text)


class ReminderSweeper:
    """Runs the sweep; ``sweep()`` from the scheduler job, ``preview(at)`` for `reminders due`."""

    def __init__(
        self,
        session_factory: SessionFactory,
        clock: Clock,
        calendar: BusinessCalendar,
        settings: Settings,
        *,
        on_commit: Callable[[], None] | None = None,
        batch: int = 500,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.calendar = calendar
        self.settings = settings
        self.on_commit = on_commit or (lambda: None)
        self.batch = batch
        self.worker = worker_id()
        self._zone_checked = False

    def replan_for_zone(self, now: datetime | None = None) -> int:
        """On start: if BOT_TIMEZONE changed since the pending reminders were planned, move them to the new zone's
        hours (see ``_replan``); how many moved. Once per process; the first process to start does the work."""
        if self._zone_checked:
            return 0
        try:
            with unit_of_work(self.session_factory) as s:
                moved = self._replan(s, now or self.clock.now())
        except (
            IntegrityError
        ):  # another process starting at the same moment recorded the zone first: it re-planned
            moved = 0
        self._zone_checked = True
        return moved

    def _replan(self, s: Session, now: datetime) -> int:
        """Re-plan pending reminders planned in another zone (the settings table remembers which), in one
        transaction with the record of the zone they are planned in now, so several processes do it once."""
        zone = self.calendar.zone_name
        planned_in = repo.get_setting_locked(s, runtime.PLANNED_ZONE_KEY)
        if planned_in == zone:
            return 0
        moved = 0
        if planned_in is not None:
            try:
                old = BusinessCalendar(planned_in)
            except ValueError:  # a zone this machine does not know: nothing to convert from
                old = self.calendar
            for r in repo.list_pending_reminders(s, limit=1_000_000):
                if r.kind == "digest":  # its key names its instant: planned afresh below
                    r.status = "cancelled"
                    s.add(r)
                    continue
                due = schedule.replanned(r.due_at, r.kind, old, self.calendar)
                if due != r.due_at:
                    r.due_at = due
                    s.add(r)
                    moved += 1
            s.flush()
            repo.record_audit(
                s,
                at=now,
                actor=SYSTEM_ACTOR,
                action="reminders re-planned",
                before={"BOT_TIMEZONE": planned_in},
                after={"BOT_TIMEZONE": zone, "reminders moved": moved},
                detail="BOT_TIMEZONE changed: pending reminders keep their local times in the new zone",
            )
            log.info(
                "BOT_TIMEZONE changed from %s to %s: %s pending reminder(s) re-planned",
                planned_in,
                zone,
                moved,
            )
        # without a record (a first start, or a database from before this was kept) they were planned in this zone
        repo.put_setting(s, runtime.PLANNED_ZONE_KEY, zone, SYSTEM_ACTOR, now)
        self._ensure_digest(s, now, self._settings(s).reminder_hour)
        return moved

    def sweep(self, now: datetime | None = None, max_batches: int = 1000) -> SweepResult:
        """Send every reminder due by now (in batches), once."""
        total = SweepResult()
        now = now or self.clock.now()
        self.replan_for_zone(now)
        # The next digest is planned in its own short transaction, so that several processes planning the same
        # row at once do not wait on each other's whole claim transaction (the unique key makes one of them win).
        with unit_of_work(self.session_factory) as s:
            self._ensure_digest(s, now, self._settings(s).reminder_hour)
        for _ in range(max_batches):
            with unit_of_work(self.session_factory) as s:
                result = self._sweep_batch(s, now, plan_digest=False)
            total.claimed += result.claimed
            total.sent += result.sent
            total.skipped += result.skipped
            total.messages += result.messages
            if result.claimed:
                self.on_commit()
            if result.claimed < self.batch:
                break
        return total

    def preview(self, at: datetime) -> SweepResult:
        """What a sweep at ``at`` would send, computed by the same code in a transaction that is rolled back."""
        s = self.session_factory()
        try:
            planned_in = repo.get_settings(s).get(runtime.PLANNED_ZONE_KEY)
            if planned_in is not None and planned_in != self.calendar.zone_name:
                try:  # what a start in this zone does first (rolled back with the rest)
                    with s.begin_nested():
                        self._replan(s, at)
                except (
                    SQLAlchemyError
                ):  # a database opened read-only: shown at the hours they were planned at
                    log.warning("reminders planned in %s are shown at those hours", planned_in)
            result = SweepResult()
            while True:
                part = self._sweep_batch(s, at)
                result.claimed += part.claimed
                result.sent += part.sent
                result.skipped += part.skipped
                result.messages += part.messages
                if part.claimed < self.batch:
                    break
            return result
        finally:
            s.rollback()
            s.close()

    # ---- one batch ----------------------------------------------------------------------------------------

    def _settings(self, s: Session) -> RuntimeSettings:
        return runtime.load(s, self.settings)

    def _sweep_batch(self, s: Session, now: datetime, *, plan_digest: bool = True) -> SweepResult:
        rt = self._settings(s)
        if plan_digest:
            self._ensure_digest(s, now, rt.reminder_hour)
        rows = repo.claim_due_reminders(
            s, worker=self.worker, now=now, lease=timedelta(minutes=5), limit=self.batch
        )
        result = SweepResult(claimed=len(rows))
        to_manager: list[tuple[str, str]] = []  # (reminder key, text)
        to_thread: dict[int, list[tuple[str, str]]] = defaultdict(list)
        to_dm: dict[str, list[tuple[str, str]]] = defaultdict(list)
        ids = {r.contract_id for r in rows if r.contract_id}
        contracts = repo.get_contracts(s, ids)  # one query per batch, not one per reminder
        questions = repo.list_questions_of(s, ids)
        for r in rows:
            contract = contracts.get(r.contract_id) if r.contract_id else None
            with s.no_autoflush:
                parts = self._evaluate(
                    s,
                    r,
                    contract,
                    now,
                    rt,
                    questions.get(r.contract_id, []) if contract and r.contract_id else None,
                )
            r.status = "sent" if parts else "skipped"
            r.sent_at = now
            r.lease_until = None
            s.add(r)
            if not parts:
                result.skipped += 1
                continue
            result.sent += 1
            for recipient, text in parts:
                if recipient == MANAGER:
                    to_manager.append((r.key, text))
                elif recipient.startswith("dm:"):  # a person by direct message (the officials: §2(j) review)
                    to_dm[recipient[3:]].append((r.key, text))
                else:
                    assert r.contract_id is not None  # only a reminder about a contract speaks in a thread
                    to_thread[r.contract_id].append((r.key, text))
        s.flush()
        manager_channel = rt.manager_channel
        # One message per recipient per sweep; split only where Slack's per-block limit would cut it short.
        for group in _merge(to_manager):
            text = "\n\n".join(t for _, t in group)
            payload = {
                "render": "reminder",
                "text": text,
                "snooze_keys": [k for k, _ in group],
                "parts": [{"key": k, "text": t} for k, t in group],
            }
            if manager_channel:
                repo.add_outbox(s, at=now, op="post", target=manager_channel, payload=payload)
            else:
                for admin in self.settings.admin_user_ids:
                    repo.add_outbox(s, at=now, op="dm", target=admin, payload=payload)
            result.messages.append((manager_channel or "admins", text))
        for user, parts in to_dm.items():
            for group in _merge(parts):
                text = "\n\n".join(t for _, t in group)
                parts_ = [{"key": k, "text": t} for k, t in group]
                payload = {"render": "reminder", "text": text, "parts": parts_}
                repo.add_outbox(s, at=now, op="dm", target=user, payload=payload)
                result.messages.append((f"@{user}", text))
        for contract_id, parts in to_thread.items():
            for group in _merge(parts):
                text = "\n\n".join(t for _, t in group)
                repo.add_outbox(
                    s,
                    at=now,
                    op="post",
                    target="thread",
                    contract_id=contract_id,
                    payload={
                        "render": "reminder",
                        "text": text,
                        "parts": [{"key": k, "text": t} for k, t in group],
                    },
                )
                result.messages.append((f"thread of {ref_of(contract_id)}", text))
        return result

    def _ensure_digest(self, s: Session, now: datetime, hour: int) -> None:
        """Plan the next weekly digest (once: another process planning it at the same moment is not an error), and
        the next §4(d) annual report's reminders (planner.on_annual_report)."""
        planner.on_annual_report(s, now, self.calendar, self._settings(s))
        nxt = schedule.next_weekly_digest(now - timedelta(seconds=1), self.calendar, hour)
        key = f"digest:{nxt.isoformat()}"
        if repo.get_reminder_by_key(s, key) is not None:
            return
        try:
            with s.begin_nested():
                repo.add_reminder(s, key=key, kind="digest", due_at=nxt)
        except IntegrityError:
            log.debug("digest %s was planned by another process", key)

    def recheck(self, s: Session, payload: dict) -> dict | None:
        """At delivery: drop the parts of a queued reminder message whose condition no longer holds.

        The sweep checks each reminder when it claims it; if Slack was unreachable and the message waited in the
        outbox, a stop-work lifted (or a report recorded, a contract closed ...) in the meantime must not be
        reported as still due. Returns the payload to send, or None when nothing of it applies any more.
        """
        parts = payload.get("parts")
        if not parts:
            return payload
        keep = [p for p in parts if self._still_applies(s, p.get("key"))]
        if not keep:
            return None
        if len(keep) == len(parts):
            return payload
        out = {**payload, "parts": keep, "text": "\n\n".join(p["text"] for p in keep)}
        if "snooze_keys" in payload:
            out["snooze_keys"] = [p["key"] for p in keep]
        return out

    def _still_applies(self, s: Session, key: str | None) -> bool:
        """Whether the reminder behind ``key`` still describes the contract as it is now."""
        r = repo.get_reminder_by_key(s, key) if key else None
        if r is None or r.kind == "digest":
            return True
        if r.kind == "annual-report":
            return self._annual_report(r, self._settings(s), self.clock.now()) != []
        c = repo.get_contract(s, r.contract_id) if r.contract_id else None
        if c is None or c.id is None:
            return False
        if r.kind == "excluded-notice" and repo.last_notice(s, c.id, "excluded", "sent") is not None:
            return False  # §4(b) done (`sent … excluded`)
        questions = repo.list_questions(s, c.id)
        return planner.applies(r, c, state_of(c, questions), questions)

    def _evaluate(
        self,
        s: Session,
        r: Reminder,
        c: Contract | None,
        now: datetime,
        rt: RuntimeSettings,
        questions: list | None = None,
    ) -> list[tuple[str, str]]:
        """Re-check a reminder's condition now; the messages to send (none: it no longer applies)."""
        data = json.loads(r.data) if r.data else {}
        hour = rt.reminder_hour
        if r.kind == "digest":
            self._ensure_digest(s, now + timedelta(minutes=1), hour)
            return [(MANAGER, self._digest(s, now))] if rt.digest else []
        if r.kind == "annual-report":
            return self._annual_report(r, rt, now)
        if c is None or c.closed_on is not None:
            return []
        assert c.id is not None  # a stored contract has its number
        ref, link = ref_of(c.id), _thread_link(c)
        today = self.calendar.local_date(now)
        questions = repo.list_questions(s, c.id) if questions is None else questions
        state = state_of(c, questions)
        match r.kind:
            case "stopwork":
                if c.stopwork_since is None or c.stopwork_since.isoformat() != data.get("since"):
                    return []
                nxt = planner.first_after(
                    schedule.stopwork_next_ping(r.due_at, self.calendar, hour),
                    lambda d: schedule.stopwork_next_ping(d, self.calendar, hour),
                    now,
                )
                repo.add_reminder(
                    s,
                    key=f"stopwork:{c.id}:{data['since']}:{nxt.isoformat()}",
                    kind="stopwork",
                    due_at=nxt,
                    contract_id=c.id,
                    data=data,
                )
                if not rt.stopwork_reminders:
                    return []
                days = (today - c.stopwork_since).days
                lapsed = clocks_far.stopwork_lapsed_on(c.stopwork_since, c.stopwork_extended_until, today)
                lapse_note = (
                    f" It lapsed on {lapsed.isoformat()} under FAR 52.242-15 with no extension on record: record "
                    f'`/contract resume {ref} reason="…"` or `/contract stopwork-extend {ref} until=DATE reason="…"`.'
                    if lapsed
                    else ""
                )
                open_q = qs.question_set(c.question_set).open_questions(
                    state.answers, {q.qid for q in questions}
                )
                return [
                    (
                        MANAGER,
                        f":octagonal_sign: Reminder: the stop-work order on *{ref}* "
                        f"({escape_mrkdwn(c.vendor)} / {escape_mrkdwn(c.product)}) is still in effect, since "
                        f"{c.stopwork_since.isoformat()} ({_days(days)}).{lapse_note} {len(open_q)} question(s) open"
                        f"{': ' + ', '.join(open_q[:10]) if open_q else ''}. Next: finish the review, then "
                        f'`/contract resume {ref} reason="…"` when it is lifted. {link}',
                    )
                ]
            case "unanswered" | "escalation":
                if not review.answers_open(
                    state
                ):  # determined (and not reopened by a §2(j) review), or closed
                    return []
                section = data.get("section")
                open_q = [
                    q.qid
                    for q in questions
                    if q.answer is None and (section is None or q.qid.startswith(section + "-"))
                ]
                if not open_q:
                    return []
                asked = min((q.asked_at for q in questions if q.qid in open_q), default=r.due_at)
                reviewers = repo.list_assignments(s, c.id)
                if r.kind == "escalation":
                    # the business days it has really been open: the setting may have changed, the bot been down
                    days = self.calendar.business_days_between(self.calendar.local_date(asked), today)
                    return [
                        (
                            MANAGER,
                            f":rotating_light: Reminder: on *{ref}*, {', '.join(open_q)} "
                            f"{'has' if len(open_q) == 1 else 'have'} been open for {days} business "
                            f"day{'' if days == 1 else 's'} (asked "
                            f"{self.calendar.local_date(asked).isoformat()}). Next: "
                            f"{'chase ' + ', '.join(f'<@{u}>' for u in reviewers) if reviewers else 'assign reviewers with `/contract assign ' + ref + ' @user`'}. {link}",
                        )
                    ]
                n = int(data.get("n", 1))
                # "then every 2 business days": counted from this ping, which after downtime is later than due
                nxt = schedule.unanswered_next_ping(
                    max(r.due_at, now), self.calendar, hour, rt.unanswered_reminder_days
                )
                repo.add_reminder(
                    s,
                    key=f"unanswered:{c.id}:{section}:{n + 1}",
                    kind="unanswered",
                    due_at=nxt,
                    contract_id=c.id,
                    data={"section": section, "n": n + 1},
                )
                who = (
                    ", ".join(f"<@{u}>" for u in reviewers) if reviewers else "Reviewers (none assigned yet)"
                )
                return [
                    (
                        "thread",
                        f":memo: Reminder: {who}, {len(open_q)} question(s) on *{ref}* are still unanswered "
                        f"since {self.calendar.local_date(asked).isoformat()}: {', '.join(open_q)}. Next: answer with the "
                        f"buttons above or `/contract answer {ref} QID yes|no|unknown`. {link}",
                    )
                ]
            case "waiting":
                if c.notice_on is None or c.notice_on.isoformat() != data.get("notice_on"):
                    return []
                self._refresh_status(s, c, now, questions, "the APNSA waiting period (§2(g)) ended")
                how = (
                    f"the APNSA cleared it on {c.cleared_on.isoformat()}"
                    if c.cleared_on
                    else f"7 days have passed since the APNSA notice of {c.notice_on.isoformat()}"
                )
                verdict = review.operational_use(state, today)
                step = (
                    "operational use is now permitted."
                    if verdict.permitted
                    else "still missing: " + "; ".join(verdict.missing)
                )
                text = (
                    f":hourglass: Reminder: the waiting period on *{ref}* is over: {how}. Next: {step} {link}"
                )
                return [("thread", text), (MANAGER, text)]
            case "waiver-report-waiver" | "waiver-report-revocation":
                which = "revocation" if r.kind.endswith("revocation") else "waiver"
                if review.pending_waiver_report(state) != which:
                    return []
                start = c.waiver_revoked_at if which == "revocation" else c.waiver_issued_at
                assert start is not None  # recorded with the waiver and with its revocation
                deadline = schedule.waiver_report_deadline(start)
                overdue = data.get("label") == "overdue" or now >= deadline
                word = "OVERDUE" if overdue else "due"
                text = (
                    f":outbox_tray: Reminder: the 72-hour {which} report on *{ref}* is {word} (deadline "
                    f"{deadline.astimezone(self.calendar.zone):%Y-%m-%d %H:%M %Z}, {which} of "
                    f"{self.calendar.local_date(start).isoformat()}). Next: send it to the President via the APNSA "
                    f"with a copy to the DNI, then `/contract waiver-report {ref}`. {link}"
                )
                return [("thread", text), (MANAGER, text)]
            case "waiver-expiry":
                if c.waiver_issued_on is None or c.waiver_revoked_on is not None or c.waiver_until is None:
                    return []
                label = str(data.get("label") or "")
                if schedule.waiver_expiry_superseded(label, c.waiver_until, today):
                    return []  # sent late, with a later one due too: that one says how many days are left
                self._refresh_status(
                    s,
                    c,
                    now,
                    questions,
                    f"the waiver (§2(m)) in force through {c.waiver_until.isoformat()} expired"
                    if label == "expired"
                    else "status brought up to date by the reminder job",
                )
                if label == "expired":
                    text = (
                        f":hourglass: Reminder: the waiver on *{ref}* expired after {c.waiver_until.isoformat()}: "
                        "operational use is no longer permitted. Next: a new determination or waiver, or stop use. "
                        f"{link}"
                    )
                else:
                    text = (
                        f":page_facing_up: Reminder: the waiver on *{ref}* expires after {c.waiver_until.isoformat()} "
                        f"({schedule.days_left_words(schedule.waiver_days_left(c.waiver_until, today))}). "
                        f"Next: decide on renewal or wind-down. {link}"
                    )
                return [("thread", text), (MANAGER, text)]
            case "stopwork-lapse":
                return self._stopwork_lapse(s, c, data, now, today, questions, ref, link)
            case "term-end":
                if c.term_ends is None or c.term_ends.isoformat() != data.get("ends_on"):
                    return []
                left = (c.term_ends - today).days
                label = str(data.get("label") or "")
                before = int(label[:-1]) if label[:-1].isdigit() else 0
                if clocks_far.superseded(before, left, clocks_far.TERM_END_REMINDER_DAYS):
                    return []  # sent late with a later one due too: that one says how many days are left
                when_ = (
                    f"ends on {c.term_ends.isoformat()} ({schedule.days_left_words(left)})"
                    if left >= 0
                    else f"ended on {c.term_ends.isoformat()}"
                )
                return [
                    (
                        MANAGER,
                        f":calendar: Reminder: the period of performance of *{ref}* "
                        f"({escape_mrkdwn(c.vendor)} / {escape_mrkdwn(c.product)}) {when_}. Next: let it end and "
                        f'close it out after its last day (`/contract close {ref} reason="…"`), or record the '
                        f"modification that extends it. {link}",
                    )
                ]
            case "review-due":
                return vendor_events.review_due_reminder(s, c, data, now, self.calendar, hour, link)
            case "excluded-notice":
                if c.purpose != "excluded" or c.awarded_on is None:
                    return []
                if repo.last_notice(s, c.id, "excluded", "sent") is not None:
                    return []  # §4(b) done (`sent … excluded`): its reminders end
                due = schedule.excluded_notice_due(c.awarded_on)
                text = (
                    f":calendar: Reminder: the §4(b) notice to the APNSA for *{ref}* (bought for an excluded "
                    f"purpose, awarded {c.awarded_on.isoformat()}) is due by {due.isoformat()}"
                    f"{' — today' if due == today else (' — overdue' if due < today else '')}. Next: send the notice "
                    f"of the purchase, its purpose and authorized uses. {link}"
                )
                return [("thread", text), (MANAGER, text)]
        log.warning("unknown reminder kind %s (%s)", r.kind, r.key)
        return []

    def _stopwork_lapse(  # noqa: PLR0913
        self,
        s: Session,
        c: Contract,
        data: dict,
        now: datetime,
        today: date,
        questions,  # noqa: ANN001
        ref: str,
        link: str,
    ) -> list[tuple[str, str]]:
        """FAR 52.242-15: the order lapses after its 90 days (or its extension) unless extended or lifted."""
        if c.stopwork_since is None:
            return []
        since = c.stopwork_since
        lapses = clocks_far.stopwork_lapses_on(since, c.stopwork_extended_until)
        if data.get("lapses_on") != lapses.isoformat():
            return []  # extended since it was planned: the new end has its own reminders
        basis = (
            f"extended by agreement to {lapses.isoformat()}"
            if c.stopwork_extended_until is not None
            else f"{clocks_far.STOPWORK_DAYS} days"
        )
        label = str(data.get("label") or "")
        if today > lapses:
            if label != "lapsed":
                return []  # sent late, after the lapse: the "lapsed" one says what matters now
            # the parent message says it lapsed from now on (nothing else changes: the order still blocks)
            repo.update_parent(s, c.id, now)
            verdict = review.operational_use(state_of(c, questions).with_(stopwork_since=None), today)
            standing = (
                f"without it, operational use under the executive order would be {verdict.summary}"
                if verdict.permitted or verdict.closed_on or verdict.not_applicable
                else "the executive order's own conditions are still not met: " + "; ".join(verdict.missing)
            )
            return [
                (
                    MANAGER,
                    f":hourglass: Reminder: the stop-work order on *{ref}* (since {since.isoformat()}) lapsed on "
                    f"{lapses.isoformat()} (FAR 52.242-15, {basis}): the contractor may resume work. No extension "
                    "and no lift are on record, so the bot still treats it as blocking operational use; lapsing is "
                    f"not a compliance finding ({standing}). Next: record the lift with "
                    f'`/contract resume {ref} reason="…"`, or an agreed extension with '
                    f'`/contract stopwork-extend {ref} until=DATE reason="…"`. {link}',
                )
            ]
        left = (lapses - today).days
        if label == "lapsed":
            return []  # planned for the day after the lapse, but the lapse date moved (an extension): nothing to say
        before = clocks_far.STOPWORK_DAYS - int(label[:-1]) if label[:-1].isdigit() else 0
        befores = tuple(clocks_far.STOPWORK_DAYS - n for n in clocks_far.STOPWORK_LAPSE_REMINDER_DAYS)
        if clocks_far.superseded(before, left, befores):
            return []
        return [
            (
                MANAGER,
                f":hourglass_flowing_sand: Reminder: the stop-work order on *{ref}* lapses on {lapses.isoformat()} "
                f"(FAR 52.242-15, {basis}; {'today is its last day' if left == 0 else schedule.days_left_words(left)}, "
                f"in effect since {since.isoformat()}) unless extended: "
                f'`/contract stopwork-extend {ref} until=DATE reason="…"` or `/contract resume {ref} reason="…"`. '
                f"{link}",
            )
        ]

    def _refresh_status(self, s: Session, c: Contract, now: datetime, questions, why: str) -> None:  # noqa: ANN001
        """Store the status the passing of time gave the contract, audited as the bot's own change."""
        status = review.status(state_of(c, questions), self.calendar.local_date(now))
        if status != c.status:
            repo.record_audit(
                s,
                at=now,
                actor=SYSTEM_ACTOR,
                action="status",
                contract_id=c.id,
                before={"status": c.status},
                after={"status": status},
                detail=why,
            )
            c.status = status
            s.add(c)
            repo.update_parent(s, c.id, now)

    def _annual_report(self, r: Reminder, rt: RuntimeSettings, now: datetime) -> list[tuple[str, str]]:
        """§4(d): the report is due on `annual_report_due`; nothing if that setting has changed since (the new day
        has reminders of its own), the day has passed, or a later reminder is due too (it says how long is left)."""
        data = repo.reminder_data(r) or {}
        try:
            due_on = date.fromisoformat(str(data.get("due")))
        except ValueError:
            return []
        if parse_due(rt.annual_report_due) != (due_on.month, due_on.day):
            return []
        left = (due_on - self.calendar.local_date(now)).days
        label = str(data.get("label") or "")
        before = int(label[:-1]) if label[:-1].isdigit() else 0
        if left < 0 or any(n < before and left <= n for n in planner.ANNUAL_REPORT_REMINDER_DAYS):
            return []
        start, _ = reporting_year(due_on.year, (due_on.month, due_on.day))
        days = "today" if left == 0 else f"{left} day{'s' if left != 1 else ''}"
        return [
            (
                MANAGER,
                f":bar_chart: Reminder: the §4(d) annual report is due on {due_on.day} {due_on:%b %Y} ({days}): "
                f"`/contract report annual` builds it from the record, for the reporting year {start.day} "
                f"{start:%b %Y} to {due_on.day} {due_on:%b %Y}. Next: check it and send it to the APNSA.",
            )
        ]

    def _digest(self, s: Session, now: datetime) -> str:
        counts = repo.count_by_status(s)
        open_counts = {k: v for k, v in counts.items() if k != "closed" and v}
        today = self.calendar.local_date(now)
        monday, _, last = schedule.digest_week(today)
        # titled with the week it covers, not the moment it went out (a late digest still covers its week)
        lines = [
            f":spiral_calendar_pad: Reminder: weekly digest, week of {monday.day} {monday:%b %Y} "
            f"(deadlines {today:%a %-d %b} to {last:%a %-d %b})."
        ]
        lines.append(
            "Open reviews: " + (", ".join(f"{k} {v}" for k, v in sorted(open_counts.items())) or "none")
        )
        stopworks = repo.list_stopworks(s, DIGEST_ROWS)
        if stopworks:
            entries = []
            for c in stopworks:
                # stored, and the query keeps only contracts with a stop-work date
                assert c.id is not None and c.stopwork_since is not None
                lapses = clocks_far.stopwork_lapses_on(c.stopwork_since, c.stopwork_extended_until)
                entries.append(
                    f"{ref_of(c.id)} since {c.stopwork_since.isoformat()} ({_days((today - c.stopwork_since).days)}, "
                    + (
                        f"lapsed on {lapses.isoformat()})"
                        if today > lapses
                        else f"lapses {lapses.isoformat()})"
                    )
                )
            lines.append("Stop-work orders: " + "; ".join(entries))
        reviews_due = repo.list_reviews_due(s, DIGEST_ROWS)
        if reviews_due:
            lines.append(
                "§2(j) reviews due (an official must `redetermine` or `determine`): "
                + "; ".join(
                    f"{ref_of(c.id)} since {c.review_due_since.isoformat()}"
                    for c in reviews_due
                    if c.id is not None and c.review_due_since is not None
                )
            )
        waiting = repo.list_waiting(s, DIGEST_ROWS)
        if waiting:
            entries = []
            for c in waiting:
                assert c.id is not None  # a stored contract has its number
                end = review.waiting_period_end(state_of(c, []))
                assert end is not None  # status "waiting": the APNSA was notified
                entries.append(f"{ref_of(c.id)} ends {end.isoformat()}")
            lines.append("Waiting periods: " + "; ".join(entries))
        overdue, this_week = schedule.split_deadlines(deadlines(s, self.calendar, today), today)
        if overdue:
            lines.append(
                "Overdue: " + "; ".join(f"{ref} {what} (due {on.isoformat()})" for ref, what, on in overdue)
            )
        lines.append(
            "Deadlines this week: "
            + ("; ".join(f"{ref} {what} {on:%a} {on.isoformat()}" for ref, what, on in this_week) or "none")
        )
        screening = screening_digest_line(s)
        if screening:
            lines.append(screening)
        lines.append("Next: `/contract list` for everything open, `/contract show CR-n` for one contract.")
        return "\n".join(lines)


DIGEST_ROWS = 20  # contracts named in one line of the digest


def deadlines(
    s: Session, cal: BusinessCalendar, today: date, limit: int = DIGEST_ROWS * 5
) -> list[tuple[str, str, date]]:
    """The dated obligations of open contracts (ref, what, local date), for the digest and App Home: the deadlines
    themselves, not the reminder rows about them (those fall due days before, repeat, and may be claimed as the
    digest runs). A waiver's last day is listed until it has passed; the others until they are done."""
    out: list[tuple[str, str, date]] = []
    contracts = repo.list_open_with_deadlines(s, limit)
    # §4(b) done (`sent … excluded`): no longer a deadline, nor overdue
    notified = repo.notice_sent_ids(
        s, "excluded", {c.id for c in contracts if c.purpose == "excluded" and c.id}
    )
    for c in contracts:
        assert c.id is not None  # a stored contract has its number
        ref, state = ref_of(c.id), state_of(c, [])
        pending = review.pending_waiver_report(state)
        decided = c.waiver_revoked_at if pending == "revocation" else c.waiver_issued_at
        if pending and decided is not None:
            out.append(
                (
                    ref,
                    f"72-hour {pending} report due",
                    cal.local_date(schedule.waiver_report_deadline(decided)),
                )
            )
        if c.waiver_issued_on and not c.waiver_revoked_on and c.waiver_until and c.waiver_until >= today:
            out.append((ref, "waiver's last day in force", c.waiver_until))
        if c.purpose == "excluded" and c.awarded_on is not None and c.id not in notified:
            out.append((ref, "§4(b) notice due", schedule.excluded_notice_due(c.awarded_on)))
        if c.stopwork_since is not None:
            lapses = clocks_far.stopwork_lapses_on(c.stopwork_since, c.stopwork_extended_until)
            if lapses >= today:  # a lapsed order is in the stop-work line, not a deadline still to meet
                out.append((ref, "stop-work order lapses (FAR 52.242-15)", lapses))
        if c.term_ends is not None and c.term_ends >= today:
            out.append((ref, "period of performance ends", c.term_ends))
    return out


MESSAGE_LIMIT = 2900  # a section block holds 3,000 characters (SLACK-FACTS F1 Block Kit limits)


def _merge(parts: list[tuple[str, str]], limit: int = MESSAGE_LIMIT) -> list[list[tuple[str, str]]]:
    """Group (key, text) parts into as few messages as fit ``limit`` characters each (usually one)."""
    groups: list[list[tuple[str, str]]] = []
    size = 0
    for part in parts:
        if groups and size + 2 + len(part[1]) <= limit:
            groups[-1].append(part)
            size += 2 + len(part[1])
        else:
            groups.append([part])
            size = len(part[1])
    return groups


def _thread_link(c: Contract) -> str:
    where = thread_link(c.permalink, c.channel_id, posted=c.parent_ts is not None)
    if where:  # the link chat.getPermalink gave, else the channel: never a guessed host (F1.30)
        return f"Thread: {where}"
    assert c.id is not None  # a stored contract has its number
    return f"See `/contract show {ref_of(c.id)}`."


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"
