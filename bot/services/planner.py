"""Reminder planning: the reminder rows a change creates, written in the same transaction as the change.

A backdated change (``on=`` in the past) never floods Slack: of the one-off reminders already past, only
the latest is kept (it is sent once, now); a recurring one starts from its next occurrence after now.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain import clocks_far, review, schedule
from bot.domain.annual import default_year, parse_due
from bot.domain.calendar import BusinessCalendar
from bot.services.runtime import RuntimeSettings
from storage import repositories as repo
from storage.models import Contract, Question, Reminder

# What each kind of reminder is about, in words (the kinds themselves are internal names, never shown).
KINDS = {
    "stopwork": "stop-work in effect",
    "unanswered": "unanswered questions",
    "escalation": "open questions escalated to managers",
    "waiting": "waiting period over",
    "waiver-report-waiver": "waiver report due",
    "waiver-report-revocation": "revocation report due",
    "waiver-expiry": "waiver expiring",
    "excluded-notice": "§4(b) notice due",
    "digest": "weekly digest",
    "annual-report": "§4(d) annual report due",
    "stopwork-lapse": "stop-work lapsing",
    "term-end": "period of performance ending",
    "review-due": "§2(j) review due",
}


def describe(kind: str, data: dict | None) -> str:
    """A reminder in words, with what its label adds: "waiver expiring: 7 days left", "waiver report overdue"."""
    data = data or {}
    label = str(data.get("label") or "")
    words = KINDS.get(kind, "reminder")
    if kind == "waiver-expiry":
        if label == "expired":
            return "waiver expired"
        if label[:-1].isdigit():
            return f"waiver expiring: {schedule.days_left_words(int(label[:-1]))}"
    if kind.startswith("waiver-report-") and label == "overdue":
        return words.replace(" due", " overdue")
    if kind == "stopwork-lapse" and data.get("lapses_on"):
        return f"{words} ({data['lapses_on']})"
    if kind == "term-end" and data.get("ends_on"):
        return f"{words} ({data['ends_on']})"
    if kind in ("unanswered", "escalation") and data.get("section"):
        return f"{words} ({data['section']})"
    return words


def applies(r: Reminder, c: Contract | None, state: review.ReviewState, questions: list[Question]) -> bool:
    """Whether a pending reminder still describes the contract as it is now (else it will send nothing)."""
    if r.kind in ("digest", "annual-report"):  # of no contract: checked when sent
        return True
    if c is None or c.closed_on is not None:
        return False
    data = repo.reminder_data(r) or {}
    match r.kind:
        case "stopwork":
            return c.stopwork_since is not None and c.stopwork_since.isoformat() == data.get("since")
        case "stopwork-lapse":
            return (
                c.stopwork_since is not None
                and data.get("lapses_on")
                == clocks_far.stopwork_lapses_on(c.stopwork_since, c.stopwork_extended_until).isoformat()
            )
        case "review-due":
            return c.review_due_since is not None and c.review_due_since.isoformat() == data.get("since")
        case "term-end":
            return c.term_ends is not None and c.term_ends.isoformat() == data.get("ends_on")
        case "unanswered" | "escalation":
            section = data.get("section")
            return review.answers_open(state) and any(
                q.answer is None and (section is None or q.qid.startswith(section + "-")) for q in questions
            )
        case "waiting":
            return c.notice_on is not None and c.notice_on.isoformat() == data.get("notice_on")
        case "waiver-report-waiver" | "waiver-report-revocation":
            return review.pending_waiver_report(state) == r.kind.rsplit("-", 1)[1]
        case "waiver-expiry":
            return c.waiver_issued_on is not None and c.waiver_revoked_on is None
        case "excluded-notice":
            return c.purpose == "excluded" and c.awarded_on is not None
    return True


def upcoming(
    rows: list[Reminder],
    c: Contract,
    state: review.ReviewState,
    questions: list[Question],
    limit: int = 5,
) -> tuple[tuple[str, datetime], ...]:
    """A contract's next reminders for `show`: in words, soonest first, each once, only those that still apply."""
    out: dict[str, datetime] = {}
    for r in sorted(rows, key=lambda r: (r.due_at, r.id or 0)):
        words = describe(r.kind, repo.reminder_data(r))
        if words not in out and applies(r, c, state, questions):
            out[words] = r.due_at
    return tuple(out.items())[:limit]


def add_one_offs(
    s: Session,
    contract: Contract,
    kind: str,
    key_prefix: str,
    times: list[tuple[str, datetime]],
    now: datetime,
    extra: dict | None = None,
    *,
    collapse_past: bool = True,
) -> None:
    """Schedule labelled one-off reminders, collapsing any already past into one sent now (or, without
    ``collapse_past``, dropping them); ``extra`` is stored with each label."""
    past = [t for t in times if t[1] <= now]
    keep = [t for t in times if t[1] > now]
    if past and collapse_past:
        keep.insert(0, past[-1])
    for label, due in keep:
        repo.add_reminder(
            s,
            key=f"{key_prefix}:{label}",
            kind=kind,
            due_at=max(due, now),
            contract_id=contract.id,
            data={"label": label, **(extra or {})},
        )


def first_after(first: datetime, step, now: datetime, limit: int = 5000) -> datetime:  # noqa: ANN001
    """The first occurrence of a recurring reminder strictly after ``now`` (``first`` itself if it is).

    Strictly: the occurrence due exactly ``now`` is the one being sent, so a series that catches up after
    downtime sends once now and next at its following occurrence, never twice at one moment.
    """
    due = first
    for _ in range(limit):
        if due > now:
            return due
        due = step(due)
    return due


ANNUAL_REPORT_REMINDER_DAYS = (30, 7)  # SPEC: managers are reminded 30 and 7 days before `annual_report_due`


def annual_report_times(
    today: date, due: tuple[int, int], cal: BusinessCalendar, hour: int
) -> tuple[date, list[tuple[str, datetime]]]:
    """The next §4(d) report's due date (``today`` or later) and its reminders: [("30d", at), ("7d", at)], at the
    reminder hour local on the days before it."""
    due_on = date(default_year(today, due), *due)
    return due_on, [
        (f"{n}d", cal.at_local(due_on - timedelta(days=n), hour)) for n in ANNUAL_REPORT_REMINDER_DAYS
    ]


def on_annual_report(s: Session, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """Plan the next §4(d) annual report's reminders, yearly like the digest: each once (its key names the due date,
    so another process planning it at the same moment is not an error); those already past are not planned (a
    new install, or a due date just changed), those planned before and missed while the bot was down are sent."""
    due_on, times = annual_report_times(
        cal.local_date(now), parse_due(rt.annual_report_due), cal, rt.reminder_hour
    )
    for label, at in times:
        key = f"annual-report:{due_on.isoformat()}:{label}"
        if at < now or repo.get_reminder_by_key(s, key) is not None:
            continue
        try:
            with s.begin_nested():
                repo.add_reminder(
                    s,
                    key=key,
                    kind="annual-report",
                    due_at=at,
                    data={"label": label, "due": due_on.isoformat()},
                )
        except IntegrityError:
            pass  # planned by another process


def on_filed(s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """§4(b): a purchase for an excluded purpose needs the APNSA notice within 45 days of award."""
    if c.purpose == "excluded" and c.awarded_on is not None:
        times = schedule.excluded_notice_reminders(c.awarded_on, cal, rt.reminder_hour)
        add_one_offs(s, c, "excluded-notice", f"excluded:{c.id}", times, now)
    on_term(s, c, now, cal, rt)


def on_term(s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """The period of performance: managers are reminded 60, 30 and 7 days before its last day."""
    if c.term_ends is None:
        return
    ends = c.term_ends.isoformat()
    times = clocks_far.term_end_reminders(c.term_ends, cal, rt.reminder_hour)
    if cal.local_date(now) > c.term_ends:
        return  # a term that ended before it was filed reminds of nothing: there is nothing left to prepare
    add_one_offs(s, c, "term-end", f"term-end:{c.id}:{ends}", times, now, {"ends_on": ends})


def on_section_asked(
    s: Session, c: Contract, section: str, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings
) -> None:
    """Unanswered-question pings after `unanswered_reminder_days` business days (2; then as often) and escalation
    after `escalation_days` (5)."""
    repo.add_reminder(
        s,
        key=f"unanswered:{c.id}:{section}:1",
        kind="unanswered",
        due_at=schedule.unanswered_first_ping(now, cal, rt.reminder_hour, rt.unanswered_reminder_days),
        contract_id=c.id,
        data={"section": section, "n": 1},
    )
    repo.add_reminder(
        s,
        key=f"escalation:{c.id}:{section}",
        kind="escalation",
        due_at=schedule.escalation_due(now, cal, rt.reminder_hour, rt.escalation_days),
        contract_id=c.id,
        data={"section": section, "days": rt.escalation_days},
    )


def on_stopwork(s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """Each business day the stop-work stays in effect, from the first business day after it started."""
    assert c.stopwork_since is not None  # called once the stop-work order is recorded
    hour = rt.reminder_hour
    first = schedule.stopwork_first_ping(c.stopwork_since, cal, hour)
    due = first_after(first, lambda d: schedule.stopwork_next_ping(d, cal, hour), now)
    repo.add_reminder(
        s,
        key=f"stopwork:{c.id}:{c.stopwork_since.isoformat()}:{due.isoformat()}",
        kind="stopwork",
        due_at=due,
        contract_id=c.id,
        data={"since": c.stopwork_since.isoformat()},
    )
    on_stopwork_clock(s, c, now, cal, rt)


def on_stopwork_clock(
    s: Session,
    c: Contract,
    now: datetime,
    cal: BusinessCalendar,
    rt: RuntimeSettings,
    *,
    extended: bool = False,
) -> None:
    """FAR 52.242-15: "stop-work lapsing" 60, 80 and 90 days after issue, or as far before an extension's end.

    An extension re-plans them: the pending ones are cancelled and those of the new end already past are dropped
    (they would say, now, what the manager who extended it has just decided)."""
    assert c.stopwork_since is not None  # called once the stop-work order is recorded
    if extended and c.id is not None:
        repo.cancel_reminders(s, c.id, ["stopwork-lapse"])
    lapses = clocks_far.stopwork_lapses_on(c.stopwork_since, c.stopwork_extended_until)
    times = clocks_far.stopwork_lapse_reminders(
        c.stopwork_since, c.stopwork_extended_until, cal, rt.reminder_hour
    )
    add_one_offs(
        s,
        c,
        "stopwork-lapse",
        f"stopwork-lapse:{c.id}:{c.stopwork_since.isoformat()}:{lapses.isoformat()}",
        times,
        now,
        {"since": c.stopwork_since.isoformat(), "lapses_on": lapses.isoformat()},
        collapse_past=not extended,
    )


def on_stopwork_extended(
    s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings
) -> None:
    """`stopwork-extend`: the lapse reminders move to the new end; the daily ping, stopped by a lapse, resumes."""
    assert c.stopwork_since is not None and c.id is not None  # only an order in effect or lapsed is extended
    on_stopwork_clock(s, c, now, cal, rt, extended=True)
    if not any(r.kind == "stopwork" for r in repo.list_pending_reminders(s, contract_id=c.id)):
        hour = rt.reminder_hour
        due = first_after(
            schedule.stopwork_first_ping(c.stopwork_since, cal, hour),
            lambda d: schedule.stopwork_next_ping(d, cal, hour),
            now,
        )
        repo.add_reminder(
            s,
            key=f"stopwork:{c.id}:{c.stopwork_since.isoformat()}:{due.isoformat()}",
            kind="stopwork",
            due_at=due,
            contract_id=c.id,
            data={"since": c.stopwork_since.isoformat()},
        )


def on_notice(s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """The waiting period ends notice + 7 days (sent once, now, if that is already past)."""
    assert c.notice_on is not None  # called once the notice is recorded
    due = schedule.waiting_period_over_at(c.notice_on, cal, rt.reminder_hour)
    repo.add_reminder(
        s,
        key=f"waiting:{c.id}:{c.notice_on.isoformat()}",
        kind="waiting",
        due_at=max(due, now),
        contract_id=c.id,
        data={"notice_on": c.notice_on.isoformat()},
    )


def on_clear(s: Session, c: Contract, now: datetime) -> None:
    """Clearance ends the waiting period at once: its reminder falls due now."""
    for r in repo.list_pending_reminders(s, contract_id=c.id):
        if r.kind == "waiting":
            r.due_at = now
            s.add(r)
    s.flush()


def on_waiver(s: Session, c: Contract, now: datetime, cal: BusinessCalendar, rt: RuntimeSettings) -> None:
    """Report due at 48 h and overdue at 72 h after issue; expiry at 30, 7, 1 days and at expiry."""
    # called once the waiver is recorded
    assert c.waiver_issued_on is not None and c.waiver_issued_at is not None and c.waiver_until is not None
    issued = c.waiver_issued_on.isoformat()
    add_one_offs(
        s,
        c,
        "waiver-report-waiver",
        f"waiver-report:{c.id}:{issued}:issue",
        schedule.waiver_report_reminders(c.waiver_issued_at),
        now,
    )
    add_one_offs(
        s,
        c,
        "waiver-expiry",
        f"waiver-expiry:{c.id}:{issued}",
        schedule.waiver_expiry_reminders(c.waiver_until, cal, rt.reminder_hour),
        now,
    )


def on_waiver_revoked(s: Session, c: Contract, now: datetime) -> None:
    """A revocation starts its own 72-hour report clock."""
    assert c.waiver_revoked_on is not None and c.waiver_revoked_at is not None  # called once it is recorded
    add_one_offs(
        s,
        c,
        "waiver-report-revocation",
        f"waiver-report:{c.id}:{c.waiver_revoked_on.isoformat()}:revoke",
        schedule.waiver_report_reminders(c.waiver_revoked_at),
        now,
    )


RECURRING = ("stopwork", "unanswered")


def snoozed_text(until: datetime, zone: ZoneInfo, actor: str) -> str:
    """What a snooze says, to whoever reads the reminder: "Snoozed until Tue 1 Dec 9:00 by @mel"."""
    local = until.astimezone(zone)
    return f"Snoozed until {local:%a} {local.day} {local:%b} {local.hour}:{local:%M} by <@{actor}>."


def snooze(s: Session, keys: list[str], until: datetime) -> int:
    """Postpone the reminders named by ``keys`` to ``until``; how many of them will remind again then.

    A recurring series (stop-work, unanswered) is postponed: its pending occurrences due before ``until`` move
    to ``until`` and it carries on from there, so a snooze never adds a second ping at the same moment. A
    one-off reminder gets a copy due at ``until`` (re-checked when it falls due, like any reminder).
    """
    handled = 0
    for key in dict.fromkeys(keys):
        original = repo.get_reminder_by_key(s, key)
        if original is None:
            continue
        data = repo.reminder_data(original) or {}
        if original.kind in RECURRING:
            repo.postpone_reminders(
                s,
                contract_id=original.contract_id,
                kind=original.kind,
                until=until,
                section=data.get("section") if original.kind == "unanswered" else None,
            )
            pending = [
                r
                for r in repo.list_pending_reminders(s, contract_id=original.contract_id)
                if r.kind == original.kind
            ]
            handled += 1 if pending else 0
            continue
        base = key.split(":snooze:")[0]
        if repo.add_reminder(
            s,
            key=f"{base}:snooze:{until.isoformat()}",
            kind=original.kind,
            due_at=until,
            contract_id=original.contract_id,
            data=data or None,
        ):
            handled += 1
    return handled
