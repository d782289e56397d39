"""Vendors and screening lists: linking a filing to its vendor, `vendor show|alias|affiliate`, `screen`, and
`contract-bot lists load` (a snapshot stored, every vendor screened, the differences made vendor events).

Raises the domain errors (InputError, NotFound, PermissionDenied); ``load_list`` raises ListFormatError.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.clock import Clock
from bot.domain import access, names, roles
from bot.domain.errors import InputError, InvalidState, NotFound
from bot.domain.lists import LISTS, ListEntry, ListFormatError, diff, parse_csl, parse_sdn
from bot.domain.text import escape_mrkdwn
from storage import repositories as repo
from storage import vendors as vrepo
from storage.db import SessionFactory, read_only, unit_of_work
from storage.models import Contract, ScreeningMatch, ScreeningSnapshot, Vendor

if TYPE_CHECKING:
    from bot.services.reviews import Done, ReviewService

LIST_TITLES = {"csl": "Consolidated Screening List", "sdn": "SDN list"}
_MATCH_ID = re.compile(r"^(?:M-?)?(\d{1,9})$", re.IGNORECASE)
SYSTEM_ACTOR = "contract-bot lists load"  # who the vendor events of a snapshot difference are by


def match_ref(match_id: int | None) -> str:
    """A match's reference as people type it, e.g. M-3."""
    return f"M-{match_id}"


# ---- vendors --------------------------------------------------------------------------------------------


def _key_of(name: str) -> str:
    """The vendor's normalised name; a name of punctuation only keeps its folded self (never empty)."""
    return names.normalise_name(name) or " ".join(name.casefold().split())


@dataclass(frozen=True)
class Linked:
    """A name resolved to a vendor: how it was found (name, alias, fuzzy, created)."""

    vendor: Vendor
    how: str
    score: float = 100.0


def resolve_vendor(s: Session, name: str, now: datetime, *, create: bool = True) -> Linked | None:
    """The vendor a name stands for: its normalised name or an alias, else the closest name (fuzzy), else a new one.

    A fuzzy match records the name as an alias (so that it is screened and found exactly next time)."""
    key = _key_of(name)
    found = vrepo.find_vendor(s, key)
    if found is not None:
        return Linked(found, "name" if found.normalised == key else "alias")
    known = vrepo.list_vendor_names(s)
    best = names.best_match(key, [n for _, _, n in known])
    if best is not None:
        index, score = best
        vendor = vrepo.get_vendor(s, known[index][0])
        assert vendor is not None and vendor.id is not None  # listed just now
        vrepo.add_alias(s, vendor.id, name, key)
        return Linked(vendor, "fuzzy", score)
    if not create:
        return None
    return Linked(vrepo.add_vendor(s, name.strip(), key, now), "created")


def circle_of(s: Session, vendor_id: int) -> list[int]:
    """The vendor, its parent and its affiliates: whose screening results concern its contracts (§5(h) furnish)."""
    vendor = vrepo.get_vendor(s, vendor_id)
    ids = [vendor_id]
    if vendor is not None and vendor.parent_id is not None:
        ids.append(vendor.parent_id)
    ids += [v.id for v, _ in vrepo.list_affiliates(s, vendor_id) if v.id is not None]
    return list(dict.fromkeys(ids))


def _aka(s: Session, vendor: Vendor) -> str:
    assert vendor.id is not None  # stored
    aliases = vrepo.alias_names(s, vendor.id)
    return f" (also known as {escape_mrkdwn(', '.join(aliases))})" if aliases else ""


def link_vendor(s: Session, contract: Contract, now: datetime) -> Linked:
    """Find (or record) a new contract's vendor and set ``vendor_id``, before the contract is inserted."""
    linked = resolve_vendor(s, contract.vendor, now)
    assert linked is not None and linked.vendor.id is not None  # create=True
    contract.vendor_id = linked.vendor.id
    return linked


def link_filing(s: Session, contract: Contract, now: datetime, linked: Linked | None = None) -> list[str]:
    """Link a new contract to its vendor (``linked``: already found by ``link_vendor``) and the vendor to
    ``parent=``, screen them against the latest snapshots; returns the lines that tell the person filing."""
    if linked is None:
        linked = link_vendor(s, contract, now)
        s.add(contract)
    vendor, vendor_id = linked.vendor, contract.vendor_id
    assert vendor_id is not None  # linked
    shown = escape_mrkdwn(vendor.name)
    if linked.how == "created":
        lines = [f"New vendor *{shown}* recorded (`/contract vendor show {shown}`)."]
    else:
        lines = [f"Linked to vendor *{shown}*{_aka(s, vendor)}."]
    if contract.parent:
        parent = resolve_vendor(s, contract.parent, now)
        assert parent is not None and parent.vendor.id is not None
        if parent.vendor.id == vendor_id:
            lines.append("`parent=` names the vendor itself: no parent recorded.")
        elif vendor.parent_id is None:
            vendor.parent_id = parent.vendor.id
            s.add(vendor)
            lines.append(f"Its parent is recorded as *{escape_mrkdwn(parent.vendor.name)}*.")
        elif vendor.parent_id != parent.vendor.id:
            recorded = vrepo.get_vendor(s, vendor.parent_id)
            lines.append(
                f"`parent=` names {escape_mrkdwn(parent.vendor.name)}, but the vendor's parent is recorded as "
                f"*{escape_mrkdwn(recorded.name if recorded else '?')}*: a manager should check which is right."
            )
    lists = vrepo.latest_snapshots(s)
    if not lists:  # nothing to screen against, and no match can have been found without a list
        return lines
    circle = circle_of(s, vendor_id)
    opened = screen_vendors(s, circle, now, lists)
    found = vrepo.list_matches(s, circle, status="open")
    if found:
        lines.append(
            f":warning: {len(found)} possible screening-list match{'es' if len(found) != 1 else ''} "
            f"({', '.join(match_ref(m.id) for m in found[:5])}{'…' if len(found) > 5 else ''}) "
            f"{'were' if len(found) != 1 else 'was'} {'just found' if opened else 'already open'}: "
            f"a manager disposes of {'them' if len(found) != 1 else 'it'} with `/contract screen CR-{contract.id} "
            'MATCH-ID match|no-match reason="…"`.'
        )
    return lines


# ---- screening -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    """A snapshot's entries with every name flat, for matching (a snapshot never changes: cached by id)."""

    entries: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    names: tuple[str, ...]
    owner: tuple[int, ...]  # entries index of each name


# keyed by the file's SHA-256 (what the entries are made of), not the row id: a process may see several databases
_INDEX: dict[tuple[str, str], _Index] = {}
_INDEX_MAX = 4


def _index(s: Session, snapshot: ScreeningSnapshot) -> _Index:
    assert snapshot.id is not None  # stored
    key = (snapshot.list_name, snapshot.sha256)
    cached = _INDEX.get(key)
    if cached is not None:
        return cached
    entries = tuple(vrepo.list_entries(s, snapshot.id))
    flat = [(n, i) for i, e in enumerate(entries) for n in e[3]]
    index = _Index(entries, tuple(n for n, _ in flat), tuple(i for _, i in flat))
    if len(_INDEX) >= _INDEX_MAX:
        _INDEX.clear()
    _INDEX[key] = index
    return index


def screen_vendors(
    s: Session,
    vendor_ids: Sequence[int] | None,
    now: datetime,
    snapshots: Sequence[ScreeningSnapshot] | None = None,
) -> list[ScreeningMatch]:
    """Screen vendors (None: every one, with their aliases) against the snapshots (default: the latest of each
    list); opens a match for each vendor and entry that look alike and have none yet. Returns those opened."""
    lists = list(snapshots) if snapshots is not None else vrepo.latest_snapshots(s)
    if not lists:  # no list loaded yet: nothing to screen against
        return []
    known = vrepo.list_vendor_names(s, vendor_ids)
    opened: list[ScreeningMatch] = []
    for snapshot in lists:
        assert snapshot.id is not None  # stored
        index = _index(s, snapshot)
        already = vrepo.match_keys(s, snapshot.list_name)
        best: dict[tuple[int, int], tuple[float, str]] = {}
        for hit in names.match_many([n for _, _, n in known], index.names):
            vendor_id, written, _ = known[hit.query]
            pair = (vendor_id, index.owner[hit.choice])
            if pair not in best or hit.score > best[pair][0]:
                best[pair] = (hit.score, written)
        for (vendor_id, entry_at), (score, written) in sorted(best.items()):
            key, name, source, _ = index.entries[entry_at]
            if (vendor_id, key) in already:
                continue
            already.add((vendor_id, key))
            added = vrepo.add_match(
                s,
                ScreeningMatch(
                    snapshot_id=snapshot.id,
                    vendor_id=vendor_id,
                    list_name=snapshot.list_name,
                    entry_key=key,
                    entry_name=name,
                    source=source,
                    matched_name=written,
                    score=round(score, 1),
                    status="open",
                    created_at=now,
                ),
            )
            if added is not None:
                opened.append(added)
    return opened


def match_line(m: ScreeningMatch, vendor_name: str | None = None) -> str:
    """One match in words (safe mrkdwn)."""
    who = f"{escape_mrkdwn(vendor_name)}: " if vendor_name else ""
    said = {"open": "open", "match": "*match*", "no-match": "no match"}.get(m.status, m.status)
    line = (
        f"{match_ref(m.id)} {who}“{escape_mrkdwn(m.matched_name)}” ~ “{escape_mrkdwn(m.entry_name)}” "
        f"({escape_mrkdwn(m.source or LIST_TITLES.get(m.list_name, m.list_name))}, score {m.score:.0f}) — {said}"
    )
    if m.status != "open" and m.disposed_by:
        line += f" by <@{m.disposed_by}>: {escape_mrkdwn(m.reason or '')}"
    return line


def screening_facts(s: Session, contract: Contract) -> tuple[tuple[str, ...], int]:
    """The screening results of the contract's vendor, its parent and affiliates as plain text (for a notice drafted
    outside Slack), and how many are still open."""
    if contract.vendor_id is None:
        return (), 0
    circle = circle_of(s, contract.vendor_id)
    vendors = vrepo.get_vendors(s, circle)
    matches = sorted(vrepo.list_matches(s, circle), key=lambda m: (m.status != "open", m.id or 0))
    said = {"open": "open: not yet decided", "match": "decided: a match", "no-match": "decided: no match"}
    lines = []
    for m in matches:
        vendor = vendors[m.vendor_id].name if m.vendor_id in vendors else "?"
        line = (
            f"{match_ref(m.id)} {vendor}: “{m.matched_name}” ~ “{m.entry_name}” "
            f"({m.source or LIST_TITLES.get(m.list_name, m.list_name)}, score {m.score:.0f}), "
            f"{said.get(m.status, m.status)}"
        )
        lines.append(line + (f" ({m.reason})" if m.status != "open" and m.reason else ""))
    return tuple(lines), sum(1 for m in matches if m.status == "open")


def screening_lines(s: Session, contract: Contract) -> tuple[str, ...]:
    """What `show` says of the contract's vendor: its name and the screening results of it, its parent and
    affiliates (open ones first)."""
    if contract.vendor_id is None:
        return ()
    # held here, the vendor is read once: the session keeps loaded rows only while something refers to them
    vendor = vrepo.get_vendor(s, contract.vendor_id)
    circle = circle_of(s, contract.vendor_id)
    vendors = vrepo.get_vendors(s, circle)
    lines = [f"*Vendor:* {escape_mrkdwn(vendor.name)}{_aka(s, vendor)}"] if vendor else []
    matches = vrepo.list_matches(s, circle)
    matches.sort(key=lambda m: (m.status != "open", m.id or 0))
    for m in matches:
        lines.append(
            "*Screening:* " + match_line(m, vendors[m.vendor_id].name if m.vendor_id in vendors else None)
        )
    return tuple(lines)


def digest_line(s: Session, limit: int = 20) -> str | None:
    """The digest's line of open screening matches, or None when there is none."""
    found = vrepo.list_open_matches(s)
    if not found:
        return None
    vendors = vrepo.get_vendors(s, [m.vendor_id for m in found])
    shown = [
        f"{match_ref(m.id)} {escape_mrkdwn(vendors[m.vendor_id].name if m.vendor_id in vendors else '?')} ~ "
        f"{escape_mrkdwn(m.entry_name)}"
        for m in found[:limit]
    ]
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return (
        f"Open screening matches ({len(found)}): "
        + "; ".join(shown)
        + more
        + " (`/contract screen CR-n M-n …`)"
    )


# ---- loading a list ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What `lists load` did."""

    snapshot_id: int | None
    list_name: str
    on_date: date
    sha256: str
    entries: int
    opened: int
    added: int = 0
    removed: int = 0
    events: int = 0
    already: bool = False


def parse_list(list_name: str, data: bytes, alt: bytes | None = None) -> list[ListEntry]:
    """The entries of a list file; raises ListFormatError (one line)."""
    if list_name == "csl":
        if alt is not None:
            raise ListFormatError(
                "--alt is for OFAC's alt.csv with `sdn`; the CSL carries its aliases itself"
            )
        entries = parse_csl(data)
    elif list_name == "sdn":
        entries = parse_sdn(data, alt)
    else:
        raise ListFormatError(f"unknown list {list_name!r}: csl or sdn")
    if not entries:
        raise ListFormatError(f"the file holds no entries: not a copy of {LISTS[list_name]}")
    return entries


def _event_note(kind: str, entry_name: str, source: str, list_name: str, on: date, vendor_name: str) -> str:
    verb = "added to" if kind == "added" else "removed from"
    return (
        f"“{entry_name}” ({source}) was {verb} the {LIST_TITLES[list_name]} in the snapshot of {on.isoformat()}; "
        f"it looks like {vendor_name}."
    )


def load_list(
    session_factory: SessionFactory,
    clock: Clock,
    list_name: str,
    data: bytes,
    *,
    alt: bytes | None = None,
    on_date: date | None = None,
    today: date,
    on_event: Callable[[Session, int, datetime], object] | None = None,
    manager_channel: str | None = None,
) -> LoadResult:
    """Store a snapshot of a list, screen every vendor (names and aliases) against it, and make each entry added or
    removed since the last snapshot of that list that looks like a vendor a vendor event (kind "list").

    ``on_event(session, event_id, now)`` runs for each vendor event in the same unit of work (the §2(j) reviews
    it opens). The managers are told of new possible matches and events in the manager channel (``admin set
    manager_channel`` wins over ``manager_channel``, the environment's), through the outbox: the bot sends it.
    Raises ListFormatError (nothing stored)."""
    entries = parse_list(list_name, data, alt)
    digest = hashlib.sha256(data + (alt or b"")).hexdigest()
    day = on_date or today
    with unit_of_work(session_factory) as s:
        now = clock.now()
        previous = vrepo.latest_snapshot(s, list_name)
        if previous is not None and previous.sha256 == digest:
            return LoadResult(
                previous.id, list_name, previous.on_date, digest, previous.entry_count, 0, already=True
            )
        if previous is not None and day < previous.on_date:
            raise ListFormatError(
                f"the snapshot of {previous.on_date.isoformat()} is already loaded: a snapshot dated "
                f"{day.isoformat()} is older (give --date)"
            )
        snapshot = vrepo.add_snapshot(
            s, list_name=list_name, on_date=day, sha256=digest, entry_count=len(entries), at=now
        )
        assert snapshot.id is not None
        vrepo.add_entries(s, snapshot.id, ((e.key, e.name, e.source, e.names) for e in entries))
        opened = screen_vendors(s, None, now, [snapshot])
        changes = (
            diff(
                (ListEntry(k, n, src, ns) for k, n, src, ns in vrepo.list_entries(s, previous.id))
                if previous and previous.id
                else (),
                entries,
            )
            if previous is not None
            else None
        )
        events = 0
        if changes is not None:
            events = _record_changes(s, changes, list_name, day, now, on_event)
        repo.record_audit(
            s,
            at=now,
            actor=SYSTEM_ACTOR,
            action="lists load",
            detail=(
                f"{LIST_TITLES[list_name]} of {day.isoformat()}: {len(entries)} entries, SHA-256 {digest}; "
                f"{len(opened)} possible matches opened"
                + (
                    f"; {len(changes.added)} added, {len(changes.removed)} removed, {events} vendor events"
                    if changes
                    else ""
                )
            ),
        )
        channel = repo.get_settings(s).get("manager_channel") or manager_channel
        if channel and (opened or events):
            repo.add_outbox(
                s,
                at=now,
                op="post",
                target=channel,
                payload={"render": "text", "text": _load_summary(s, list_name, day, opened, events)},
            )
        return LoadResult(
            snapshot.id,
            list_name,
            day,
            digest,
            len(entries),
            len(opened),
            len(changes.added) if changes else 0,
            len(changes.removed) if changes else 0,
            events,
        )


def _load_summary(s: Session, list_name: str, day: date, opened: list[ScreeningMatch], events: int) -> str:
    """The managers' message after a load: the possible matches it opened and the vendor events it recorded."""
    vendors = vrepo.get_vendors(s, [m.vendor_id for m in opened])
    lines = [f":mag: The {LIST_TITLES[list_name]} of {day.isoformat()} is loaded."]
    if opened:
        lines.append(
            f"{len(opened)} possible match{'es' if len(opened) != 1 else ''} for a manager to dispose of:"
        )
        lines += [
            f"• {match_line(m, vendors[m.vendor_id].name if m.vendor_id in vendors else None)}"
            for m in opened[:20]
        ]
        if len(opened) > 20:
            lines.append(f"… and {len(opened) - 20} more (`/contract vendor show NAME`).")
    if events:
        lines.append(
            f"{events} vendor event{'s' if events != 1 else ''}: entries added or removed that look like a vendor."
        )
    lines.append(
        'Next: `/contract show CR-n` for a contract of the vendor, then `/contract screen CR-n M-n match|no-match reason="…"`.'
    )
    return "\n".join(lines)


def _record_changes(
    s: Session,
    changes,
    list_name: str,
    day: date,
    now: datetime,
    on_event: Callable[[Session, int, datetime], object] | None,
) -> int:
    """A vendor event for each entry added or removed that looks like a vendor (name or alias)."""
    known = vrepo.list_vendor_names(s)
    if not known:
        return 0
    events = 0
    for kind, group in (("added", changes.added), ("removed", changes.removed)):
        flat = [(n, i) for i, e in enumerate(group) for n in e.names]
        seen: set[tuple[int, int]] = set()
        for hit in names.match_many([n for _, _, n in known], [n for n, _ in flat]):
            vendor_id = known[hit.query][0]
            entry_at = flat[hit.choice][1]
            if (vendor_id, entry_at) in seen:
                continue
            seen.add((vendor_id, entry_at))
            entry = group[entry_at]
            vendor = vrepo.get_vendor(s, vendor_id)
            event = vrepo.add_vendor_event(
                s,
                vendor_id=vendor_id,
                kind="list",
                on_date=day,
                note=_event_note(
                    kind, entry.name, entry.source, list_name, day, vendor.name if vendor else "?"
                ),
                source=f"{LIST_TITLES[list_name]} snapshot of {day.isoformat()}",
                created_by=SYSTEM_ACTOR,
                at=now,
            )
            events += 1
            if on_event is not None and event.id is not None:
                on_event(s, event.id, now)
    return events


# ---- commands ------------------------------------------------------------------------------------------------


class VendorService:
    """`vendor show|alias|affiliate` and `screen`, run through the review service's unit of work and refusals."""

    def __init__(self, reviews: ReviewService) -> None:
        self.reviews = reviews

    def _vendor(self, s: Session, name: str) -> Vendor:
        """The vendor a name stands for (exact, alias or close); raises NotFound."""
        linked = resolve_vendor(s, name, self.reviews.clock.now(), create=False)
        if linked is None:
            raise NotFound(
                f"No vendor is called {escape_mrkdwn(name)} (nor anything close). A vendor is recorded when a "
                "contract with it is filed."
            )
        return linked.vendor

    def show(self, actor: str, name: str) -> Done:
        """`vendor show NAME` (anyone): the vendor's facts, and the contracts of it the person may read."""
        from bot.services.reviews import Done
        from bot.services.views import ref_of

        with read_only(self.reviews.session_factory) as s:
            key = _key_of(name)
            found = vrepo.find_vendor(s, key)
            if found is None:
                best = names.best_match(key, [n for _, _, n in vrepo.list_vendor_names(s)])
                if best is not None:
                    found = vrepo.get_vendor(s, vrepo.list_vendor_names(s)[best[0]][0])
            if found is None:
                raise NotFound(
                    f"No vendor is called {escape_mrkdwn(name)} (nor anything close). A vendor is recorded when a "
                    "contract with it is filed."
                )
            vendor = found
            assert vendor.id is not None
            lines = [f"*{escape_mrkdwn(vendor.name)}*{_aka(s, vendor)}"]
            if vendor.parent_id is not None:
                parent = vrepo.get_vendor(s, vendor.parent_id)
                lines.append(f"Parent: {escape_mrkdwn(parent.name if parent else '?')}")
            children = vrepo.list_children(s, vendor.id)
            if children:
                lines.append("Owns: " + ", ".join(escape_mrkdwn(c.name) for c in children))
            affiliates = vrepo.list_affiliates(s, vendor.id)
            if affiliates:
                lines.append(
                    "Affiliates: " + ", ".join(f"{escape_mrkdwn(v.name)} ({rel})" for v, rel in affiliates)
                )
            reader = self.reviews._reader(s, actor)
            visible = repo.readable_clause(access.scope_of(reader))
            contracts = vrepo.list_vendor_contracts(s, [vendor.id], visible)
            total = vrepo.count_vendor_contracts(s, [vendor.id])
            shown = [
                f"{ref_of(c.id)} {escape_mrkdwn(c.product)} for {escape_mrkdwn(c.agency)} ({c.status})"
                for c in contracts
                if c.id is not None
            ]
            hidden = total - len(shown)
            lines.append(
                "Contracts: "
                + ("; ".join(shown) if shown else "none you may read")
                + (f" ({hidden} more you may not read)" if hidden and shown else "")
            )
            events = vrepo.list_vendor_events(s, vendor.id)
            lines.append("Events: " + ("none" if not events else ""))
            lines += [
                f"• {e.on_date.isoformat()} {e.kind}: {escape_mrkdwn(e.note)}"
                + (f" ({escape_mrkdwn(e.source)})" if e.source else "")
                for e in events[:20]
            ]
            matches = vrepo.list_matches(s, [vendor.id])
            snapshots = vrepo.latest_snapshots(s)
            screened = (
                ", ".join(f"{LIST_TITLES[sn.list_name]} of {sn.on_date.isoformat()}" for sn in snapshots)
                or "no list loaded yet"
            )
            lines.append(f"Screening ({screened}): " + ("no possible match" if not matches else ""))
            lines += [f"• {match_line(m)}" for m in matches]
            restricted = [c.id for c in contracts if c.restricted and c.id is not None]
        if restricted:
            self.reviews._audit_reads(actor, restricted, "vendor show")
        return Done("\n".join(lines), None, changed=False)

    def alias(self, actor: str, name: str, alias: str) -> Done:
        """`vendor alias NAME alias=` (manager): another name of the vendor, audited."""
        from bot.services.reviews import Done

        def work(s: Session, now: datetime) -> Done:
            self.reviews._require(s, actor, roles.MANAGER, "vendor alias")
            vendor = self._vendor(s, name)
            assert vendor.id is not None
            key = _key_of(alias)
            other = vrepo.find_vendor(s, key)
            if other is not None and other.id != vendor.id:
                raise InvalidState(
                    f"{escape_mrkdwn(alias)} is already the vendor {escape_mrkdwn(other.name)}: record them as "
                    f'affiliates (`vendor affiliate … other="…" relation=rebrand`) instead.'
                )
            if not vrepo.add_alias(s, vendor.id, alias, key):
                return Done(
                    f"{escape_mrkdwn(vendor.name)} already goes by {escape_mrkdwn(alias)}.", None, False
                )
            opened = screen_vendors(s, [vendor.id], now)
            repo.record_audit(
                s, at=now, actor=actor, action="vendor alias", detail=f"{vendor.name}: alias {alias}"
            )
            return Done(
                f"{escape_mrkdwn(vendor.name)} also goes by {escape_mrkdwn(alias)}."
                + (
                    f" Screening opened {len(opened)} possible match(es): `vendor show {escape_mrkdwn(vendor.name)}`."
                    if opened
                    else ""
                ),
            )

        return self.reviews._run(actor, "vendor alias", None, work)

    def affiliate(self, actor: str, name: str, other: str, relation: str) -> Done:
        """`vendor affiliate NAME other= relation=` (manager): a vendor that furnishes this one's spyware, audited."""
        from bot.services.reviews import Done

        def work(s: Session, now: datetime) -> Done:
            self.reviews._require(s, actor, roles.MANAGER, "vendor affiliate")
            vendor = self._vendor(s, name)
            linked = resolve_vendor(s, other, now)
            assert linked is not None and vendor.id is not None and linked.vendor.id is not None
            if linked.vendor.id == vendor.id:
                raise InputError(f"{escape_mrkdwn(other)} is {escape_mrkdwn(vendor.name)} itself.")
            if not vrepo.add_affiliate(s, vendor.id, linked.vendor.id, relation):
                return Done(
                    f"{escape_mrkdwn(linked.vendor.name)} is already recorded with {escape_mrkdwn(vendor.name)}.",
                    None,
                    False,
                )
            opened = screen_vendors(s, [linked.vendor.id], now)
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="vendor affiliate",
                detail=f"{vendor.name}: {linked.vendor.name} ({relation})",
            )
            return Done(
                f"{escape_mrkdwn(linked.vendor.name)} recorded as {relation} of {escape_mrkdwn(vendor.name)}: "
                "screening results of either concern the other's contracts."
                + (f" Screening opened {len(opened)} possible match(es)." if opened else "")
            )

        return self.reviews._run(actor, "vendor affiliate", None, work)

    def screen(self, actor: str, contract_id: int | None, match: str, decision: str, reason: str) -> Done:
        """`screen CR-n MATCH-ID match|no-match reason=` (manager): dispose of a possible match, audited; raises
        InputError for a match that is not the contract's vendor's, its parent's or an affiliate's."""
        from bot.services.reviews import Done
        from bot.services.views import ref_of

        def work(s: Session, now: datetime) -> Done:
            self.reviews._require(s, actor, roles.MANAGER, "screen")
            c = self.reviews._load(s, contract_id, reader=actor)
            assert c.id is not None
            parsed = _MATCH_ID.match(match.strip())
            m = vrepo.get_match(s, int(parsed.group(1))) if parsed else None
            circle = circle_of(s, c.vendor_id) if c.vendor_id is not None else []
            if m is None or m.vendor_id not in circle:
                raise InputError(
                    f"{escape_mrkdwn(match)} is not a screening match of {ref_of(c.id)}'s vendor, its parent or "
                    f"its affiliates: `/contract show {ref_of(c.id)}` lists them."
                )
            if m.status == decision:
                return Done(f"{match_ref(m.id)} is already marked {decision}.", c.id, False)
            before = m.status
            m.status, m.disposed_by, m.disposed_at, m.reason = decision, actor, now, reason
            s.add(m)
            repo.record_audit(
                s,
                at=now,
                actor=actor,
                action="screen",
                contract_id=c.id,
                # in the detail: before/after of an entry on a contract are the contract's own fields (audit verify)
                detail=f"{match_ref(m.id)} ({m.entry_name}, {m.list_name}): {before} -> {decision}; reason: {reason}",
            )
            said = (
                "the vendor *is* the listed party"
                if decision == "match"
                else "the vendor is not the listed party"
            )
            line = f"{match_ref(m.id)} (“{escape_mrkdwn(m.entry_name)}”): {said}. Reason: {escape_mrkdwn(reason)}"
            self.reviews._thread(s, c, now, f":mag: Screening: {line} (by <@{actor}>)")
            return Done(line, c.id)

        return self.reviews._run(actor, "screen", contract_id, work)
