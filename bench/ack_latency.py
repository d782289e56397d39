"""Ack latency under concurrent load: contract-bot versus a bare Bolt app that only acks, in the same run.

    /work/venv/bin/python bench/ack_latency.py            # full: 16 clients x 2,000 requests per target
    /work/venv/bin/python bench/ack_latency.py --quick    # smoke: 16 clients x 100 requests per target

Layout (every socket is on 127.0.0.1):

* the Slack Web API double (tests/support/slack_double.py, with an O(1) message index) in its own process;
* the server under test in its own process, served by waitress with 64 threads exactly like
  tests/conftest.py ``serve_bot`` and ``contract-bot serve``:
    (a) contract-bot: ``create_app`` on a fresh SQLite file, pointed at the double, the inbox worker, outbox
        delivery and the APScheduler sweep running as in ``contract-bot serve``; CR-1 filed beforehand and
        UREVIEW1 granted the reviewer role with ``bot.service.grant``. After the load it reports how much
        acknowledged work was still queued and how long carrying it out took;
    (b) ``bare``: a Bolt ``App`` with Bolt's defaults (same signing secret, same 64-thread listener
        executor) whose listeners only call ``ack()``, behind the same WSGI routing;
    (c) ``bare-sync``: the same with ``process_before_response=True``, as contract-bot configures Bolt (no
        10 ms ack poll): the floor of what Bolt itself costs;
* 16 load clients (threads spread over ``--client-procs`` processes, so the clients' GIL is not the
  server's), each with one keep-alive HTTP connection, signing every request exactly as Slack does
  (tests/support/slack_requests.py). Each client cycles through the four request kinds:
  ``/contract file ...``, ``/contract show CR-1``, an ``answer_yes`` button on CR-1 SCOPE-1, and a
  ``file_contract_modal`` view submission. Latency is measured by the client, from sending the request to
  having read the whole response. Closed loop: each client sends its next request when the previous is done.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, DoubleProcess, fmt_ms, loadavg, machine, percentile  # noqa: E402

SECRET = "test-signing-secret"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REVIEW, MEMBER, REVIEWER, ADMIN = "CREVIEW1", "UMEMBER1", "UREVIEW1", "UADMIN1"
KINDS = ("file", "show", "button", "modal")
FILE_TEXT = (
    'file vendor="Paragon Solutions" product=Graphite agency="ICE" component="HSI Division 3" '
    "value=2000000 awarded=2024-09-27 purpose=operational"
)
MODAL_STATE = {
    "vendor": {"vendor": {"type": "plain_text_input", "value": "Paragon Solutions"}},
    "product": {"product": {"type": "plain_text_input", "value": "Graphite"}},
    "agency": {"agency": {"type": "plain_text_input", "value": "ICE"}},
    "value": {"value": {"type": "plain_text_input", "value": "2000000"}},
    "purpose": {
        "purpose": {
            "type": "static_select",
            "selected_option": {
                "text": {"type": "plain_text", "text": "operational"},
                "value": "operational",
            },
        }
    },
}


def listener_threads() -> int:
    """create_app's default Bolt listener pool size (the bare app gets the same)."""
    import inspect

    from bot.app import create_app

    return inspect.signature(create_app).parameters["listener_threads"].default


def waitress_threads() -> int:
    """The thread count tests/conftest.py serve_bot gives waitress (both servers are served by it)."""
    import re

    from tests import conftest

    m = re.search(r"threads=(\d+)", Path(conftest.__file__).read_text())
    return int(m.group(1)) if m else -1


# ==== servers (run in a child process: `ack_latency.py _serve contract|bare API_URL DB_PATH`) ================


def _serve_contract(
    api_url: str,
    db_path: str,
    seed: int = 0,
    drain: bool = True,
    backend: str = "sqlite",
    journal: str = "auto",
) -> None:
    import uuid
    from types import SimpleNamespace

    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    from bot.app import create_app
    from storage.db import make_engine
    from tests.conftest import make_settings, serve_bot

    journal_setting = {"auto": None, "off": "off", "on": f"{db_path}.journal"}[journal]
    schema = None
    if backend == "postgresql":  # a fresh schema of PG_URL, dropped at the end
        schema = f"ackbench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sql(f'CREATE SCHEMA "{schema}"'))
        settings = make_settings(SimpleNamespace(api_url=api_url), PG_URL, inbox_journal_dir=journal_setting)
        bot = create_app(settings, engine=make_engine(PG_URL, schema=schema))
    else:
        settings = make_settings(
            SimpleNamespace(api_url=api_url), f"sqlite:///{db_path}", inbox_journal_dir=journal_setting
        )
        bot = create_app(settings)
    bot.service.grant(ADMIN, REVIEWER, "reviewer")
    bot.service.file_contract(
        MEMBER,
        {"vendor": "Paragon Solutions", "product": "Graphite", "agency": "ICE", "purpose": "operational"},
    )
    bot.dispatcher.deliver_due()
    if seed:  # a database that has been in use: more contracts (CR-2 ...), each with a pending reminder
        from datetime import UTC, datetime

        from _common import seed_contracts

        seed_contracts(bot.engine, seed, now=datetime.now(UTC), first_id=2)
    q = bot.service.show(1).question("SCOPE-1")
    bot.start_background(scheduler=True)  # as `contract-bot serve`: outbox delivery + reminder sweep job
    url, stop = serve_bot(bot)
    print(json.dumps({"url": url, "q_ts": q.message_ts, "pid": os.getpid()}), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
        from sqlalchemy import text

        # The load is over: how much acknowledged work was still queued, and how long it takes to carry it out.
        queued_at_end, t0 = bot.inbox.backlog(), time.monotonic()
        while drain and bot.inbox.backlog() and time.monotonic() - t0 < 900:
            time.sleep(0.05)
        drain = time.monotonic() - t0
        with bot.engine.connect() as conn:
            stats = {
                r[0]: r[1] for r in conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
            }
            contracts = conn.execute(text("SELECT count(*) FROM contract")).scalar_one()
        with bot.inbox_engine.connect() as conn:  # on SQLite the inbox is a file of its own
            inbox_left = conn.execute(text("SELECT count(*) FROM inbox")).scalar_one()
        bot.stop()
        print(
            json.dumps(
                {
                    "contracts": contracts,
                    "outbox": stats,
                    "inbox_queued_at_end": queued_at_end,
                    "inbox_drain_s": round(drain, 1),
                    "inbox_rows_left": inbox_left,
                    "backend": backend,
                    "journal": bot.inbox.journal is not None,
                }
            ),
            file=sys.stderr,
            flush=True,
        )
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(sql(f'DROP SCHEMA "{schema}" CASCADE'))


def _serve_bare(api_url: str, process_before_response: bool = False) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    app = App(
        token="xoxb-test",
        signing_secret=SECRET,
        client=WebClient(token="xoxb-test", base_url=api_url),
        token_verification_enabled=False,
        process_before_response=process_before_response,
        listener_executor=ThreadPoolExecutor(
            max_workers=listener_threads(), thread_name_prefix="bolt-listener"
        ),
    )

    @app.command("/contract")
    def _cmd(ack):  # noqa: ANN001
        ack()

    @app.action("answer_yes")
    def _btn(ack):  # noqa: ANN001
        ack()

    @app.view("file_contract_modal")
    def _modal(ack):  # noqa: ANN001
        ack()

    handler = SlackRequestHandler(app)

    def wsgi(environ, start_response):  # noqa: ANN001 - same routing as ContractBot.wsgi
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/slack/events":
            return handler(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    from types import SimpleNamespace

    from tests.conftest import serve_bot

    url, stop = serve_bot(SimpleNamespace(wsgi=wsgi))  # the very same waitress set-up as contract-bot's
    print(json.dumps({"url": url, "q_ts": "1700000000.000100", "pid": os.getpid()}), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
        print(json.dumps({}), file=sys.stderr, flush=True)


# ==== clients ===============================================================================================


def _make_requester(base_url: str, response_url: str):  # noqa: ANN202
    from tests.support.slack_requests import SlackRequester, SlackResponse

    class KeepAliveRequester(SlackRequester):
        """SlackRequester (same payloads, same signing) over one persistent HTTP/1.1 connection, timed."""

        def __init__(self) -> None:
            super().__init__(base_url, SECRET, timeout=30.0)
            u = urlsplit(base_url)
            self._host, self._port = u.hostname, u.port
            self._conn: http.client.HTTPConnection | None = None
            self.last_latency = 0.0

        def _response_url(self, channel, message_ts=None, user=None):  # noqa: ANN001, ANN202
            return response_url  # registered with the double (a response_url stays valid for many posts)

        def raw(
            self,
            body,
            content_type="application/x-www-form-urlencoded",
            *,
            timestamp=None,
            signature=None,  # noqa: ANN001
            unsigned=False,
            headers=None,
            tamper=None,
            path=None,
        ):  # noqa: ANN001
            data = body.encode("utf-8") if isinstance(body, str) else body
            hdrs = {
                "Content-Type": content_type,
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            }
            if not unsigned:
                hdrs.update(self.signed_headers(data, timestamp=timestamp, signature=signature))
            if headers:
                hdrs.update(headers)
            started = time.perf_counter()
            for attempt in range(2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
                try:
                    self._conn.request("POST", path or self.path, body=data, headers=hdrs)
                    resp = self._conn.getresponse()
                    raw_body = resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt:
                        raise
            self.last_latency = time.perf_counter() - started
            if resp.getheader("Connection", "").lower() == "close":
                self._conn.close()
                self._conn = None
            return SlackResponse(resp.status, {}, raw_body.decode("utf-8", "replace"), None)

    return KeepAliveRequester()


def _one(rq, kind: str, q_ts: str):  # noqa: ANN001, ANN202
    if kind == "file":
        return rq.command(FILE_TEXT, user_id=MEMBER, channel_id=REVIEW)
    if kind == "show":
        return rq.command("show CR-1", user_id=MEMBER, channel_id=REVIEW)
    if kind == "button":
        return rq.block_action(
            user_id=REVIEWER,
            action_id="answer_yes",
            value="1:SCOPE-1",
            message={"ts": q_ts, "channel": REVIEW},
            channel_id=REVIEW,
        )
    return rq.view_submission(user_id=MEMBER, callback_id="file_contract_modal", state_values=MODAL_STATE)


def _outcome(kind: str, target: str, resp) -> str:  # noqa: ANN001
    """ "ok"; "deferred" (acked with "working on it / filing…": the answer follows later); "error"."""
    if resp.status != 200:
        return "error"
    if target.startswith("bare"):
        return "ok"
    body = resp.body
    if "Something went wrong" in body:
        return "error"
    if "hourglass_flowing_sand" in body:
        return "deferred"
    if kind in ("file", "show"):
        return "ok" if "CR-" in body else "error"
    if kind == "modal":
        return "ok" if '"update"' in body else "error"
    return "ok"


def _client_process(
    pidx: int,
    threads: int,
    first_client: int,
    per_client: int,
    warmup: int,
    base_url: str,
    response_urls: list[str],
    q_ts: str,
    target: str,
    max_seconds: float,
    ready_q,
    go_event,
    result_q,
) -> None:
    sys.path.insert(0, str(ROOT))
    local_ready = threading.Barrier(threads + 1)
    local_go = threading.Event()
    results: list[list] = [None] * threads  # type: ignore[list-item]
    samples: dict[str, str] = {}

    def client(t: int) -> None:
        cid = first_client + t
        rq = _make_requester(base_url, response_urls[cid % len(response_urls)])
        try:
            for i in range(warmup):
                _one(rq, KINDS[(cid + i) % 4], q_ts)
        finally:
            local_ready.wait()
        local_go.wait()
        deadline = time.monotonic() + max_seconds
        out = []
        for i in range(per_client):
            if time.monotonic() > deadline:
                break
            kind_i = (cid + i) % 4
            t0 = time.monotonic()
            try:
                resp = _one(rq, KINDS[kind_i], q_ts)
                ok = _outcome(KINDS[kind_i], target, resp)
                status = resp.status
                samples.setdefault(f"{KINDS[kind_i]}:{ok}", f"{status} {resp.body[:150]}")
                lat = rq.last_latency
            except Exception as exc:  # noqa: BLE001
                ok, status, lat = "error", -1, time.monotonic() - t0
                samples.setdefault("exception", repr(exc)[:200])
            out.append((kind_i, t0, lat, status, ok))
        results[t] = out

    ths = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(threads)]
    for th in ths:
        th.start()
    local_ready.wait()
    ready_q.put(pidx)
    go_event.wait()
    local_go.set()
    for th in ths:
        th.join()
    result_q.put((pidx, [r for part in results if part for r in part], samples))


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_target(target: str, dbl: DoubleProcess, args, workdir: Path) -> dict:  # noqa: ANN001
    db = workdir / f"{target}.db"
    err_path = workdir / f"{target}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [
                PY,
                __file__,
                "_serve",
                target,
                dbl.api_url,
                str(db),
                str(args.seed_contracts),
                "no-drain" if args.no_drain else "drain",
                args.backend,
                args.journal,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=str(ROOT),
        )
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{target} server did not start: {err_path.read_text()[-2000:]}")
        info = json.loads(line)
        ctx = mp.get_context("fork")
        ready_q, result_q, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs, per_proc = (
            [],
            [
                args.clients // args.client_procs + (1 if i < args.clients % args.client_procs else 0)
                for i in range(args.client_procs)
            ],
        )
        first = 0
        for pidx, n in enumerate(per_proc):
            p = ctx.Process(
                target=_client_process,
                args=(
                    pidx,
                    n,
                    first,
                    args.requests,
                    args.warmup,
                    info["url"],
                    dbl.response_urls,
                    info["q_ts"],
                    target,
                    args.max_seconds,
                    ready_q,
                    go,
                    result_q,
                ),
                daemon=True,
            )
            p.start()
            procs.append(p)
            first += n
        for _ in procs:
            ready_q.get(timeout=300)
        cpu0, wall0 = _cpu_seconds(info["pid"]), time.monotonic()
        go.set()
        rows, samples = [], {}
        for _ in procs:
            _, part, smp = result_q.get(timeout=args.max_seconds + 600)
            rows += part
            for k, v in smp.items():
                samples.setdefault(k, v)
        cpu1, wall1 = _cpu_seconds(info["pid"]), time.monotonic()
        for p in procs:
            p.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(
                    timeout=1000
                )  # contract-bot first carries out what it acknowledged (bounded at 900 s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    tail = [ln for ln in err_path.read_text().splitlines() if ln.startswith("{")]
    server_stats = json.loads(tail[-1]) if tail else {}
    if args.rows_out:
        with open(f"{args.rows_out}.{target}.json", "w") as f:
            json.dump([[KINDS[r[0]], r[1], r[2], r[3], r[4]] for r in rows], f)
    return summarize(target, rows, samples, server_stats, cpu1 - cpu0, wall1 - wall0)


def summarize(target: str, rows: list, samples: dict, server_stats: dict, cpu: float, wall: float) -> dict:
    def stats(sel: list) -> dict:
        lats = sorted(r[2] for r in sel)
        return {
            "n": len(sel),
            "p50": percentile(lats, 50),
            "p99": percentile(lats, 99),
            "max": lats[-1] if lats else float("nan"),
            "deferred": sum(1 for r in sel if r[4] == "deferred"),
            "bad": sum(1 for r in sel if r[4] == "error"),
        }

    span = (max(r[1] + r[2] for r in rows) - min(r[1] for r in rows)) if rows else float("nan")
    out = {
        "target": target,
        "all": stats(rows),
        "rps": len(rows) / span if span else float("nan"),
        "span": span,
        "kinds": {k: stats([r for r in rows if r[0] == i]) for i, k in enumerate(KINDS)},
        "samples": samples,
        "server": server_stats,
        "server_cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_req": cpu / len(rows) * 1000 if rows else float("nan"),
    }
    return out


def print_result(r: dict) -> None:
    a = r["all"]
    print(
        f"\n[{r['target']}] {a['n']} requests in {r['span']:.1f} s = {r['rps']:.0f} req/s; "
        f"errors={a['bad']} deferred={a['deferred']}; server CPU {r['server_cpu_s']:.1f} s ({r['cpu_ms_per_req']:.2f} ms/request)"
    )
    print(f"  {'kind':8} {'n':>6} {'p50':>11} {'p99':>11} {'max':>11} {'errors':>6} {'deferred':>8}")
    for k, s in [("ALL", a), *r["kinds"].items()]:
        print(
            f"  {k:8} {s['n']:6d} {fmt_ms(s['p50'])} {fmt_ms(s['p99'])} {fmt_ms(s['max'])} {s['bad']:6d} "
            f"{s['deferred']:8d}"
        )
    if r["server"]:
        print(f"  server after the run: {r['server']}")
    for k, v in sorted(r["samples"].items()):
        print(f"  sample {k}: {v}")


def compare(contract: dict, bare: dict, name: str) -> None:
    """Print contract-bot's figures over a baseline's, overall and per request kind, with the targets."""
    b, c = bare["all"], contract["all"]
    print(f"\n== contract-bot / {name} ==")
    for key in ("p50", "p99", "max"):
        print(f"  {key:4}: {c[key] * 1000:8.1f} ms / {b[key] * 1000:8.1f} ms = x{c[key] / b[key]:.2f}")
    print(f"  req/s: {contract['rps']:8.0f} / {bare['rps']:8.0f} = x{contract['rps'] / bare['rps']:.2f}")
    ratio = c["p99"] / b["p99"]
    print(f"  p99 ratio <= 1.5: {'YES' if ratio <= 1.5 else 'NO'} (x{ratio:.2f})")
    print(f"  contract-bot p99 < 100 ms: {'YES' if c['p99'] < 0.1 else 'NO'} ({c['p99'] * 1000:.1f} ms)")
    worst = 0.0
    for kind in KINDS:
        kc, kb = contract["kinds"][kind], bare["kinds"][kind]
        kr = kc["p99"] / kb["p99"]
        worst = max(worst, kr)
        print(f"  {kind:6} p99: {kc['p99'] * 1000:6.1f} ms / {kb['p99'] * 1000:6.1f} ms = x{kr:.2f}")
    print(f"  p99 ratio <= 1.5 for every kind: {'YES' if worst <= 1.5 else 'NO'} (worst x{worst:.2f})")
    print(
        f"  errors: contract-bot {c['bad']}, {name} {b['bad']}; contract-bot acks that said 'working on it' "
        f"(recorded, answer follows through response_url or a DM): {c['deferred']}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 requests per client instead of 2,000")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument(
        "--client-procs", type=int, default=2, help="processes the client threads are spread over"
    )
    ap.add_argument(
        "--requests", type=int, default=None, help="requests per client (default 2000, --quick 100)"
    )
    ap.add_argument("--warmup", type=int, default=8, help="unmeasured requests per client first")
    ap.add_argument(
        "--max-seconds", type=float, default=None, help="per-target time bound (default 900, quick 120)"
    )
    ap.add_argument(
        "--targets",
        default="bare,contract",
        help="of bare (Bolt's defaults), bare-sync (process_before_response=True, as contract-bot "
        "runs Bolt) and contract",
    )
    ap.add_argument(
        "--seed-contracts",
        type=int,
        default=0,
        help="contracts (with one pending reminder each) already in contract-bot's database (default 0)",
    )
    ap.add_argument(
        "--no-drain",
        action="store_true",
        help="do not wait for contract-bot to carry out its backlog after the load (it stays in the "
        "inbox; for quick experiments on the acknowledgement path only)",
    )
    ap.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help=f"contract-bot's database: a SQLite file, or a fresh schema in {PG_URL} (dropped afterwards)",
    )
    ap.add_argument(
        "--journal",
        choices=("auto", "on", "off"),
        default="auto",
        help="contract-bot's request journal: as deployed (on beside SQLite, off on PostgreSQL), on, off",
    )
    ap.add_argument(
        "--rows-out",
        default=None,
        help="write every (kind, start, latency, status, ok) to PREFIX.<target>.json",
    )
    args = ap.parse_args()
    args.requests = args.requests or (100 if args.quick else 2000)
    args.max_seconds = args.max_seconds or (120.0 if args.quick else 900.0)
    print(f"ack_latency: {machine()}")
    print(
        f"clients={args.clients} (over {args.client_procs} processes) requests/client={args.requests} "
        f"warmup/client={args.warmup} waitress threads={waitress_threads()} "
        f"Bolt listener threads={listener_threads()} contracts pre-seeded={args.seed_contracts} backend={args.backend} journal={args.journal} bound={args.max_seconds:.0f} s/target"
    )
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="ackbench-") as tmp,
        DoubleProcess(n_response_urls=args.clients) as dbl,
    ):
        for target in args.targets.split(","):
            results[target] = run_target(target, dbl, args, Path(tmp))
            print_result(results[target])
    for base in ("bare", "bare-sync"):
        if base in results and "contract" in results:
            compare(results["contract"], results[base], base)
    print(f"\nend: {loadavg()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_serve":
        sys.path.insert(0, str(ROOT))
        import logging

        logging.basicConfig(level=logging.WARNING)
        if sys.argv[2] == "contract":
            extra = sys.argv[5:] + ["0", "drain", "sqlite", "auto"][len(sys.argv) - 5 :]
            _serve_contract(
                sys.argv[3],
                sys.argv[4],
                int(extra[0]),
                drain=extra[1] != "no-drain",
                backend=extra[2],
                journal=extra[3],
            )
        else:  # "bare": Bolt's defaults; "bare-sync": process_before_response=True, as contract-bot runs it
            _serve_bare(sys.argv[3], process_before_response=sys.argv[2] == "bare-sync")
        sys.exit(0)
    sys.exit(main())
