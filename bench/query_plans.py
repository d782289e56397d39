"""Diagnostics behind the findings: SQLite query plans and times of the hot queries on a big database.

    /work/venv/bin/python bench/query_plans.py            # 200,000 contracts, 100,000 pending outbox rows
    /work/venv/bin/python bench/query_plans.py --quick    # 20,000 contracts, 10,000 pending outbox rows

The database is built as bench/sweep_scaling.py builds it (contracts + one pending reminder each, due in
30 days), plus pending outbox rows, 7 per contract, as filing contracts under load leaves them when delivery
falls behind (bench/ack_latency.py). For each query the repositories run (storage/repositories.py) it prints
SQLite's plan and the median time of 5 runs, first without statistics (as in production: nothing runs
ANALYZE), then after ANALYZE. Claims run in a transaction that is rolled back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, loadavg, machine, seed_contracts  # noqa: E402

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--contracts", type=int, default=None)
    ap.add_argument("--outbox", type=int, default=None, help="pending outbox rows (7 per contract)")
    a = ap.parse_args()
    n = a.contracts or (20_000 if a.quick else 200_000)
    pending = a.outbox or (10_000 if a.quick else 100_000)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import text
    from sqlmodel import Session

    from storage import repositories as repo
    from storage.db import make_engine, migrate
    from storage.models import OutboxMessage

    print(f"query_plans: {machine()}")
    with tempfile.TemporaryDirectory(prefix="plans-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/plans.db")
        migrate(engine)
        seeded = seed_contracts(engine, n, now=NOW)
        rows = [
            dict(
                created_at=NOW,
                contract_id=1 + i // 7,
                op="post",
                target="thread",
                message_key=None,
                payload=json.dumps({"render": "text", "text": "x"}),
                status="pending",
                attempts=0,
                next_attempt_at=NOW - timedelta(seconds=1),
            )
            for i in range(pending)
        ]
        with engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                conn.execute(OutboxMessage.__table__.insert(), rows[i : i + 5000])
        print(
            f"{n} contracts + {n} pending reminders (seeded in {seeded['seconds']:.1f} s), {pending} pending outbox rows"
        )

        def timed(fn, repeat: int = 5) -> float:  # noqa: ANN001
            times = []
            for _ in range(repeat):
                with Session(engine) as s:
                    t = time.perf_counter()
                    fn(s)
                    times.append(time.perf_counter() - t)
                    s.rollback()
            return statistics.median(times)

        queries = {
            "list_pending_reminders(contract_id=1, limit=5)  [show, every outbox render]": lambda s: (
                repo.list_pending_reminders(s, contract_id=1, limit=5)
            ),
            "claim_outbox(limit=50)  [every delivery round, under the SQLite write lock]": lambda s: (
                repo.claim_outbox(s, worker="w", now=NOW, lease=timedelta(seconds=60), limit=50)
            ),
            "claim_due_reminders(limit=500)  [every sweep batch]": lambda s: repo.claim_due_reminders(
                s, worker="w", now=NOW, lease=timedelta(minutes=5), limit=500
            ),
        }
        plans = {
            "list_pending_reminders(contract_id=1, limit=5)  [show, every outbox render]": "SELECT * FROM reminder WHERE status = 'pending' AND contract_id = 1 ORDER BY due_at, id LIMIT 5",
            "claim_outbox(limit=50)  [every delivery round, under the SQLite write lock]": "SELECT outbox.id FROM outbox WHERE outbox.status = 'pending' AND outbox.next_attempt_at <= '2026-11-24 15:00:00'"
            " AND (outbox.lease_until IS NULL OR outbox.lease_until < '2026-11-24 15:00:00') AND (outbox.contract_id IS NULL"
            " OR NOT (EXISTS (SELECT * FROM outbox AS earlier WHERE earlier.contract_id = outbox.contract_id AND"
            " earlier.status = 'pending' AND earlier.id < outbox.id))) ORDER BY outbox.id LIMIT 50",
            "claim_due_reminders(limit=500)  [every sweep batch]": "SELECT reminder.id FROM reminder WHERE reminder.status = 'pending' AND reminder.due_at <= '2026-11-24 15:00:00'"
            " AND (reminder.lease_until IS NULL OR reminder.lease_until < '2026-11-24 15:00:00') ORDER BY reminder.due_at,"
            " reminder.id LIMIT 500",
        }
        for phase in ("no statistics (production)", "after ANALYZE"):
            if phase == "after ANALYZE":
                with engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
            print(f"\n--- {phase}")
            for name, fn in queries.items():
                with engine.connect() as conn:
                    plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + plans[name])]
                    conn.rollback()
                print(f"{name}\n    median {timed(fn) * 1000:9.2f} ms   plan: {' | '.join(plan)}")
        engine.dispose()
    print(f"\nend: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
