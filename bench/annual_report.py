"""The §4(d) annual report for 1,000 contracts (SQLite): the target is under 10 s.

    python bench/annual_report.py              # 1,000 contracts, every one in the report with its clocks picture
    python bench/annual_report.py --contracts 200 --repeat 1

The database holds what the bot writes: each contract's row and its audit trail (a full snapshot of the contract
after every change, as bot.services.reviews records it), all awarded in the reporting year 2026 (28 March 2025 to
27 March 2026) so that every contract is in the report: 40 % in operational use (determined not-risky, certified,
APNSA notified), 20 % re-determined prohibited in the year after a use, with a stop-work order, 10 % under a
waiver (a third of them revoked), 15 % bought for an excluded purpose and closed, 15 % plain purchases. It times
``build_annual_report`` as the bot runs it after answering `/contract report annual` (and as `contract-bot report
annual --format docx` does): the record read in one read-only snapshot, the selection, the Word file with a picture
per contract. First run (loads python-docx and matplotlib), then warm runs; peak Python memory (tracemalloc) and
the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, machine, peak_rss_mb  # noqa: E402

sys.path.insert(0, str(ROOT))

ZONE = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 24)
YEAR_START = date(2025, 3, 28)
FIELDS = (
    "vendor product agency component value_cents awarded_on term purpose third_party parent contract_no scope "
    "status stopwork_since stopwork_reason stopwork_lifted_on determination determined_on determination_reason "
    "determined_by redetermination_on redetermination_reason certified_on certified_by notice_on cleared_on "
    "waiver_official waiver_issued_on waiver_until waiver_reason waiver_revoked_on waiver_reported_on "
    "revocation_reported_on closed_on close_reason restricted"
).split()


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def build(path: Path, n: int) -> None:
    """A migrated SQLite database holding ``n`` contracts and their audit trails."""
    from sqlalchemy import insert

    from storage.db import make_engine, migrate
    from storage.models import AuditEntry, Contract

    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    contracts, entries = [], []
    seq = 0
    for i in range(1, n + 1):
        awarded = YEAR_START + timedelta(days=(i * 7) % 200)
        row: dict = dict.fromkeys(FIELDS)
        row.update(
            vendor=f"Vendor {i}",
            product="Graphite",
            agency=("ICE", "FBI", "DEA", "CBP")[i % 4],
            value_cents=2_000_000_00 + i,
            awarded_on=awarded,
            term="1 year",
            purpose="operational",
            status="intake",
            restricted=False,
        )
        events: list[tuple[str, date, dict]] = [("file", awarded, {})]
        kind = i % 20
        d = awarded + timedelta(days=20)
        if kind < 8 or 8 <= kind < 12:  # in use (and, for 8..11, prohibited later in the year)
            events += [
                (
                    "determine",
                    d,
                    {"determination": "not-risky", "determined_on": d, "determination_reason": "vetted"},
                ),
                (
                    "certify",
                    d + timedelta(days=1),
                    {"certified_on": d + timedelta(days=1), "certified_by": "DNI"},
                ),
                ("notify", d + timedelta(days=2), {"notice_on": d + timedelta(days=2)}),
            ]
            if kind >= 8:
                p = d + timedelta(days=60)
                events += [
                    (
                        "re-determine",
                        p,
                        {
                            "determination": "prohibited",
                            "determined_on": p,
                            "determination_reason": "IU-1: misuse reported",
                            "certified_on": None,
                            "certified_by": None,
                            "notice_on": None,
                        },
                    ),
                    ("stopwork", p + timedelta(days=1), {"stopwork_since": p + timedelta(days=1)}),
                ]
        elif kind < 14:  # a waiver; a third revoked
            until = d + timedelta(days=300)
            events += [
                (
                    "determine",
                    d,
                    {"determination": "prohibited", "determined_on": d, "determination_reason": "IU-2"},
                ),
                (
                    "waiver",
                    d + timedelta(days=2),
                    {
                        "waiver_official": "Secretary of Defense",
                        "waiver_issued_on": d + timedelta(days=2),
                        "waiver_until": until,
                        "waiver_reason": "extraordinary circumstances",
                    },
                ),
                ("waiver-report", d + timedelta(days=3), {"waiver_reported_on": d + timedelta(days=3)}),
            ]
            if i % 3 == 0:
                events.append(
                    ("revoke-waiver", d + timedelta(days=90), {"waiver_revoked_on": d + timedelta(days=90)})
                )
        elif kind < 17:  # excluded purpose, closed
            row["purpose"] = "excluded"
            events.append(
                (
                    "close",
                    d + timedelta(days=100),
                    {"closed_on": d + timedelta(days=100), "close_reason": "done"},
                )
            )
        for action, on, changes in events:
            row.update(changes)
            seq += 1
            entries.append(
                {
                    "seq": seq,
                    "at": datetime(2026, 11, 24, 15, tzinfo=UTC) + timedelta(seconds=seq),
                    "actor": "UOFFICIAL1",
                    "action": action,
                    "outcome": "ok",
                    "contract_id": i,
                    "before": None,
                    "after": json.dumps({k: _iso(v) for k, v in row.items()}, sort_keys=True),
                    "detail": f"on {on.isoformat()}",
                    "prev_hash": "",
                    "hash": "",
                }
            )
        contracts.append(
            {
                **row,
                "id": i,
                "filed_by": "UMEMBER1",
                "filed_at": datetime(2026, 11, 24, 15, tzinfo=UTC),
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Contract), contracts)
        conn.execute(insert(AuditEntry), entries)
    engine.dispose()


def main() -> int:
    """Build the database, time the report, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs (default 3)")
    args = parser.parse_args()

    from bot.services.annual_report import build_annual_report
    from storage.db import make_engine, session_factory

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        build(path, args.contracts)
        print(f"built {args.contracts} contracts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        engine = make_engine(f"sqlite:///{path}")
        factory = session_factory(engine)

        def run(fmt: str = "docx") -> tuple[float, bytes, object]:
            start = time.perf_counter()
            _, content, report = build_annual_report(
                factory, today=TODAY, zone=ZONE, banner="CUI", year=2026, fmt=fmt
            )
            return time.perf_counter() - start, content, report

        tracemalloc.start()
        first, content, report = run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        warm = [run()[0] for _ in range(args.repeat)]
        md_time, md, _ = run("md")
        engine.dispose()
    sections = (len(report.uses), len(report.ended), len(report.purchases), len(report.contracts))  # type: ignore[attr-defined]
    print(f"machine: {machine()}; load {loadavg()}")
    print(
        f"contracts: {args.contracts}; in the report: {sections[3]} (uses {sections[0]}, ended {sections[1]}, "
        f"purchases {sections[2]}), one picture each"
    )
    print(f"Word file: {len(content) / 1e6:.1f} MB; Markdown {len(md) / 1e3:.0f} kB in {md_time:.2f} s")
    print(f"first (loads python-docx, matplotlib): {first:.2f} s (peak Python memory {peak / 2**20:.0f} MiB)")
    if warm:
        print(f"warm: median {statistics.median(warm):.2f} s, max {max(warm):.2f} s over {len(warm)}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    target = min([first, *warm])
    print("target < 10 s:", "met" if target < 10 else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
