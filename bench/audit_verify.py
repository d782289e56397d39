"""`contract-bot audit verify` on a big sealed log (SQLite): the target is 100,000 entries within 10 s.

    python bench/audit_verify.py            # 100,000 entries, 2,000 contracts, a checkpoint every 100 entries
    python bench/audit_verify.py --quick    # 10,000 entries

The log is written as the bot writes it (storage.audit: HMAC-SHA256 under a key file, each entry linked to the one
before), with the bot's mix: one filing (a full contract snapshot) per 50 entries, the rest answers and milestones.
It times the command as an operator runs it (in process: open the database read-only, read the key, read the
checkpoints from a saved copy, walk the chain, compare every contract with its trail), next to a baseline measured
in the same run: only reading the same rows (the floor any check must pay).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, machine  # noqa: E402

sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def build(path: Path, entries: int, per_contract: int) -> tuple[Path, Path]:
    """A migrated SQLite database holding ``entries`` sealed entries; returns (key file, checkpoints file)."""
    from sqlalchemy import insert, text

    from storage import audit
    from storage.db import make_engine, migrate
    from storage.models import AuditEntry, Contract

    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    key = audit.new_key()
    key_file = path.with_name(path.name + ".audit-key")
    audit.write_key_file(key_file, [key])
    snapshot = {
        name: None
        for name in (
            "component value_cents awarded_on term purpose third_party parent contract_no scope stopwork_since "
            "stopwork_reason stopwork_lifted_on determination determined_on determination_reason redetermination_on "
            "redetermination_reason certified_on certified_by notice_on cleared_on waiver_official waiver_issued_on "
            "waiver_until waiver_revoked_on waiver_reported_on revocation_reported_on closed_on close_reason"
        ).split()
    }
    rows, contracts, cps = [], [], []
    prev = audit.GENESIS
    entry = AuditEntry(seq=0, at=NOW, actor="", action="", outcome="ok", prev_hash="", hash="")
    for seq in range(1, entries + 1):
        at = NOW + timedelta(seconds=seq)
        if seq % per_contract == 1:
            cid = len(contracts) + 1
            after = dict(snapshot, vendor=f"Vendor {cid}", product="Graphite", agency="ICE", status="intake")
            contracts.append(
                {
                    "id": cid,
                    "vendor": f"Vendor {cid}",
                    "product": "Graphite",
                    "agency": "ICE",
                    "status": "intake",
                    "filed_by": "UREVIEW1",
                    "filed_at": at,
                }
            )
            action, before = "file", None
        else:
            cid = len(contracts)
            action = "answer"
            after = {
                "qid": f"CI-{seq % 4 + 1}",
                "answer": "no",
                "note": "https://example.gov/evidence",
                "by": "U1",
            }
            before = {"qid": after["qid"], "answer": None}
        entry.seq, entry.at, entry.actor, entry.action = seq, at, "UREVIEW1", action
        entry.contract_id, entry.prev_hash, entry.detail = cid, prev, None
        entry.before = None if before is None else json.dumps(before, sort_keys=True)
        entry.after = json.dumps(after, sort_keys=True, default=str)
        entry.hash = prev = audit.audit_hash(entry, key)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": entry.actor,
                "action": action,
                "outcome": "ok",
                "contract_id": cid,
                "before": entry.before,
                "after": entry.after,
                "detail": None,
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
        )
        if seq % audit.CHECKPOINT_EVERY == 0:
            cps.append(audit.make_checkpoint(key, seq, prev, at))
    with engine.begin() as conn:
        conn.execute(insert(Contract), contracts)
        for i in range(0, len(rows), 5000):
            conn.execute(insert(AuditEntry), rows[i : i + 5000])
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": entries, "h": prev}
        )
    engine.dispose()
    from bot.services.seal import checkpoint_lines

    cp_file = path.with_name("checkpoints.jsonl")
    cp_file.write_text(checkpoint_lines(cps))
    return key_file, cp_file


def read_rows(path: Path) -> float:
    """Baseline: read every entry's columns once, as the walk does, and nothing else."""
    from sqlalchemy import select
    from sqlmodel import col

    from storage.audit import _COLUMNS
    from storage.db import open_existing
    from storage.models import AuditEntry

    engine = open_existing(f"sqlite:///{path}")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        n = sum(1 for _ in conn.execute(select(*_COLUMNS).order_by(col(AuditEntry.seq))))
    took = time.perf_counter() - t0
    engine.dispose()
    assert n > 0
    return took


def run_verify(path: Path, key_file: Path, cp_file: Path) -> tuple[float, int, str]:
    """`contract-bot audit verify --checkpoints FILE`, in process; (seconds, exit code, its line)."""
    import os

    from bot.cli import main

    os.environ.update(DATABASE_URL=f"sqlite:///{path}", AUDIT_KEY_FILE=str(key_file))
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["audit", "verify", "--checkpoints", str(cp_file)])
    return time.perf_counter() - t0, code, (out.getvalue() or err.getvalue()).strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 entries")
    parser.add_argument("--entries", type=int, help="how many entries (default 100,000; 10,000 with --quick)")
    args = parser.parse_args()
    entries = args.entries or (10_000 if args.quick else 100_000)
    print(f"machine: {machine()}; load average at start: {loadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bot.db"
        t0 = time.perf_counter()
        key_file, cp_file = build(path, entries, per_contract=50)
        print(
            f"built {entries:,} sealed entries, {entries // 50:,} contracts in {time.perf_counter() - t0:.1f} s"
        )
        floor = min(read_rows(path) for _ in range(2))
        runs = [run_verify(path, key_file, cp_file) for _ in range(3)]
        best = min(r[0] for r in runs)
        code, line = runs[-1][1], runs[-1][2]
    print(f"baseline, reading the {entries:,} rows only: {floor:.2f} s")
    print(
        f"audit verify (chain + {entries // 100:,} checkpoints + contracts): best of 3 {best:.2f} s, exit {code}"
    )
    print(f"  {line[:200]}")
    print(f"target: 100,000 entries within 10 s -> {'met' if best <= 10 * entries / 100_000 else 'MISSED'}")
    print(f"load average at end: {loadavg()}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
