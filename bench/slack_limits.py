"""Slack's real rate limits: 3 filings, then one reviewer answering a whole contract, against the strict double.

    python bench/slack_limits.py            # full: 3 configurations, every question of CR-1; ~3 min
    python bench/slack_limits.py --quick    # the reviewer answers SCOPE and PROC only (9 questions); ~2 min

Layout (every socket is on 127.0.0.1):

* the Slack double (tests/support/slack_double.py) in this process, fresh for each configuration: strict, its
  rate limits at Slack's real rates (``rate_scale=1``: 1 ``chat.postMessage`` per second per channel after a
  burst of 3, Tier 3 = 50 a minute after a burst of 5, ...), every answer 30 ms late (``latency``), the bot a
  member of the review and manager channels;
* the bot in 1 or 2 subprocesses (tests/support/worker_process.py ``--serve --rate-scale 1``: ``create_app``,
  outbox delivery and the APScheduler sweep, served by waitress), its outbox pacing itself to Slack's real rates.
  Configurations: 1 process on SQLite, 1 process on PostgreSQL, 2 processes on one PostgreSQL schema (requests
  alternate between them; both deliver the outbox, paced through the database).

Each configuration: UREVIEW1 is granted the reviewer role (``/contract admin grant``) and the double left to go
quiet; then 3 ``/contract file`` requests in a row (signed HTTP); phase 1 ends when every filing's first section
is visible (the parents and all 5 SCOPE questions of CR-1..CR-3 posted). Then one reviewer answers every question
of CR-1 as soon as it appears in the thread, pressing the button on the question's message (Yes, except No for the
red-flag sections CI and IU and for MIT-1, so the review runs through all 20 questions); phase 2 ends when every
answered question shows its answer and the double has been quiet for 3 s.

Figures, each with its target:

* the 429s the double answered, over the whole configuration (target 0);
* phase 1's time (from the first filing sent to the last SCOPE question visible) against the floor the limits
  set: the ``chat.postMessage`` calls to the review channel needed up to then ÷ 1 per second (target ≤ 1.2x);
* ``chat.update`` calls in phase 2 per answered question (target ≤ 1.5): each answer edits its question once;
  the parent's progress line should be coalesced.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, create_schema, drop_schema, loadavg, machine  # noqa: E402

from bot.domain.questions import QUESTIONS  # noqa: E402
from tests.support.slack_double import SlackDouble  # noqa: E402
from tests.support.slack_requests import SlackRequester  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "s"  # tests/support/worker_process.py's signing secret
REVIEW, MANAGER = "CREVIEW1", "CMANAGER1"
ADMIN, REVIEWER, MEMBER = "UADMIN1", "UREVIEW1", "UMEMBER1"
START = "2026-11-24T15:00:00+00:00"  # Tuesday 10:00 in New York, as tests/conftest.py
CONFIGS = {"sqlite": ("sqlite", 1), "postgresql": ("postgresql", 1), "postgresql-2": ("postgresql", 2)}
FILINGS = (
    'file vendor="Paragon Solutions" product=Graphite agency="ICE"',
    'file vendor="Intellexa" product=Predator agency="DEA"',
    'file vendor="NSO Group" product=Pegasus agency="FBI"',
)
NO_ANSWER = {"CI", "IU"}  # red-flag sections: "no" keeps the review going without flags
TARGET_429, TARGET_RATIO, TARGET_UPDATES = 0, 1.2, 1.5
QUIET = 3.0  # seconds without a Slack call that end phase 2
REF = re.compile(r"\bCR-(\d+)\b")


def answer_for(qid: str) -> str:
    section = qid.split("-")[0]
    return "no" if section in NO_ANSWER or qid == "MIT-1" else "yes"


# ---- the bot's processes and database ---------------------------------------------------------------------


class Bots:
    """``n`` worker processes (tests/support/worker_process.py --serve) on one database; SIGTERM on exit."""

    def __init__(self, backend: str, n: int, api_url: str, workdir: Path) -> None:
        self.backend, self.schema, self.procs, self.urls = backend, None, [], []
        self.workdir = workdir
        if backend == "sqlite":
            self.db = f"sqlite:///{workdir / 'bot.db'}"
        else:
            self.db = PG_URL
            self.schema = create_schema(PG_URL, "bench")
        for i in range(n):  # one after the other: the first one migrates the fresh database
            cmd = [PY, "-m", "tests.support.worker_process", "--db", self.db, "--api", api_url]
            cmd += ["--start", START, "--serve", "--rate-scale", "1"]
            if self.schema:
                cmd += ["--schema", self.schema]
            err = open(workdir / f"bot{i}.stderr", "w")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=err, text=True)
            self.procs.append((proc, err))
            line = proc.stdout.readline().split()
            if len(line) < 3 or line[0] != "ready":
                self.stop()
                raise RuntimeError(f"bot process {i} did not start: {self.stderr(i)[-2000:]}")
            self.urls.append(line[2])

    def stderr(self, i: int) -> str:
        return (self.workdir / f"bot{i}.stderr").read_text()

    def stop(self) -> None:
        for proc, _err in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, err in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            err.close()
        self.procs = []
        if self.schema:
            drop_schema(PG_URL, self.schema)
            self.schema = None


# ---- what the double shows -------------------------------------------------------------------------------


def parents(double: SlackDouble) -> dict[int, dict]:
    """CR-n -> its parent message in the review channel."""
    out: dict[int, dict] = {}
    for m in double.messages(REVIEW):
        if m.get("thread_ts") not in (None, m["ts"]):
            continue
        found = REF.search(m.get("text") or "")
        if found:
            out.setdefault(int(found.group(1)), m)
    return out


def questions(double: SlackDouble, ref: int, parent_ts: str) -> dict[str, dict]:
    """QID -> the question message in CR-ref's thread (a message with Yes/No buttons)."""
    out = {}
    for m in double.thread(REVIEW, parent_ts):
        head = (m.get("text") or "").split(":")[0]
        if head.startswith(f"CR-{ref} ") and any(b.get("type") == "actions" for b in m.get("blocks") or []):
            out[head.split(" ", 1)[1]] = m
    return out


def answered(message: dict) -> bool:
    return "Answer:" in str(message.get("blocks"))


def button(message: dict, answer: str) -> dict:
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for el in block.get("elements") or []:
                if el.get("action_id") == f"answer_{answer}":
                    return el
    raise RuntimeError(f"no answer_{answer} button on {message.get('text', '')[:60]!r}")


def posted_at(double: SlackDouble, ts: str) -> float:
    """When the message with this ts became visible: its chat.postMessage call, read, then answered late."""
    for c in double.calls("chat.postMessage"):
        if isinstance(c.response, dict) and c.response.get("ts") == ts:
            return c.at + double.latency
    raise RuntimeError(f"no chat.postMessage answered ts {ts}")


def wait_quiet(double: SlackDouble, quiet: float, bound: float) -> float:
    """Wait until the double has had no call for ``quiet`` seconds (at most ``bound``); the time of the last call."""
    deadline = time.monotonic() + bound
    while True:
        calls = double.calls()
        last = calls[-1].at if calls else 0.0
        if time.monotonic() - last >= quiet or time.monotonic() > deadline:
            return last
        time.sleep(0.2)


# ---- one configuration -----------------------------------------------------------------------------------


def run_config(name: str, args: argparse.Namespace, workdir: Path) -> dict:
    backend, nproc = CONFIGS[name]
    double = SlackDouble(rate_scale=1.0, invited=(REVIEW, MANAGER)).start()
    double.latency = args.latency
    bots = None
    try:
        bots = Bots(backend, nproc, double.api_url, workdir / name)
        rqs = [SlackRequester(u, SECRET, double=double, timeout=30) for u in bots.urls]
        r = rqs[0].command(f"admin grant <@{REVIEWER}|reviewer> reviewer", user_id=ADMIN, channel_id=REVIEW)
        if r.status != 200:
            raise RuntimeError(f"grant: HTTP {r.status} {r.body[:200]}")
        wait_quiet(double, 2.0, 30.0)

        # phase 1: 3 filings in a row, until every filing's SCOPE questions are visible
        n0 = len(double.calls())
        t0 = time.monotonic()
        for i, text in enumerate(FILINGS):
            r = rqs[i % nproc].command(text, user_id=MEMBER, channel_id=REVIEW)
            if r.status != 200 or "Filed" not in (r.json or {}).get("text", ""):
                raise RuntimeError(f"filing {i + 1}: HTTP {r.status} {r.body[:300]}")
        refs = range(1, len(FILINGS) + 1)
        scope = [q.qid for q in QUESTIONS if q.section == "SCOPE"]

        def first_sections_visible(d: SlackDouble) -> bool:
            ps = parents(d)
            return all(r in ps and set(scope) <= set(questions(d, r, ps[r]["ts"])) for r in refs)

        double.wait_for(first_sections_visible, timeout=args.max_seconds)
        ps = parents(double)
        needed = [ps[r]["ts"] for r in refs]
        needed += [m["ts"] for r in refs for q, m in questions(double, r, ps[r]["ts"]).items() if q in scope]
        visible = max(posted_at(double, ts) for ts in needed)
        phase1 = visible - t0
        posts = [
            c
            for c in double.calls("chat.postMessage")
            if c.at >= t0
            and c.at + double.latency <= visible + 1e-6
            and c.params.get("channel") == REVIEW
            and c.status == 200
            and isinstance(c.response, dict)
            and c.response.get("ok")
        ]
        floor = len(posts) / 1.0  # 1 post per second per channel
        phase1_calls = double.calls()[n0:]

        # phase 2: one reviewer answers every question of CR-1 as soon as it appears
        parent_ts = ps[1]["ts"]
        to_answer = [q.qid for q in QUESTIONS if not args.quick or q.section in ("SCOPE", "PROC")]
        n1 = len(double.calls())
        t1 = time.monotonic()
        pressed: dict[
            str, float
        ] = {}  # qid -> seconds from its message visible (or phase 2 start) to the press
        k = 0
        deadline = time.monotonic() + args.max_seconds
        while True:
            qs = questions(double, 1, parent_ts)
            for qid in [q for q in to_answer if q in qs and q not in pressed]:
                msg = qs[qid]
                el = button(msg, answer_for(qid))
                r = rqs[k % nproc].block_action(
                    user_id=REVIEWER,
                    action_id=el["action_id"],
                    value=el["value"],
                    message={"ts": msg["ts"], "channel": REVIEW, "thread_ts": parent_ts, "text": msg["text"]},
                    channel_id=REVIEW,
                )
                k += 1
                if r.status != 200:
                    raise RuntimeError(f"{qid}: HTTP {r.status} {r.body[:300]}")
                pressed[qid] = time.monotonic() - max(t1, posted_at(double, msg["ts"]))
            if len(pressed) == len(to_answer) and all(answered(qs[q]) for q in to_answer):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"phase 2 not done in {args.max_seconds:.0f} s: pressed {sorted(pressed)}\n{double.summary()}"
                )

            seen = len(double.calls())
            try:  # until the double is sent anything (a new question, an edit), at most 2 s
                double.wait_for(lambda d, seen=seen: len(d._calls) > seen, timeout=2.0)
            except AssertionError:
                pass
        all_shown = time.monotonic() - t1
        last = wait_quiet(double, QUIET, 60.0)
        phase2_calls = double.calls()[n1:]
        cr1 = {m["ts"] for m in double.thread(REVIEW, parent_ts)}
        updates = [c for c in phase2_calls if c.method == "chat.update" and c.status != 429]
        updates_cr1 = [c for c in updates if c.params.get("ts") in cr1]
        parent_edits = [round(c.at - t1, 1) for c in updates if c.params.get("ts") == parent_ts]
        limited = double.rate_limited()
        refusals = double.unexpected_refusals()

        def by_method(calls: list) -> dict[str, int]:
            out: dict[str, int] = {}
            for c in calls:
                out[c.method] = out.get(c.method, 0) + 1
            return dict(sorted(out.items()))

        return {
            "name": name,
            "processes": nproc,
            "backend": backend,
            "429": len(limited),
            "429_by": double.rate_limited_counts(),
            "phase1": phase1,
            "posts": len(posts),
            "floor": floor,
            "ratio": phase1 / floor,
            "phase1_calls": by_method(phase1_calls),
            "answered": len(pressed),
            "press_delay_max": max(pressed.values()),
            "all_shown": all_shown,
            "phase2_span": last - t1,
            "updates": len(updates),
            "updates_cr1": len(updates_cr1),
            "parent_edits": parent_edits,
            "per_answer": len(updates) / len(pressed),
            "phase2_calls": by_method(phase2_calls),
            "refusals": [f"{r.method} {r.error}: {r.detail[:120]}" for r in refusals],
            "warnings": [
                ln
                for i in range(nproc)
                for ln in bots.stderr(i).splitlines()
                if " WARNING " in ln or " ERROR " in ln
            ][:10],
        }
    finally:
        if bots is not None:
            bots.stop()
        double.stop()


def targets(r: dict) -> list[tuple[str, bool]]:
    return [
        (f"429s answered by the double: {r['429']} (target {TARGET_429})", r["429"] <= TARGET_429),
        (
            f"first sections visible in {r['phase1']:.2f} s for {r['posts']} posts = floor {r['floor']:.0f} s: "
            f"x{r['ratio']:.2f} (target <= {TARGET_RATIO})",
            r["ratio"] <= TARGET_RATIO,
        ),
        (
            f"chat.update per answered question: {r['updates']} / {r['answered']} = {r['per_answer']:.2f} "
            f"(target <= {TARGET_UPDATES})",
            r["per_answer"] <= TARGET_UPDATES,
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="the reviewer answers SCOPE and PROC only (9 questions)"
    )
    ap.add_argument(
        "--configs",
        default="sqlite,postgresql,postgresql-2",
        help="of sqlite, postgresql (1 process each) and postgresql-2 (2 processes on one schema)",
    )
    ap.add_argument("--latency", type=float, default=0.03, help="seconds the double takes to answer (0.03)")
    ap.add_argument("--max-seconds", type=float, default=180.0, help="bound per phase (default 180)")
    args = ap.parse_args()
    names = [c for c in args.configs.split(",") if c]
    if set(names) - set(CONFIGS):
        ap.error(f"--configs takes {', '.join(CONFIGS)}")
    started = time.monotonic()
    print(f"slack_limits: {machine()}")
    print(
        f"Slack double: rate limits at Slack's rates (x1), latency {args.latency * 1000:.0f} ms; bot pacing x1; "
        f"{len(FILINGS)} filings, then CR-1 answered ({'SCOPE and PROC' if args.quick else 'every question'})"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="slacklimits-") as tmp:
        for name in names:
            (Path(tmp) / name).mkdir()
            r = run_config(name, args, Path(tmp))
            results.append(r)
            print(f"\n[{name}: {r['processes']} process(es) on {r['backend']}]")
            print(
                f"  phase 1: {r['phase1']:.2f} s until the first sections were visible; {r['posts']} posts to the "
                f"review channel by then; Slack calls: {r['phase1_calls']}"
            )
            print(
                f"  phase 2: {r['answered']} questions answered (each at most {r['press_delay_max'] * 1000:.0f} ms after it appeared), all answers shown after {r['all_shown']:.1f} s, last Slack call after "
                f"{r['phase2_span']:.1f} s; chat.update {r['updates']} ({r['updates_cr1']} on CR-1's messages); "
                f"Slack calls: {r['phase2_calls']}"
            )
            print(f"  CR-1's parent (progress line) edited at {r['parent_edits']} s into phase 2")
            print(f"  429s by bucket: {r['429_by'] or 'none'}")
            if r["refusals"]:
                print(f"  refused payloads: {r['refusals']}")
            for ln in r["warnings"]:
                print(f"  bot log: {ln[:200]}")
            for text, met in targets(r):
                print(f"  {'met    ' if met else 'NOT met'}  {text}")
    print("\n== targets ==")
    print(
        f"  {'configuration':14} {'429s':>5} {'phase 1':>8} {'floor':>6} {'ratio':>6} {'updates/answer':>15}"
    )
    for r in results:
        print(
            f"  {r['name']:14} {r['429']:5d} {r['phase1']:7.2f}s {r['floor']:5.0f}s {r['ratio']:6.2f} "
            f"{r['per_answer']:15.2f}"
        )
        for text, met in targets(r):
            print(f"    {'met    ' if met else 'NOT met'}  {text}")
    print(f"\nend: {loadavg()}; {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
