"""What one request costs the bot, alone: CPU and database statements per kind, this tree against a baseline commit.

`ack_latency.py` measures latency under load, which on a shared 2-core machine moves by a third from one run to
the next. This measures what the latency is made of, one request at a time: the bot is served in this process
(`create_app` on a fresh PostgreSQL schema or SQLite file, waitress, the Slack double in a process of its own,
no background delivery), one client sends the four kinds of `ack_latency.py` in turn, and the process's CPU time
and the statements the bot's engine executes are counted per request. The baseline is the same script run on a
`git worktree` of ``--baseline`` (default: the first commit of this round of work on the request path), the two
alternating ``--rounds`` times so that a slow spell of the machine falls on both.

    python bench/request_cost.py                       # PostgreSQL, this tree against the default baseline
    python bench/request_cost.py --backend sqlite --baseline HEAD~3 --requests 200

The CPU figure includes the client's own (signing and HTTP, well under a millisecond) and is the same for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(Path(__file__).resolve().parent))
# the harness (the Slack double, the schema) is this tree's for both sides; only the bot comes from the tree measured
import _common  # noqa: E402

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_BASELINE = "5d8c699"  # the request path before the 2026-12-07 statement cuts (bench/README.md)
KINDS = ("file", "show", "button", "modal")


def measure(root: str, backend: str, requests: int) -> dict:
    """Run in a child process whose imports come from ``root``: per kind, mean CPU ms and statements."""
    sys.path[:0] = [root, str(Path(root) / "bench")]
    from types import SimpleNamespace

    import ack_latency as al
    from _common import DoubleProcess, new_response_urls
    from sqlalchemy import event

    from bot.app import create_app
    from storage import repositories as repo
    from storage.db import make_engine, read_only
    from tests.conftest import make_settings, serve_bot

    dbl = DoubleProcess(n_response_urls=0)
    schema = _common.create_schema(PG_URL, "cost") if backend == "postgresql" else None
    workdir = tempfile.mkdtemp(prefix="request_cost_")
    try:
        if schema is not None:
            settings = make_settings(SimpleNamespace(api_url=dbl.api_url), PG_URL)
            bot = create_app(settings, engine=make_engine(PG_URL, schema=schema))
        else:
            bot = create_app(
                make_settings(SimpleNamespace(api_url=dbl.api_url), f"sqlite:///{workdir}/bot.db")
            )
        bot.service.grant(al.ADMIN, al.REVIEWER, "reviewer")
        seed = {
            "vendor": "Paragon Solutions",
            "product": "Graphite-seed-0",
            "agency": "ICE",
            "purpose": "operational",
        }
        bot.service.file_contract(al.MEMBER, seed)
        bot.dispatcher.deliver_due()
        with read_only(bot.session_factory) as s:
            question = repo.get_question(s, 1, al.BUTTON_QID)
            button_ts = question.message_ts if question is not None else None
        counting: dict[str, str | None] = {"kind": None}
        statements: Counter[str] = Counter()

        @event.listens_for(bot.engine, "before_cursor_execute")
        def _count(*_args) -> None:  # noqa: ANN002
            if counting["kind"]:
                statements[counting["kind"]] += 1

        url, stop = serve_bot(bot)
        rq = al._make_requester(url, new_response_urls(dbl.base_url, 4 * requests + 50))
        for i in range(20):  # warm: imports, the pool's connections, prepared statements
            al._one(rq, KINDS[i % 4], 0, 10_000 + i, button_ts)
        cpu: defaultdict[str, float] = defaultdict(float)
        for i in range(4 * requests):
            kind = KINDS[i % 4]
            counting["kind"] = kind
            started = time.process_time()
            resp = al._one(rq, kind, 0, i, button_ts)
            cpu[kind] += time.process_time() - started
            counting["kind"] = None
            if resp.status != 200:
                raise RuntimeError(f"{kind}: HTTP {resp.status} {resp.body[:200]}")
        stop()
        bot.stop()
        return {
            k: {"cpu_ms": cpu[k] / requests * 1000, "statements": statements[k] / requests} for k in KINDS
        }
    finally:
        dbl.stop()
        if schema is not None:
            _common.drop_schema(PG_URL, schema)


def run_child(root: Path, backend: str, requests: int) -> dict:
    out = subprocess.run(
        [PY, str(Path(__file__).resolve()), "_measure", str(root), backend, str(requests)],
        cwd=str(root),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"measuring {root} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))), flush=True)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="the commit measured beside this tree")
    ap.add_argument("--requests", type=int, default=120, help="measured requests of each kind per round")
    ap.add_argument("--rounds", type=int, default=3, help="baseline and this tree alternate this many times")
    args = ap.parse_args()
    from _common import loadavg, machine

    rev = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"request_cost: {machine()}; {args.backend}; baseline {rev}", flush=True)
    worktree = Path(tempfile.mkdtemp(prefix="request_cost_base_")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), rev], cwd=ROOT, check=True)
    results: dict[str, list[dict]] = {"baseline": [], "this tree": []}
    try:
        for n in range(args.rounds):
            for name, root in (("baseline", worktree), ("this tree", ROOT)):
                results[name].append(run_child(root, args.backend, args.requests))
                print(f"  round {n + 1}: {name} done", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    print(f"\n== per request, mean of {args.rounds} rounds x {args.requests} of each kind ==")
    print(
        f"  {'kind':8} {'baseline CPU':>13} {'this tree':>10} {'change':>7}   {'statements':>10} {'this tree':>9}"
    )
    for kind in KINDS:
        before = sum(r[kind]["cpu_ms"] for r in results["baseline"]) / args.rounds
        after = sum(r[kind]["cpu_ms"] for r in results["this tree"]) / args.rounds
        s_before = results["baseline"][0][kind]["statements"]
        s_after = results["this tree"][0][kind]["statements"]
        print(
            f"  {kind:8} {before:10.2f} ms {after:7.2f} ms {100 * (after - before) / before:+6.0f}%"
            f"   {s_before:10.1f} {s_after:9.1f}"
        )
    print(f"end: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
