"""Repositories for vendors (names, aliases, parent, affiliates, events) and screening lists. They never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import Select, bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from storage import configuration
from storage.db import core, kept_for_the_transaction
from storage.models import (
    Contract,
    ScreeningEntry,
    ScreeningMatch,
    ScreeningSnapshot,
    Vendor,
    VendorAffiliate,
    VendorAlias,
    VendorEvent,
)

# ---- vendors ---------------------------------------------------------------------------------------------


def get_vendor(s: Session, vendor_id: int) -> Vendor | None:
    """The vendor with that id."""
    held = _held(s, vendor_id)
    if held is not None:
        return held
    # as Session.get does, with its aliases (`show` names them)
    return _with_aliases(s, _VENDOR, {"vendor_id": vendor_id})


def _held(s: Session, vendor_id: int) -> Vendor | None:
    """The vendor as this session holds it already, if it does (read again, it would cost a statement)."""
    held = s.identity_map.get(identity_key(Vendor, vendor_id))
    return held if isinstance(held, Vendor) else None


def _with_aliases(s: Session, stmt: Select, params: dict) -> Vendor | None:
    """The vendor ``stmt`` finds, its aliases kept for ``alias_names`` in this transaction: `show` and a filing
    name both, and one statement costs less than two."""
    rows = s.execute(stmt, params).all()
    if not rows:
        return None
    vendor: Vendor = rows[0][0]
    s.info.setdefault(_ALIASES_READ, {})[vendor.id] = [alias for _, alias in rows if alias is not None]
    return vendor


def _and_aliases(where: ColumnElement[bool]) -> Select:
    return (
        select(Vendor, col(VendorAlias.alias))
        .outerjoin(VendorAlias, col(VendorAlias.vendor_id) == col(Vendor.id))
        .where(where)
        .order_by(col(VendorAlias.id))
    )


_VENDOR = _and_aliases(col(Vendor.id) == bindparam("vendor_id"))
_ALIASES_READ = kept_for_the_transaction("contract_bot_aliases_read")


def get_vendors(s: Session, ids: Iterable[int]) -> dict[int, Vendor]:
    """Several vendors by id, in one query."""
    found: dict[int, Vendor] = {}
    missing = []
    # those this session holds already (the contract's own vendor) are not read again
    for vendor_id in set(ids):
        held = _held(s, vendor_id)
        if held is not None:
            found[vendor_id] = held
        else:
            missing.append(vendor_id)
    if missing:
        rows = s.execute(select(Vendor).where(col(Vendor.id).in_(missing))).scalars()
        found.update({v.id: v for v in rows if v.id is not None})
    return found


def find_vendor(s: Session, normalised: str) -> Vendor | None:
    """The vendor whose normalised name or one of whose aliases is exactly ``normalised``."""
    found = _with_aliases(s, _VENDOR_BY_NAME, {"normalised": normalised})
    if found is not None:
        return found
    by_alias = select(col(VendorAlias.vendor_id)).where(col(VendorAlias.normalised) == normalised)
    return (
        s.execute(select(Vendor).where(col(Vendor.id).in_(by_alias)).order_by(col(Vendor.id)))
        .scalars()
        .first()
    )


# the statements of every filing's and every `show`'s reads are built once (storage.repositories says why)
_VENDOR_BY_NAME = _and_aliases(col(Vendor.normalised) == bindparam("normalised"))


def list_vendor_names(s: Session, vendor_ids: Iterable[int] | None = None) -> list[tuple[int, str, str]]:
    """Every vendor's name and every alias (or only those of ``vendor_ids``): (vendor id, name as written,
    normalised), vendors first."""
    names = select(col(Vendor.id), col(Vendor.name), col(Vendor.normalised))
    aliases = select(col(VendorAlias.vendor_id), col(VendorAlias.alias), col(VendorAlias.normalised))
    if vendor_ids is not None:
        wanted = sorted(set(vendor_ids))
        names = names.where(col(Vendor.id).in_(wanted))
        aliases = aliases.where(col(VendorAlias.vendor_id).in_(wanted))
    return [(int(r[0]), r[1], r[2]) for r in s.execute(names)] + [
        (int(r[0]), r[1], r[2]) for r in s.execute(aliases)
    ]


def add_vendor(s: Session, name: str, normalised: str, at: datetime) -> Vendor:
    """Insert a vendor and return it with its id; the one another transaction just inserted under the same
    normalised name if it won the race (two filings of a new vendor at once, on PostgreSQL)."""
    vendor = Vendor(name=name, normalised=normalised, created_at=at)
    try:
        with s.begin_nested():  # a savepoint: losing the race must not undo the filing
            s.add(vendor)
            s.flush()
    except IntegrityError:
        existing = s.execute(select(Vendor).where(col(Vendor.normalised) == normalised)).scalars().first()
        if existing is None:
            raise
        return existing
    return vendor


def list_aliases(s: Session, vendor_id: int) -> list[VendorAlias]:
    """A vendor's aliases, oldest first."""
    stmt = select(VendorAlias).where(col(VendorAlias.vendor_id) == vendor_id).order_by(col(VendorAlias.id))
    return list(s.execute(stmt).scalars())


def alias_names(s: Session, vendor_id: int) -> list[str]:
    """A vendor's aliases as written, oldest first."""
    read = s.info.get(_ALIASES_READ, {}).get(vendor_id)
    if read is not None:
        return list(read)
    return list(core(s).execute(_ALIAS_NAMES, {"vendor_id": vendor_id}).scalars())


_ALIAS_NAMES = (
    select(col(VendorAlias.alias))
    .where(col(VendorAlias.vendor_id) == bindparam("vendor_id"))
    .order_by(col(VendorAlias.id))
)


def add_alias(s: Session, vendor_id: int, alias: str, normalised: str) -> bool:
    """Record an alias; False when the vendor already has one (or its name) normalised the same."""
    vendor = s.get(Vendor, vendor_id)
    if vendor is None or vendor.normalised == normalised:
        return False
    s.info.get(_ALIASES_READ, {}).pop(vendor_id, None)  # the next alias_names reads it
    if any(a.normalised == normalised for a in list_aliases(s, vendor_id)):
        return False
    try:
        with s.begin_nested():  # another filing may record the same alias at once (PostgreSQL)
            s.add(VendorAlias(vendor_id=vendor_id, alias=alias, normalised=normalised))
            s.flush()
    except IntegrityError:
        return False
    return True


def list_affiliates(s: Session, vendor_id: int) -> list[tuple[Vendor, str]]:
    """The vendors recorded as furnishing this one's products or this one furnishing theirs, with the relation."""
    rows = s.execute(_AFFILIATES, {"vendor_id": vendor_id}).scalars()
    links = [(a.affiliate_vendor_id if a.vendor_id == vendor_id else a.vendor_id, a.relation) for a in rows]
    vendors = get_vendors(s, [other for other, _ in links])
    return [(vendors[other], relation) for other, relation in links if other in vendors]


_AFFILIATES = (
    select(VendorAffiliate)
    .where(
        or_(
            col(VendorAffiliate.vendor_id) == bindparam("vendor_id"),
            col(VendorAffiliate.affiliate_vendor_id) == bindparam("vendor_id"),
        )
    )
    .order_by(col(VendorAffiliate.id))
)


def add_affiliate(s: Session, vendor_id: int, other_id: int, relation: str) -> bool:
    """Record that ``other_id`` furnishes ``vendor_id``'s products; False when the two are already linked."""
    if any(v.id == other_id for v, _ in list_affiliates(s, vendor_id)):
        return False
    s.add(VendorAffiliate(vendor_id=vendor_id, affiliate_vendor_id=other_id, relation=relation))
    s.flush()
    return True


def list_children(s: Session, vendor_id: int) -> list[Vendor]:
    """The vendors whose parent this one is."""
    stmt = select(Vendor).where(col(Vendor.parent_id) == vendor_id).order_by(col(Vendor.id))
    return list(s.execute(stmt).scalars())


def list_vendor_contracts(
    s: Session, vendor_ids: Sequence[int], visible: ColumnElement[bool] | None
) -> list[Contract]:
    """The contracts linked to these vendors that the reader may read (``visible``: readable_clause), newest first."""
    if not vendor_ids:
        return []
    stmt = select(Contract).where(col(Contract.vendor_id).in_(list(vendor_ids)))
    if visible is not None:
        stmt = stmt.where(visible)
    return list(s.execute(stmt.order_by(col(Contract.id).desc())).scalars())


def count_vendor_contracts(s: Session, vendor_ids: Sequence[int]) -> int:
    """How many contracts are linked to these vendors (readable or not)."""
    if not vendor_ids:
        return 0
    stmt = select(col(Contract.id)).where(col(Contract.vendor_id).in_(list(vendor_ids)))
    return len(s.execute(stmt).all())


def list_vendor_events(s: Session, vendor_id: int) -> list[VendorEvent]:
    """A vendor's events, newest first."""
    stmt = (
        select(VendorEvent)
        .where(col(VendorEvent.vendor_id) == vendor_id)
        .order_by(col(VendorEvent.on_date).desc(), col(VendorEvent.id).desc())
    )
    return list(s.execute(stmt).scalars())


def add_vendor_event(
    s: Session,
    *,
    vendor_id: int,
    kind: str,
    on_date: date,
    note: str,
    source: str | None,
    created_by: str,
    at: datetime,
) -> VendorEvent:
    """Insert a vendor event and return it with its id."""
    event = VendorEvent(
        vendor_id=vendor_id,
        kind=kind,
        on_date=on_date,
        note=note,
        source=source,
        created_by=created_by,
        created_at=at,
    )
    s.add(event)
    s.flush()
    return event


# ---- screening lists --------------------------------------------------------------------------------------


def latest_snapshot(s: Session, list_name: str) -> ScreeningSnapshot | None:
    """The last snapshot loaded of a list."""
    stmt = (
        select(ScreeningSnapshot)
        .where(col(ScreeningSnapshot.list_name) == list_name)
        .order_by(col(ScreeningSnapshot.id).desc())
    )
    return s.execute(stmt).scalars().first()


def latest_snapshots(s: Session) -> list[ScreeningSnapshot]:
    """The last snapshot of each list loaded."""
    found = [latest_snapshot(s, name) for name in configuration.read(s).list_names]
    return [f for f in found if f is not None]


def add_snapshot(
    s: Session, *, list_name: str, on_date: date, sha256: str, entry_count: int, at: datetime
) -> ScreeningSnapshot:
    """Insert a snapshot and return it with its id."""
    snapshot = ScreeningSnapshot(
        list_name=list_name, on_date=on_date, sha256=sha256, entry_count=entry_count, loaded_at=at
    )
    configuration.forget(s)
    s.add(snapshot)
    s.flush()
    return snapshot


def add_entries(s: Session, snapshot_id: int, entries: Iterable[tuple[str, str, str, Sequence[str]]]) -> None:
    """Insert a snapshot's entries (key, name, source, normalised names) in one statement."""
    rows = [
        {
            "snapshot_id": snapshot_id,
            "entry_key": key,
            "name": name,
            "source": source,
            "names": "\n".join(names),
        }
        for key, name, source, names in entries
    ]
    if rows:
        s.execute(insert(ScreeningEntry), rows)


def list_entries(s: Session, snapshot_id: int) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """A snapshot's entries: (key, name, source, normalised names)."""
    stmt = (
        select(
            col(ScreeningEntry.entry_key),
            col(ScreeningEntry.name),
            col(ScreeningEntry.source),
            col(ScreeningEntry.names),
        )
        .where(col(ScreeningEntry.snapshot_id) == snapshot_id)
        .order_by(col(ScreeningEntry.id))
    )
    return [(r[0], r[1], r[2] or "", tuple(n for n in r[3].split("\n") if n)) for r in s.execute(stmt)]


def match_keys(s: Session, list_name: str) -> set[tuple[int, str]]:
    """(vendor id, entry key) of every match already opened on a list: one is never opened twice."""
    stmt = select(col(ScreeningMatch.vendor_id), col(ScreeningMatch.entry_key)).where(
        col(ScreeningMatch.list_name) == list_name
    )
    return {(int(r[0]), r[1]) for r in s.execute(stmt)}


def add_match(s: Session, match: ScreeningMatch) -> ScreeningMatch | None:
    """Insert a possible match and return it with its id; None when another transaction just opened it."""
    try:
        with s.begin_nested():
            s.add(match)
            s.flush()
    except IntegrityError:
        return None
    return match


def get_match(s: Session, match_id: int) -> ScreeningMatch | None:
    """The match with that id."""
    return s.get(ScreeningMatch, match_id)


def list_matches(s: Session, vendor_ids: Sequence[int], *, status: str | None = None) -> list[ScreeningMatch]:
    """The matches of these vendors (of one status), oldest first."""
    if not vendor_ids:
        return []
    stmt = _MATCHES if status is None else _MATCHES_OF_STATUS
    return list(s.execute(stmt, {"vendor_ids": list(vendor_ids), "status": status}).scalars())


_MATCHES = (
    select(ScreeningMatch)
    .where(col(ScreeningMatch.vendor_id).in_(bindparam("vendor_ids", expanding=True)))
    .order_by(col(ScreeningMatch.id))
)
_MATCHES_OF_STATUS = _MATCHES.where(col(ScreeningMatch.status) == bindparam("status"))


def list_open_matches(s: Session) -> list[ScreeningMatch]:
    """Every open match, oldest first (the digest)."""
    stmt = select(ScreeningMatch).where(col(ScreeningMatch.status) == "open").order_by(col(ScreeningMatch.id))
    return list(s.execute(stmt).scalars())
