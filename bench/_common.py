"""Shared helpers for the benchmark scripts in bench/ (not a test module).

* ``IndexedDouble``: the loopback Slack double from tests/support with an O(1) message lookup, so that the
  double itself does not slow down when tens of thousands of messages are posted (its ``_find`` is a
  linear scan, which is fine for tests but quadratic under load).
* ``DoubleProcess``: runs that double in its own process (it stands in for Slack, which is not in the bot's
  process either), the bot invited to the review and manager channels and Slack's rate limits off unless
  asked for; its API URL and pre-registered response URLs; ``stats()`` asks it what it was sent (API calls by
  method, private replies posted to response URLs with the failures among them, refusals, 429s).
* small statistics, memory and machine-description helpers.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = sys.executable

# What contract-bot says when a request did not go through (bot/services/deadline.py, handlers/context.py).
FAILURE_PHRASES = {
    "nothing recorded": "nothing was recorded",
    "could not confirm": "cannot confirm it was recorded",
    "error ID": "Something went wrong",
}


# ---- the Slack double -----------------------------------------------------------------------------------

REVIEW_CHANNEL, MANAGER_CHANNEL, REVIEWER_USER = "CREVIEW1", "CMANAGER1", "UREVIEW1"  # as tests/conftest.py


def _indexed_double_class():
    from tests.support.slack_double import SlackDouble, _Reply

    class IndexedDouble(SlackDouble):
        """SlackDouble with a (channel, ts) -> message index, counters, and two GET endpoints for the benchmarks.

        * ``GET /bench/stats``: {"api": {method: calls}, "responses": {kind: posts}, "refused": {"kind:error": n},
          "rate_limited": n}. Response-URL posts are counted by kind: the failures of FAILURE_PHRASES and
          "other" (any other private reply).
        * ``GET /bench/response_urls/<n>``: n fresh response URLs (each takes 5 posts, as Slack's does), for
          the reviewer in the review channel.
        """

        def _reset_state(self) -> None:
            super()._reset_state()
            self._by_ts: dict[tuple[str, str], dict] = {}
            self._stats: dict[str, dict[str, int]] = {"api": {}, "responses": {}}

        def _dispatch(self, kind, method, params, headers, path, raw):  # noqa: ANN001, ANN202
            if kind == "other" and path == "/bench/stats":
                refused: dict[str, int] = {}
                for r in self._refusals:
                    refused[f"{r.kind}:{r.error}"] = refused.get(f"{r.kind}:{r.error}", 0) + 1
                return _Reply(200, {**self._stats, "refused": refused, "rate_limited": len(self._limited)})
            if kind == "other" and path.startswith("/bench/response_urls/"):
                n = min(int(path.rsplit("/", 1)[1]), 100_000)
                urls = [self.new_response_url(channel=REVIEW_CHANNEL, user=REVIEWER_USER) for _ in range(n)]
                return _Reply(200, urls)
            if kind == "api":
                self._stats["api"][method] = self._stats["api"].get(method, 0) + 1
            return super()._dispatch(kind, method, params, headers, path, raw)

        def _response_url(self, path, body):  # noqa: ANN001, ANN202
            text = str(body.get("text") or "") if isinstance(body, dict) else ""
            key = next((name for name, phrase in FAILURE_PHRASES.items() if phrase in text), "other")
            self._stats["responses"][key] = self._stats["responses"].get(key, 0) + 1
            return super()._response_url(path, body)

        def _find(self, channel, ts):  # noqa: ANN001, ANN202 - deleted messages stay indexed (no bench deletes)
            return self._by_ts.get((channel, ts))

        def _new_message(self, channel, p, *, files=None):  # noqa: ANN001, ANN202
            msg = super()._new_message(channel, p, files=files)
            self._by_ts[(channel, msg["ts"])] = msg
            return msg

    return IndexedDouble


def run_double_forever(n_response_urls: int, keep_calls: bool, rate_scale: float) -> None:
    """Entry of the double's process: print {"api_url", "base_url", "response_urls"} and serve until stdin closes.

    The bot is a member of the review and manager channels (as in tests/conftest.py). ``rate_scale`` 0 turns
    Slack's rate limits off (the double answers at once); otherwise they run at that many times Slack's rates.
    """
    cls = _indexed_double_class()
    double = cls(
        rate_scale=rate_scale or 1.0, limits=rate_scale > 0, invited=(REVIEW_CHANNEL, MANAGER_CHANNEL)
    ).start()
    if not keep_calls:
        # The double records every call with its raw body; a long load run does not need that history.
        import threading

        def trim() -> None:
            while True:
                time.sleep(2)
                with double._lock:
                    del double._calls[:-1000]
                    del double._responses[:-1000]
                    del double._ephemerals[:-1000]

        threading.Thread(target=trim, daemon=True).start()
    urls = [
        double.new_response_url(channel=REVIEW_CHANNEL, user=REVIEWER_USER) for _ in range(n_response_urls)
    ]
    print(
        json.dumps({"api_url": double.api_url, "base_url": double.base_url, "response_urls": urls}),
        flush=True,
    )
    try:
        sys.stdin.read()  # returns when the parent closes our stdin (or exits)
    finally:
        with double._lock:
            posted = sum(len(v) for v in double._channels.values())
        print(json.dumps({"double_messages": posted}), file=sys.stderr, flush=True)
        double.stop()


def new_response_urls(base_url: str, n: int) -> list[str]:
    """n fresh response URLs from a DoubleProcess's double (a response URL takes 5 posts, as Slack's does)."""
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/bench/response_urls/{n}", timeout=30) as resp:
        return json.loads(resp.read())


class DoubleProcess:
    """The Slack double in a child process (``python bench/_common.py double N KEEP_CALLS RATE_SCALE``).

    ``rate_scale``: 0 (default) turns Slack's rate limits off, so the double answers at once and the figures
    measure the bot; N > 0 applies them at N times Slack's rates (1 = Slack's own).
    """

    def __init__(self, n_response_urls: int = 16, keep_calls: bool = False, rate_scale: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [PY, str(Path(__file__)), "double", str(n_response_urls), str(int(keep_calls)), str(rate_scale)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the Slack double process did not start")
        info = json.loads(line)
        self.api_url: str = info["api_url"]
        self.base_url: str = info["base_url"]
        self.response_urls: list[str] = info["response_urls"]

    def stats(self) -> dict:
        """What the double was sent so far (see IndexedDouble: GET /bench/stats)."""
        import urllib.request

        with urllib.request.urlopen(f"{self.base_url}/bench/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> DoubleProcess:
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.stop()


# ---- bulk seeding (SQLAlchemy core, for setup speed) ----------------------------------------------------


def seed_contracts(
    engine,
    n_contracts: int,
    *,
    now,
    due: int = 0,
    kind: str = "stopwork",  # noqa: ANN001
    future_reminders: int = 1,
    chunk: int = 5000,
    analyze: bool = False,
    first_id: int = 1,
) -> dict:
    """Insert ``n_contracts`` contracts (ids first_id..) directly; the first ``due`` get one reminder due before ``now``.

    kind="stopwork": the due contracts have a stop-work order in effect (stopwork_since set) and a stop-work
    reminder whose data matches it, so ReminderSweeper._evaluate sends it (to the manager channel; the sweep
    merges one batch's manager reminders into one message).
    kind="unanswered": the due contracts have their 5 SCOPE questions asked and unanswered, and an
    "unanswered" reminder for section SCOPE, so each one becomes its own thread message (no merging).
    Every other contract gets ``future_reminders`` escalation reminders due in 30 days (not due), as a
    database of that many contracts would have.
    ``analyze``: run ANALYZE afterwards. Off by default, as in production: the migrations never run it and
    SQLite does not gather statistics by itself, so the query planner works without them. (PostgreSQL is
    always analyzed: its autovacuum daemon does that on a live database.)
    """
    import json as _json
    from datetime import date, timedelta

    from storage.models import Contract, Question, Reminder

    since = date(2026, 11, 2)
    t0 = time.perf_counter()
    ct, qt, rt = Contract.__table__, Question.__table__, Reminder.__table__
    statuses = ("intake", "in-review", "determined", "waiting", "closed")
    with engine.begin() as conn:
        last = first_id + n_contracts - 1
        for start in range(first_id, last + 1, chunk):
            ids = range(start, min(last, start + chunk - 1) + 1)
            rows, qrows, rrows = [], [], []
            for i in ids:
                is_due = i < first_id + due
                rows.append(
                    dict(
                        id=i,
                        vendor=f"Vendor {i}",
                        product=f"Product {i % 97}",
                        agency=f"Agency {i % 13}",
                        component=None,
                        value_cents=100_000 * (i % 50),
                        awarded_on=None,
                        term=None,
                        purpose="operational",
                        third_party=None,
                        parent=None,
                        contract_no=f"K-{i}",
                        scope=None,
                        filed_by="UMEMBER1",
                        filed_at=now - timedelta(days=30),
                        source_key=None,
                        status="in-review" if is_due else statuses[i % len(statuses)],
                        channel_id=REVIEW_CHANNEL,
                        parent_ts=f"{1_600_000_000 + i}.000100",
                        stopwork_since=since if (is_due and kind == "stopwork") else None,
                        stopwork_reason="bench" if (is_due and kind == "stopwork") else None,
                    )
                )
                if is_due:
                    due_at = now - timedelta(minutes=60) + timedelta(microseconds=i)
                    if kind == "stopwork":
                        rrows.append(
                            dict(
                                contract_id=i,
                                kind="stopwork",
                                key=f"stopwork:{i}:{since}:{due_at.isoformat()}",
                                due_at=due_at,
                                status="pending",
                                data=_json.dumps({"since": since.isoformat()}),
                            )
                        )
                    else:
                        for k in range(1, 6):
                            qrows.append(
                                dict(
                                    contract_id=i,
                                    qid=f"SCOPE-{k}",
                                    asked_at=now - timedelta(days=5),
                                    message_ts=f"{1_600_000_000 + i}.{k:06d}",
                                )
                            )
                        rrows.append(
                            dict(
                                contract_id=i,
                                kind="unanswered",
                                key=f"unanswered:{i}:SCOPE:1",
                                due_at=due_at,
                                status="pending",
                                data=_json.dumps({"section": "SCOPE", "n": 1}),
                            )
                        )
                else:
                    for k in range(future_reminders):
                        rrows.append(
                            dict(
                                contract_id=i,
                                kind="escalation",
                                key=f"escalation:{i}:F{k}",
                                due_at=now + timedelta(days=30, minutes=i % 1440),
                                status="pending",
                                data=_json.dumps({"section": "SCOPE"}),
                            )
                        )
            conn.execute(ct.insert(), rows)
            if qrows:
                conn.execute(qt.insert(), qrows)
            if rrows:
                conn.execute(rt.insert(), rrows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('contract', 'id'), {max(last, 1)})")
    if analyze or engine.dialect.name == "postgresql":  # PostgreSQL's autovacuum would analyze by itself
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return {
        "contracts": n_contracts,
        "due": due,
        "kind": kind,
        "seconds": time.perf_counter() - t0,
        "analyzed": analyze,
    }


# ---- figures --------------------------------------------------------------------------------------------


def create_schema(url: str, prefix: str) -> str:
    """A fresh PostgreSQL schema ``prefix_<random>`` in the database at ``url``; drop it with ``drop_schema``."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run_admin(url, f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(url: str, schema: str) -> None:
    """Drop a schema made by ``create_schema``, with everything in it."""
    _run_admin(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _run_admin(url: str, statement: str) -> None:
    from sqlalchemy import create_engine

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def stop_child(proc: subprocess.Popen, timeout: float) -> None:
    """End a server child that serves until its stdin closes: close it, wait, and kill it past ``timeout``."""
    if proc.poll() is not None:
        return
    proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def peak_rss_mb() -> float:
    """Peak RSS of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def proc_status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process from /proc, in MiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024.0
    except FileNotFoundError:
        pass
    return out


def machine() -> str:
    """nproc, CPU model, Python version, SQLite version (for the README and the printout)."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import sqlite3

    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()} cpu='{model}' mem={mem} python={platform.python_version()} "
        f"sqlite={sqlite3.sqlite_version} kernel={platform.release()} {loadavg()}"
    )


def loadavg() -> str:
    """The machine's load average now (the machine may be shared: other work skews every figure)."""
    try:
        with open("/proc/loadavg") as f:
            return "loadavg=" + "/".join(f.read().split()[:3])
    except OSError:
        return "loadavg=?"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def noop(*_args, **_kwargs) -> None:
    """The APScheduler job callable of bench/sweep_scaling.py (importable by reference: ``_common:noop``)."""
    return None


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "double":
        run_double_forever(
            int(sys.argv[2]) if len(sys.argv) > 2 else 16,
            bool(int(sys.argv[3])) if len(sys.argv) > 3 else False,
            float(sys.argv[4]) if len(sys.argv) > 4 else 0.0,
        )
    else:
        print(machine())
