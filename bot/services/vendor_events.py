"""Vendor events and the §2(j) reviews they open (EO 14093 §2(j): re-determination "at any time after procuring").

A dated piece of new information about a vendor (`vendor event NAME kind=… on=… note=…`, or a screening-list
snapshot's difference, bot.services.vendors) opens a §2(j) review on every open contract of that vendor, of its
parent, of its affiliates (§5(h) "furnish" covers reselling, brokering and rebranding) and of the vendors it owns:
IU-1/IU-2 ask about "commercial spyware furnished by the same vendor", whoever bought it. The review is due until an
official records `redetermine` (the answers reopen) or `determine`; the officials and the thread are reminded when
it opens and then every 5 business days (SPEC "Reminders": §2(j) review due).
"""

from __future__ import annotations

from datetime import date, datetime

from rapidfuzz import fuzz, process
from sqlmodel import Session

from bot.domain import names, roles
from bot.domain.calendar import BusinessCalendar
from bot.domain.errors import NotFound
from bot.domain.text import escape_mrkdwn, quoted
from storage import repositories as repo
from storage import vendors as vrepo
from storage.models import Contract, Vendor, VendorEvent

__all__ = [
    "EVENT_KINDS",
    "REVIEW_DUE_BUSINESS_DAYS",
    "affected_vendor_ids",
    "event_words",
    "on_list_event",
    "open_reviews_for_event",
    "review_due_line",
]

EVENT_KINDS = ("list", "ownership", "report", "dni")
KIND_WORDS = {
    "list": "screening-list change",
    "ownership": "ownership change",
    "report": "public report",
    "dni": "DNI finding",
}
REVIEW_DUE_BUSINESS_DAYS = 5  # SPEC "Reminders": then every 5 business days until redetermined
REMINDER_KIND = "review-due"
NOTE_SHOWN = 300  # characters of an event's note in a line of `show` or a reminder


def affected_vendor_ids(s: Session, vendor_id: int) -> list[int]:
    """The vendor, its parent, its affiliates and the vendors it owns: whose contracts new information concerns."""
    vendor = vrepo.get_vendor(s, vendor_id)
    ids = [vendor_id]
    if vendor is not None and vendor.parent_id is not None:
        ids.append(vendor.parent_id)
    ids += [v.id for v, _ in vrepo.list_affiliates(s, vendor_id) if v.id is not None]
    ids += [v.id for v in vrepo.list_children(s, vendor_id) if v.id is not None]
    return list(dict.fromkeys(ids))


def _short(text: str, limit: int = NOTE_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event_words(s: Session, event: VendorEvent) -> str:
    """An event in words, escaped: "public report about Paragon Solutions of 2025-06-12: … (source: …)"."""
    vendor = vrepo.get_vendor(s, event.vendor_id)
    about = escape_mrkdwn(vendor.name) if vendor else "a vendor"
    source = f" (source: {escape_mrkdwn(_short(event.source, 200))})" if event.source else ""
    return (
        f"{KIND_WORDS.get(event.kind, event.kind)} about {about} of {event.on_date.isoformat()}: "
        f"{escape_mrkdwn(_short(event.note))}{source}"
    )


def review_due_line(s: Session, c: Contract) -> str | None:
    """`show`'s line of a §2(j) review due, or None."""
    if c.review_due_since is None:
        return None
    event = s.get(VendorEvent, c.review_event_id) if c.review_event_id is not None else None
    what = event_words(s, event) if event is not None else "new information about its vendor"
    return (
        f"*§2(j) review due since {c.review_due_since.isoformat()}:* {what} — an official must "
        f"`redetermine CR-{c.id}` or `determine CR-{c.id}`"
    )


def _calendar_and_hour(s: Session) -> tuple[BusinessCalendar, int]:
    """The zone the reminders are planned in and the reminder hour, from the database (for the list loader, which
    runs outside the bot's request path)."""
    from bot.services import runtime

    stored = repo.get_settings(s)
    try:
        cal = BusinessCalendar(stored.get(runtime.PLANNED_ZONE_KEY) or "America/New_York")
    except ValueError:
        cal = BusinessCalendar("America/New_York")
    raw = stored.get("reminder_hour", "")
    hour = int(raw) if raw.isdigit() and 0 <= int(raw) <= 23 else 9
    return cal, hour


def open_reviews_for_event(
    s: Session,
    event: VendorEvent | int,
    now: datetime,
    *,
    cal: BusinessCalendar | None = None,
    hour: int | None = None,
) -> list[int]:
    """Open (or keep open, naming this newer event) a §2(j) review on every open contract of the event's vendor, its
    parent, affiliates and the vendors it owns, in the caller's unit of work: audited as the event's author, told in
    each thread, the parent message updated, the officials reminded at once and then every 5 business days.
    Returns the contract ids; raises LookupError for an event that does not exist."""
    from bot.services.reviews import contract_snapshot  # reviews -> views -> this module: imported when used

    ev = event if isinstance(event, VendorEvent) else s.get(VendorEvent, event)
    if ev is None or ev.id is None:
        raise LookupError(f"no vendor event {event!r}")
    if cal is None or hour is None:
        stored_cal, stored_hour = _calendar_and_hour(s)
        cal, hour = cal or stored_cal, stored_hour if hour is None else hour
    words = event_words(s, ev)
    opened: list[int] = []
    contracts = vrepo.list_vendor_contracts(s, affected_vendor_ids(s, ev.vendor_id), None)
    for c in sorted(contracts, key=lambda c: c.id or 0):
        if c.closed_on is not None or c.id is None:
            continue
        before = contract_snapshot(c)
        since = c.review_due_since or ev.on_date
        already = c.review_due_since is not None
        c.review_due_since, c.review_event_id = since, ev.id
        s.add(c)
        repo.record_audit(
            s,
            at=now,
            actor=ev.created_by,
            action="review-due",
            contract_id=c.id,
            before=before,
            after=contract_snapshot(c),
            detail=f"§2(j) review {'still due, new information' if already else 'opened'}: vendor event {ev.id} "
            f"({ev.kind}, {ev.on_date.isoformat()})",
        )
        ref = f"CR-{c.id}"
        repo.add_outbox(
            s,
            at=now,
            op="post",
            target="thread",
            contract_id=c.id,
            payload={
                "render": "text",
                "text": f":mag: New information (§2(j)) on {ref}: {words}. "
                + (
                    f"The §2(j) review due since {since.isoformat()} stays open"
                    if already
                    else f"A §2(j) review is due from {since.isoformat()}"
                )
                + f': an official records `/contract redetermine {ref} reason="…"` (the answers reopen) or '
                f"`/contract determine {ref} …`; the officials are reminded every {REVIEW_DUE_BUSINESS_DAYS} "
                "business days until then.",
            },
        )
        repo.update_parent(s, c.id, now)
        # the first reminder goes now (the officials by direct message, and the thread); the sweep plans the next
        repo.add_reminder(
            s,
            key=f"{REMINDER_KIND}:{c.id}:{since.isoformat()}:1",
            kind=REMINDER_KIND,
            due_at=now,
            contract_id=c.id,
            data={"since": since.isoformat(), "n": 1},
        )
        opened.append(c.id)
    s.flush()
    return opened


def on_list_event(s: Session, event_id: int, now: datetime) -> None:
    """The screening-list loader's hook (bot.services.vendors.load_list ``on_event``): a snapshot's difference that
    touches a vendor opens its §2(j) reviews in the loader's own unit of work."""
    open_reviews_for_event(s, event_id, now)


def next_review_reminder(previous: datetime, cal: BusinessCalendar, hour: int) -> datetime:
    """``hour`` local, 5 business days after the local date of ``previous``."""
    return cal.at_local(cal.add_business_days(cal.local_date(previous), REVIEW_DUE_BUSINESS_DAYS), hour)


def review_due_reminder(
    s: Session, c: Contract, data: dict, now: datetime, cal: BusinessCalendar, hour: int, link: str
) -> list[tuple[str, str]]:
    """The "§2(j) review due" reminder: (recipient, text) for the thread and each official ("dm:U…"), and the next
    one planned; nothing once an official recorded `redetermine` or `determine`."""
    if c.review_due_since is None or c.review_due_since.isoformat() != data.get("since") or c.id is None:
        return []
    n = int(data.get("n", 1))
    repo.add_reminder(
        s,
        key=f"{REMINDER_KIND}:{c.id}:{data['since']}:{n + 1}",
        kind=REMINDER_KIND,
        due_at=next_review_reminder(now, cal, hour),
        contract_id=c.id,
        data={"since": data["since"], "n": n + 1},
    )
    event = s.get(VendorEvent, c.review_event_id) if c.review_event_id is not None else None
    what = event_words(s, event) if event is not None else "new information about its vendor"
    ref = f"CR-{c.id}"
    days = cal.business_days_between(c.review_due_since, cal.local_date(now))
    text = (
        f":mag: Reminder: a §2(j) review of *{ref}* ({escape_mrkdwn(c.vendor)} / {escape_mrkdwn(c.product)}) has "
        f"been due since {c.review_due_since.isoformat()} ({days} business day{'' if days == 1 else 's'}): {what}. "
        f'Next: an official records `/contract redetermine {ref} reason="…"` (the answers reopen for the '
        f"reviewers) or `/contract determine {ref} …`. {link}"
    )
    officials = repo.list_users_with_role(s, roles.OFFICIAL)
    return [("thread", text), *((f"dm:{u}", text) for u in officials)]


def clear_review(s: Session, c: Contract) -> None:
    """`redetermine` or `determine` answers the review: it is no longer due and its reminders stop."""
    if c.review_due_since is None or c.id is None:
        return
    c.review_due_since = c.review_event_id = None
    repo.cancel_reminders(s, c.id, [REMINDER_KIND])


# ---- `vendor event NAME …` ---------------------------------------------------------------------------------------


def find_vendor_or_suggest(s: Session, name: str) -> Vendor:
    """The vendor named exactly (its normalised name or an alias); else NotFound with the closest names."""
    key = names.normalise_name(name) or " ".join(name.casefold().split())
    found = vrepo.find_vendor(s, key)
    if found is not None:
        return found
    known = vrepo.list_vendor_names(s)
    close = process.extract(key, [n for _, _, n in known], scorer=fuzz.WRatio, limit=3, score_cutoff=60)
    suggestions = list(dict.fromkeys(known[i][1] for _, _, i in close))
    hint = (
        " Did you mean " + " or ".join(f"*{escape_mrkdwn(n)}*" for n in suggestions) + "?"
        if suggestions
        else " A vendor is recorded when a contract with it is filed."
    )
    raise NotFound(f"No vendor is called {escape_mrkdwn(name)}.{hint} Nothing was recorded.")


def record_event(
    reviews,  # noqa: ANN001 - bot.services.reviews.ReviewService (which imports this module through views)
    actor: str,
    name: str,
    kind: str,
    on: date | None,
    note: str,
    source: str | None = None,
):  # noqa: ANN201 - Done
    """`vendor event NAME kind= on= note= [source=]` (manager): record dated new information about a vendor and open
    a §2(j) review on the contracts it concerns. Raises PermissionDenied, NotFound (with "Did you mean"),
    InvalidState (a date in the future)."""
    from bot.services.reviews import Done

    def work(s: Session, now: datetime):  # noqa: ANN202
        reviews._require(s, actor, roles.MANAGER, "vendor event")
        day = reviews._on(on, now)  # a date in the future is refused
        vendor = find_vendor_or_suggest(s, name)
        assert vendor.id is not None  # stored
        event = vrepo.add_vendor_event(
            s,
            vendor_id=vendor.id,
            kind=kind,
            on_date=day,
            note=note,
            source=source,
            created_by=actor,
            at=now,
        )
        repo.record_audit(
            s,
            at=now,
            actor=actor,
            action="vendor event",
            after={
                "vendor": vendor.name,
                "kind": kind,
                "on": day.isoformat(),
                "note": note,
                "source": source,
            },
            detail=f"vendor event {event.id}",
        )
        opened = open_reviews_for_event(
            s, event, now, cal=reviews.calendar, hour=reviews.reminder_settings(s).reminder_hour
        )
        refs = ", ".join(f"CR-{i}" for i in opened)
        told = (
            f"A §2(j) review is due on {refs}: the officials and {'each' if len(opened) > 1 else 'its'} thread "
            "are told now and reminded every 5 business days until an official records `redetermine` or "
            "`determine`."
            if opened
            else "No open contract of this vendor, its parent, affiliates or the vendors it owns: no review opened."
        )
        return Done(
            f":mag: Recorded a {KIND_WORDS[kind]} about *{escape_mrkdwn(vendor.name)}* of {day.isoformat()}: "
            f"{quoted(note, '. ')}{told}",
            None,
        )

    return reviews._run(actor, "vendor event", None, work)
