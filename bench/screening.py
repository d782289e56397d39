"""`contract-bot lists load`: a screening list of 20,000 made-up entries against 1,000 vendors (target: under 30 s).

    python bench/screening.py                  # 20,000 entries (~1.5 aliases each), 1,000 vendors (+300 aliases)
    python bench/screening.py --entries 40000  # a list twice the real CSL's size
    python bench/screening.py --quick          # 2,000 entries, 200 vendors

It writes a Consolidated Screening List CSV in the published format (made-up names built from syllables, some
of them look-alikes of the vendors), loads it into a migrated SQLite database as the bot does (parse, store the
snapshot and its entries, screen every vendor name and alias), then loads a second snapshot with 1% of the
entries removed and 1% added (the diff into vendor events), then times one filing's screening (the cached index
of the latest snapshot). A baseline from the same run: only parsing the file, and only storing its rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, machine  # noqa: E402

sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
HEADER = (
    "_id,source,entity_number,type,programs,name,title,addresses,federal_register_notice,start_date,end_date,"
    "standard_order,license_requirement,license_policy,call_sign,vessel_type,gross_tonnage,gross_registered_tonnage,"
    "vessel_flag,vessel_owner,remarks,source_list_url,alt_names,citizenships,dates_of_birth,nationalities,"
    "places_of_birth,source_information_url,ids"
).split(",")
SOURCES = (
    "Entity List (EL) - Bureau of Industry and Security",
    "Specially Designated Nationals (SDN) - Treasury Department",
    "Unverified List (UVL) - Bureau of Industry and Security",
    "Military End User (MEU) List - Bureau of Industry and Security",
)
SYLLABLES = [c + v for c in "bdfghjklmnprstvwxz" for v in "aeiou"]  # 90 syllables
WORDS = "Systems Technologies Labs Solutions Intelligence Data Networks Signals Security Analytics Group Trading".split()
FORMS = ("Ltd.", "LLC", "S.A.", "GmbH", "OOO", "Inc.", "Co., Ltd.", "JSC", "")


def made_up(rng: random.Random) -> str:
    """A company name that exists nowhere: two or three made-up syllable words, a trade word and a legal form."""
    words = [
        "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 4))).title()
        for _ in range(rng.randint(1, 2))
    ]
    return " ".join([*words, rng.choice(WORDS), rng.choice(FORMS)]).strip()


def write_csl(path: Path, entries: list[tuple[str, str, str, list[str]]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\r\n")
    w.writeheader()
    for _id, source, name, alt in entries:
        row = dict.fromkeys(HEADER, "")
        row.update(_id=_id, source=source, name=name, type="Entity", alt_names="; ".join(alt))
        w.writerow(row)
    path.write_text(buf.getvalue(), encoding="utf-8")


def build_entries(rng: random.Random, n: int, vendors: list[str], start: int = 0):
    entries = []
    for i in range(start, start + n):
        name = made_up(rng) if i % 400 else vendors[(i // 400) % len(vendors)].upper()  # 1 in 400: a vendor
        alt = [made_up(rng) for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))]
        entries.append((f"id{i}", SOURCES[i % len(SOURCES)], name, alt))
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--vendors", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_entries, n_vendors = (2_000, 200) if args.quick else (args.entries, args.vendors)

    from sqlalchemy import insert

    from bot.clock import ManualClock
    from bot.domain.lists import parse_csl
    from bot.services import vendors as service
    from storage import audit
    from storage import vendors as vrepo
    from storage.db import make_engine, migrate, session_factory, unit_of_work
    from storage.models import ScreeningEntry, Vendor, VendorAlias

    print(f"machine: {machine()}; load average {loadavg()}")
    rng = random.Random(14093)
    tmp = Path(tempfile.mkdtemp(prefix="bench-screening-"))
    engine = make_engine(f"sqlite:///{tmp / 'bot.db'}")
    migrate(engine)
    audit.seal_engine(engine, audit.Sealer(audit.AuditKeys(audit.new_key())))
    factory = session_factory(engine)
    clock = ManualClock(NOW)

    vendor_names = list(dict.fromkeys(made_up(rng) for _ in range(n_vendors * 2)))[:n_vendors]
    with unit_of_work(factory) as s:
        s.execute(
            insert(Vendor),
            [
                {"name": v, "normalised": service._key_of(v), "created_at": NOW}
                for v in {service._key_of(v): v for v in vendor_names}.values()
            ],
        )
    with unit_of_work(factory) as s:
        ids = [v for v, _, _ in vrepo.list_vendor_names(s)]
        seen = {service._key_of(v) for v in vendor_names}
        aliases = []
        for vid in ids[: len(ids) * 3 // 10]:
            alias = made_up(rng)
            if service._key_of(alias) not in seen:
                aliases.append({"vendor_id": vid, "alias": alias, "normalised": service._key_of(alias)})
        s.execute(insert(VendorAlias), aliases)
    print(f"{len(ids):,} vendors, {len(aliases):,} aliases")

    first = build_entries(rng, n_entries, vendor_names)
    csl = tmp / "consolidated.csv"
    write_csl(csl, first)
    data = csl.read_bytes()
    names = sum(1 + len(e[3]) for e in first)
    print(f"list: {n_entries:,} entries, {names:,} names, {len(data) / 1e6:.1f} MB")

    t = time.perf_counter()
    parsed = parse_csl(data)
    t_parse = time.perf_counter() - t
    # the floor of storing: the same rows inserted into a scratch database, nothing else
    scratch = make_engine(f"sqlite:///{tmp / 'scratch.db'}")
    migrate(scratch)
    t = time.perf_counter()
    with unit_of_work(session_factory(scratch)) as s:
        snap = vrepo.add_snapshot(
            s, list_name="csl", on_date=date(2026, 11, 1), sha256="x", entry_count=0, at=NOW
        )
        assert snap.id is not None
        vrepo.add_entries(s, snap.id, ((e.key, e.name, e.source, e.names) for e in parsed))
    t_store = time.perf_counter() - t
    scratch.dispose()

    service._INDEX.clear()
    t = time.perf_counter()
    result = service.load_list(
        factory, clock, "csl", data, on_date=date(2026, 11, 20), today=date(2026, 11, 24)
    )
    t_load = time.perf_counter() - t
    print(
        f"baseline: parse {t_parse:.2f} s, store the rows {t_store:.2f} s\n"
        f"lists load (parse, store, screen {len(ids) + len(aliases):,} names against {names:,}): {t_load:.2f} s, "
        f"{result.opened} possible matches  [target < 30 s: {'ok' if t_load < 30 else 'MISSED'}]"
    )

    # a later snapshot: 1% removed, 1% added (a tenth of those look like vendors)
    k = max(1, n_entries // 100)
    second = first[k:] + build_entries(rng, k, vendor_names[::-1], start=n_entries)
    write_csl(csl, second)
    t = time.perf_counter()
    result2 = service.load_list(
        factory, clock, "csl", csl.read_bytes(), on_date=date(2026, 11, 27), today=date(2026, 11, 28)
    )
    t_load2 = time.perf_counter() - t
    print(
        f"second snapshot (-{k:,} +{k:,}): {t_load2:.2f} s, {result2.added} added, {result2.removed} removed, "
        f"{result2.events} vendor events, {result2.opened} new possible matches"
    )

    # one filing's screening against the latest snapshot: the cached index (first filing after a start: cold)
    from storage.models import Contract

    for label in ("cold", "warm"):
        if label == "cold":
            service._INDEX.clear()
        t = time.perf_counter()
        with unit_of_work(factory) as s:
            c = Contract(vendor=made_up(rng), product="P", agency="A", filed_by="U1", filed_at=NOW)
            s.add(c)
            s.flush()
            service.link_filing(s, c, NOW)
        print(f"a filing linked and screened ({label}): {(time.perf_counter() - t) * 1000:.0f} ms")
    with engine.connect() as conn:
        from sqlalchemy import func, select

        rows = conn.execute(select(func.count()).select_from(ScreeningEntry)).scalar_one()
    print(
        f"screening_entry rows: {rows:,}; database {(tmp / 'bot.db').stat().st_size / 1e6:.1f} MB; load average {loadavg()}"
    )
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
