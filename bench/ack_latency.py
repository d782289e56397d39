"""Request latency under concurrent load: contract-bot (commit, then answer) versus a bare Bolt app, in one run.

    python bench/ack_latency.py            # full: ~3-5 min on 2 cores
    python bench/ack_latency.py --quick    # smoke: ~30 s

Every /contract command, button and form of contract-bot is a Bolt listener (``process_before_response=True``)
that commits its work and then returns the HTTP 200 carrying the answer; past a 2 s deadline it answers that
nothing was recorded (bot/services/deadline.py). So the latency measured here is the latency of the work itself.

Layout (every socket is on 127.0.0.1):

* the Slack Web API double (tests/support/slack_double.py, with an O(1) message index and counters) in its own
  process, shared by every scenario;
* the server under test in its own process, fresh for each scenario, served by waitress with 64 threads exactly
  like tests/conftest.py ``serve_bot`` and ``contract-bot serve``:
    (a) ``sqlite``: ``create_app`` on a fresh SQLite file, pointed at the double, with outbox delivery and the
        APScheduler sweep running as in ``contract-bot serve``; UREVIEW1 granted the reviewer role and one
        contract filed per client (CR-1 ... CR-n) and delivered beforehand;
    (b) ``postgresql``: the same on a fresh schema of PG_URL, dropped afterwards;
    (c) ``bare``: a Bolt ``App`` configured as contract-bot configures Bolt (``process_before_response=True``,
        the same signing secret and listener pool) whose listeners only call ``ack()``, behind the same WSGI
        routing: what Bolt and waitress alone cost on this machine;
* closed-loop load clients (threads spread over ``--client-procs`` processes, so the clients' GIL is not the
  server's), each with one keep-alive HTTP connection, signing every request exactly as Slack does
  (tests/support/slack_requests.py). Client k cycles through four request kinds: ``/contract file ...``,
  ``/contract show CR-k``, a button on CR-k SCOPE-2 (``answer_yes`` and ``answer_no`` in turn, so that each
  click records a new answer), and a ``file_contract_modal`` submission. Latency is measured by the client, from
  sending the request to having read the whole response.

Scenarios: bare, sqlite and postgresql with 16 clients, then the same with 2 clients (an agency on a busy day).

An error is a non-200, an answer that does not carry the expected reply (a filing "Filed CR-", ``show`` its
contract, a form the "update" to its done view), or a failure answer: "nothing was recorded", "cannot confirm",
"Something went wrong". A button's answer is an empty 200 and whatever it has to say goes to its response_url
afterwards, so a button's failures are counted where the double receives them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    FAILURE_PHRASES,
    PY,
    ROOT,
    DoubleProcess,
    create_schema,
    drop_schema,
    loadavg,
    machine,
    new_response_urls,
    percentile,
    stop_child,
)

SECRET = "test-signing-secret"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REVIEW, MEMBER, REVIEWER, ADMIN = "CREVIEW1", "UMEMBER1", "UREVIEW1", "UADMIN1"
KINDS = ("file", "show", "button", "modal")
FILED = re.compile(r"Filed \*?CR-\d+")  # a filing's answer: "Filed *CR-17*: Paragon Solutions / ..."
BUTTON_QID = "SCOPE-2"  # not SCOPE-1: a No there would end the review (out of scope) on the first click
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
# p99 targets (seconds) by scenario; the ratio to bare Bolt is printed for information only.
TARGET_P99 = {("sqlite", "heavy"): 0.300, ("postgresql", "heavy"): 0.100, ("sqlite", "light"): 0.030}
TARGET_P99[("postgresql", "light")] = TARGET_P99[("sqlite", "light")]
TARGET_P99[("postgresql-2", "heavy")] = TARGET_P99[("postgresql", "heavy")]
TARGET_P99[("postgresql-2", "light")] = TARGET_P99[("postgresql", "light")]


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


# ==== servers (in a child process: `ack_latency.py _serve TARGET API_URL DB_PATH CLIENTS SEED`) ============


class _CountWarnings:
    """A logging handler counting contract-bot's WARNING-and-above records by their first line."""

    def __init__(self) -> None:
        import logging

        self.counts: dict[str, int] = {}
        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno < logging.WARNING or not record.name.startswith("contract_bot"):
                    return
                key = record.getMessage().splitlines()[0][:160]
                outer.counts[key] = outer.counts.get(key, 0) + 1

        self.handler = Handler()
        logging.getLogger().addHandler(self.handler)


class _DatabaseTimes:
    """Where contract-bot's threads spend their time in the database, by kind of thread (request-work, ...).

    * transactions: from the engine's "begin" (after contract-bot's own begin hook, so on SQLite once BEGIN
      IMMEDIATE has the write lock) to commit or rollback; on SQLite, how long the write lock was held;
    * lock waits: how long the statements that wait for a lock took: ``BEGIN IMMEDIATE`` (SQLite's write lock)
      and ``SELECT ... FOR UPDATE`` (PostgreSQL row locks, by table), with those that failed (timed out).
    """

    LOCKING = re.compile(r"^\s*BEGIN IMMEDIATE|FOR UPDATE", re.IGNORECASE)

    def __init__(self, engine) -> None:  # noqa: ANN001
        from sqlalchemy import event

        self.times: dict[str, list[float]] = {}
        self.failed: dict[str, int] = {}
        started: dict[int, float] = {}
        # These hooks run on every statement of the bot measured: what they work out is kept per thread name and
        # per statement text (SQLAlchemy hands the same cached string each time), so they add little to it.
        kinds: dict[str, str] = {}
        locking: dict[str, bool] = {}

        def thread_kind() -> str:
            name = threading.current_thread().name
            kind = kinds.get(name)
            if kind is None:
                kind = kinds[name] = re.sub(r"[_-]?\d+(_\d+)?$", "", name) or "?"
            return kind

        def label(statement: str) -> str:
            if statement.lstrip().upper().startswith("BEGIN"):
                return "BEGIN IMMEDIATE"
            table = re.search(r"\bFROM\s+(\w+)", statement, re.IGNORECASE)
            return f"SELECT {table.group(1) if table else '?'} FOR UPDATE"

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # noqa: ANN001
            started[id(conn)] = time.perf_counter()

        def _end(conn) -> None:  # noqa: ANN001
            t0 = started.pop(id(conn), None)
            if t0 is not None:
                self.times.setdefault(f"{thread_kind()}: transactions", []).append(time.perf_counter() - t0)

        event.listen(engine, "commit", _end)
        event.listen(engine, "rollback", _end)

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            found = locking.get(statement)
            if found is None:
                found = locking[statement] = bool(self.LOCKING.search(statement))
            if found:
                conn.info["bench_lock_t0"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
            t0 = conn.info.pop("bench_lock_t0", None)
            if t0 is not None:
                key = f"{thread_kind()}: {label(statement)} waits"
                self.times.setdefault(key, []).append(time.perf_counter() - t0)

        @event.listens_for(engine, "handle_error")
        def _error(ctx) -> None:  # noqa: ANN001
            conn = ctx.connection
            if conn is not None and conn.info.pop("bench_lock_t0", None) is not None:
                key = f"{thread_kind()}: {label(ctx.statement or '')} waits"
                self.failed[key] = self.failed.get(key, 0) + 1

    def summary(self) -> dict[str, str]:
        out = {}
        for name in sorted(set(self.times) | set(self.failed)):
            times = sorted(self.times.get(name, []))
            line = f"{len(times)}"
            if times:
                line += (
                    f", p50 {percentile(times, 50) * 1000:.1f} ms, p99 {percentile(times, 99) * 1000:.1f} ms, "
                    f"max {times[-1] * 1000:.1f} ms"
                )
            if self.failed.get(name):
                line += f", {self.failed[name]} failed"
            out[name] = line
        return out


def _serve_contract(
    api_url: str, db_path: str, backend: str, clients: int, seed: int, replica_of: str | None = None
) -> None:
    """contract-bot as ``contract-bot serve`` runs it; ``replica_of``: a second process on that PostgreSQL schema,
    which the first set up (it seeds nothing and drops nothing)."""
    from types import SimpleNamespace

    from sqlalchemy import text as sql

    from bot.app import create_app
    from storage.db import make_engine
    from tests.conftest import make_settings, serve_bot

    warnings = _CountWarnings()
    schema = None
    if replica_of:
        settings = make_settings(SimpleNamespace(api_url=api_url), PG_URL)
        bot = create_app(settings, engine=make_engine(PG_URL, schema=replica_of))
    elif backend == "postgresql":  # a fresh schema of PG_URL, dropped at the end
        schema = create_schema(PG_URL, "ackbench")
        settings = make_settings(SimpleNamespace(api_url=api_url), PG_URL)
        bot = create_app(settings, engine=make_engine(PG_URL, schema=schema))
    else:
        bot = create_app(make_settings(SimpleNamespace(api_url=api_url), f"sqlite:///{db_path}"))
    try:
        if replica_of:
            _serve_replica(bot, warnings)
            return
        bot.service.grant(ADMIN, REVIEWER, "reviewer")
        fields = {
            "vendor": "Paragon Solutions",
            "product": "Graphite",
            "agency": "ICE",
            "purpose": "operational",
        }
        for k in range(clients):  # CR-1 ... CR-n: client k shows and answers on CR-k
            bot.service.file_contract(MEMBER, dict(fields, product=f"Graphite-seed-{k}"))
        bot.dispatcher.deliver_due()
        if seed:  # a database that has been in use: more contracts, each with a pending reminder
            from datetime import UTC, datetime

            from _common import seed_contracts

            seed_contracts(bot.engine, seed, now=datetime.now(UTC), first_id=clients + 1)
        database = _DatabaseTimes(bot.engine)
        bot.start_background(scheduler=True)  # as `contract-bot serve`: outbox delivery + reminder sweep job
        url, stop = serve_bot(bot)
        from storage import repositories as repo
        from storage.db import read_only

        button_ts: dict[int, str] = {}
        for _ in range(600):  # a button acts only on its own question's message: wait until all are posted
            with read_only(bot.session_factory) as s:
                for k in range(1, clients + 1):
                    q = repo.get_question(s, k, BUTTON_QID)
                    if q is not None and q.message_ts:
                        button_ts[k] = q.message_ts
            if len(button_ts) == clients:
                break
            bot.dispatcher.deliver_due()
            time.sleep(0.1)
        print(
            json.dumps({"url": url, "pid": os.getpid(), "button_ts": button_ts, "schema": schema}), flush=True
        )
        try:
            sys.stdin.read()
        finally:
            stop()
            bot.followups.shutdown(wait=True)  # private replies still being posted go out before the count
            with bot.engine.connect() as conn:
                outbox = {
                    r[0]: r[1]
                    for r in conn.execute(sql("SELECT status, count(*) FROM outbox GROUP BY status"))
                }
                contracts = conn.execute(sql("SELECT count(*) FROM contract")).scalar_one()
            print(
                json.dumps(
                    {
                        "contracts": contracts,
                        "outbox": outbox,
                        "warnings": warnings.counts,
                        "database": database.summary(),
                    }
                ),
                file=sys.stderr,
                flush=True,
            )
    finally:
        bot.stop()
        if schema is not None:
            drop_schema(PG_URL, schema)


def _serve_replica(bot, warnings: _CountWarnings) -> None:  # noqa: ANN001
    """The second process: serves and delivers like the first (outbox and reminders are shared through the
    database), so a load balancer may send any request to either."""
    from tests.conftest import serve_bot

    bot.start_background(scheduler=True)
    url, stop = serve_bot(bot)
    print(json.dumps({"url": url, "pid": os.getpid()}), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
        bot.followups.shutdown(wait=True)
        print(json.dumps({"warnings": warnings.counts}), file=sys.stderr, flush=True)


def _serve_bare(api_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    from tests.conftest import serve_bot

    app = App(
        token="xoxb-test",
        signing_secret=SECRET,
        client=WebClient(token="xoxb-test", base_url=api_url),
        token_verification_enabled=False,
        process_before_response=True,  # as contract-bot configures Bolt
        listener_executor=ThreadPoolExecutor(
            max_workers=listener_threads(), thread_name_prefix="bolt-listener"
        ),
    )

    def only_ack(ack):  # noqa: ANN001, ANN202
        ack()

    app.command("/contract")(only_ack)
    app.action("answer_yes")(only_ack)
    app.action("answer_no")(only_ack)
    app.view("file_contract_modal")(only_ack)
    handler = SlackRequestHandler(app)

    def wsgi(environ, start_response):  # noqa: ANN001, ANN202 - the same routing as ContractBot.wsgi
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if path == "/slack/events":
            return handler(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    url, stop = serve_bot(SimpleNamespace(wsgi=wsgi))  # the very same waitress set-up as contract-bot's
    print(json.dumps({"url": url, "pid": os.getpid()}), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
        print(json.dumps({}), file=sys.stderr, flush=True)


# ==== clients ===============================================================================================


def _make_requester(base_url: str, response_urls: list[str]):  # noqa: ANN202
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
            return response_urls.pop()  # one per interaction, as Slack gives, registered with the double

        def raw(  # noqa: ANN201
            self,
            body,  # noqa: ANN001
            content_type="application/x-www-form-urlencoded",  # noqa: ANN001
            *,
            timestamp=None,  # noqa: ANN001
            signature=None,  # noqa: ANN001
            unsigned=False,  # noqa: ANN001
            headers=None,  # noqa: ANN001
            tamper=None,  # noqa: ANN001, ARG002
            path=None,  # noqa: ANN001
        ):
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


def _one(rq, kind: str, cid: int, i: int, button_ts: str | None = None):  # noqa: ANN001, ANN202
    """Client ``cid``'s ``i``-th request of ``kind``; it shows and answers on its own contract CR-(cid+1)."""
    contract = cid + 1
    if kind == "file":  # each filing its own product: an identical one would be asked "file anyway?"
        return rq.command(
            FILE_TEXT.replace("Graphite", f"Graphite-{cid}-{i}"), user_id=MEMBER, channel_id=REVIEW
        )
    if kind == "show":
        return rq.command(f"show CR-{contract}", user_id=MEMBER, channel_id=REVIEW)
    if kind == "button":
        return rq.block_action(
            user_id=REVIEWER,
            action_id="answer_yes" if (i // len(KINDS)) % 2 == 0 else "answer_no",
            value=f"{contract}:{BUTTON_QID}",
            message={"ts": button_ts or f"1700000000.{contract:06d}", "channel": REVIEW},
            channel_id=REVIEW,
        )
    state = dict(
        MODAL_STATE, product={"product": {"type": "plain_text_input", "value": f"Graphite-m{cid}-{i}"}}
    )
    return rq.view_submission(user_id=MEMBER, callback_id="file_contract_modal", state_values=state)


def _outcome(kind: str, bare: bool, resp, cid: int) -> str:  # noqa: ANN001
    """ "ok", "nothing recorded" (the truthful failure answer), or "error" (anything else unexpected)."""
    if resp.status != 200:
        return "error"
    if bare:
        return "ok"
    body = resp.body
    if FAILURE_PHRASES["nothing recorded"] in body:
        return "nothing recorded"
    if any(phrase in body for phrase in FAILURE_PHRASES.values()):
        return "error"
    if kind == "file":
        return "ok" if FILED.search(body) else "error"
    if kind == "show":
        return "ok" if f"*CR-{cid + 1}:" in body else "error"
    if kind == "modal":
        return "ok" if '"update"' in body and FILED.search(body) else "error"
    return "ok" if not body.strip() else "error"  # a button: an empty 200; its reply goes to its response_url


def _client_process(
    pidx: int,
    threads: int,
    first_client: int,
    per_client: int,
    warmup: int,
    base_urls: list[str],
    double_url: str,
    bare: bool,
    max_seconds: float,
    button_ts: dict,
    ready_q,  # noqa: ANN001
    go_event,  # noqa: ANN001
    result_q,  # noqa: ANN001
) -> None:
    sys.path.insert(0, str(ROOT))
    local_ready = threading.Barrier(threads + 1)
    local_go = threading.Event()
    results: list[list] = [[] for _ in range(threads)]
    samples: dict[str, str] = {}

    def client(t: int) -> None:
        cid = first_client + t
        ts = button_ts.get(str(cid + 1))  # the SCOPE-2 message of CR-(cid+1); JSON made the keys strings
        # with two bot processes, clients alternate between them, as a load balancer would spread them
        base_url = base_urls[cid % len(base_urls)]
        rq = _make_requester(base_url, new_response_urls(double_url, warmup + per_client + 1))
        try:
            for i in range(warmup):
                _one(rq, KINDS[(cid + i) % 4], cid, i, ts)
        finally:
            local_ready.wait()
        local_go.wait()
        deadline = time.monotonic() + max_seconds
        out = results[t]
        for i in range(warmup, warmup + per_client):
            if time.monotonic() > deadline:
                break
            kind_i = (cid + i) % 4
            t0 = time.monotonic()
            try:
                resp = _one(rq, KINDS[kind_i], cid, i, ts)
                outcome = _outcome(KINDS[kind_i], bare, resp, cid)
                samples.setdefault(f"{KINDS[kind_i]}:{outcome}", f"{resp.status} {resp.body[:160]}")
                lat = rq.last_latency
            except Exception as exc:  # noqa: BLE001
                outcome, lat = "error", time.monotonic() - t0
                samples.setdefault("exception", repr(exc)[:200])
            out.append((kind_i, t0, lat, outcome))

    ths = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(threads)]
    for th in ths:
        th.start()
    local_ready.wait()
    ready_q.put(pidx)
    go_event.wait()
    local_go.set()
    for th in ths:
        th.join()
    result_q.put((pidx, [r for part in results for r in part], samples))


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_scenario(target: str, clients: int, per_client: int, dbl: DoubleProcess, args, workdir: Path) -> dict:  # noqa: ANN001
    """Serve ``target`` (bare, sqlite, postgresql, or postgresql-2: two processes on one schema) in fresh processes
    and load it with ``clients`` clients."""
    name = f"{target}@{clients}"
    err_path = workdir / f"{name}.stderr"
    before = dbl.stats()
    backend = "postgresql" if target == "postgresql-2" else target
    servers: list[subprocess.Popen] = []

    def start(extra: list[str], err_to: Path) -> dict:
        with open(err_to, "w") as err:
            proc = subprocess.Popen(
                [
                    PY,
                    __file__,
                    "_serve",
                    backend,
                    dbl.api_url,
                    str(workdir / f"{name}.db"),
                    str(clients),
                    str(args.seed_contracts),
                    *extra,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=str(ROOT),
            )
        servers.append(proc)
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{name} server did not start: {err_to.read_text()[-2000:]}")
        return json.loads(line)

    try:
        info = start([], err_path)
        urls, pids = [info["url"]], [info["pid"]]
        if target == "postgresql-2":
            second = start([info["schema"]], workdir / f"{name}.second.stderr")
            urls.append(second["url"])
            pids.append(second["pid"])
        ctx = mp.get_context("fork")
        ready_q, result_q, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        n_procs = max(1, min(args.client_procs, clients))
        per_proc = [clients // n_procs + (1 if i < clients % n_procs else 0) for i in range(n_procs)]
        procs, first = [], 0
        for pidx, n in enumerate(per_proc):
            p = ctx.Process(
                target=_client_process,
                args=(
                    pidx,
                    n,
                    first,
                    per_client,
                    args.warmup,
                    urls,
                    dbl.base_url,
                    target == "bare",
                    args.max_seconds,
                    info.get("button_ts", {}),
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
        cpu0, wall0 = sum(_cpu_seconds(pid) for pid in pids), time.monotonic()
        go.set()
        rows, samples = [], {}
        for _ in procs:
            _, part, smp = result_q.get(timeout=args.max_seconds + 300)
            rows += part
            for k, v in smp.items():
                samples.setdefault(k, v)
        cpu1, wall1 = sum(_cpu_seconds(pid) for pid in pids), time.monotonic()
        for p in procs:
            p.join(timeout=30)
    finally:
        for proc in reversed(servers):  # the second first: the first drops the schema they share
            stop_child(proc, 120)
    after = dbl.stats()
    tail = [ln for ln in err_path.read_text().splitlines() if ln.startswith("{")]
    server = json.loads(tail[-1]) if tail else {"stderr": err_path.read_text()[-1500:]}
    # The private replies posted to response URLs during this scenario (only the buttons post there here).
    replies = {
        k: v - before["responses"].get(k, 0)
        for k, v in after["responses"].items()
        if v - before["responses"].get(k, 0)
    }
    api = {k: v - before["api"].get(k, 0) for k, v in after["api"].items() if v - before["api"].get(k, 0)}
    refused = {
        k: v - before["refused"].get(k, 0)
        for k, v in after["refused"].items()
        if v - before["refused"].get(k, 0)
    }
    if refused or after["rate_limited"] - before["rate_limited"]:
        api["(refused by the double)"] = refused
        api["(answered 429)"] = after["rate_limited"] - before["rate_limited"]
    if args.rows_out:
        with open(f"{args.rows_out}.{name}.json", "w") as f:
            json.dump([[KINDS[r[0]], r[1], r[2], r[3]] for r in rows], f)
    return summarize(target, clients, rows, samples, server, replies, api, cpu1 - cpu0, wall1 - wall0)


def summarize(
    target: str,
    clients: int,
    rows: list,
    samples: dict,
    server: dict,
    replies: dict,
    api: dict,
    cpu: float,
    wall: float,
) -> dict:
    def stats(sel: list) -> dict:
        lats = sorted(r[2] for r in sel)
        return {
            "n": len(sel),
            "p50": percentile(lats, 50),
            "p99": percentile(lats, 99),
            "max": lats[-1] if lats else float("nan"),
            "nothing": sum(1 for r in sel if r[3] == "nothing recorded"),
            "bad": sum(1 for r in sel if r[3] == "error"),
        }

    kinds = {k: stats([r for r in rows if r[0] == i]) for i, k in enumerate(KINDS)}
    # a button's failures reach the double's response URL, not the HTTP answer
    kinds["button"]["nothing"] += replies.get("nothing recorded", 0)
    kinds["button"]["bad"] += replies.get("could not confirm", 0) + replies.get("error ID", 0)
    total = stats(rows)
    total["nothing"] = sum(s["nothing"] for s in kinds.values())
    total["bad"] = sum(s["bad"] for s in kinds.values())
    span = (max(r[1] + r[2] for r in rows) - min(r[1] for r in rows)) if rows else float("nan")
    return {
        "target": target,
        "clients": clients,
        "all": total,
        "errors": total["bad"] + total["nothing"],
        "rps": len(rows) / span if span else float("nan"),
        "span": span,
        "kinds": kinds,
        "samples": samples,
        "server": server,
        "replies": replies,
        "api": api,
        "server_cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_req": cpu / len(rows) * 1000 if rows else float("nan"),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def print_result(r: dict, bare: dict | None) -> None:
    a = r["all"]
    print(
        f"\n[{r['target']}, {r['clients']} clients] {a['n']} requests in {r['span']:.1f} s = {r['rps']:.0f} req/s; "
        f"server CPU {r['server_cpu_s']:.1f} s ({r['cpu_ms_per_req']:.2f} ms/request)"
    )
    ratio_head = f" {'p99/bare':>8}" if bare else ""
    print(
        f"  {'kind':7} {'n':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} "
        f"{'nothing recorded':>16}{ratio_head}"
    )
    for k, s in [("ALL", a), *r["kinds"].items()]:
        ratio = ""
        if bare:
            b = bare["all"] if k == "ALL" else bare["kinds"][k]
            ratio = f" {'x' + format(s['p99'] / b['p99'], '.2f'):>8}"
        print(
            f"  {k:7} {s['n']:6d} {_ms(s['p50'])} {_ms(s['p99'])} {_ms(s['max'])} {s['bad']:6d} "
            f"{s['nothing']:16d}{ratio}"
        )
    server = dict(r["server"])
    database = server.pop("database", {})
    if server:
        print(f"  server after the load: {server}")
    for name, line in database.items():
        if not name.startswith(("MainThread", "ThreadPoolExecutor")):  # set-up, migrations
            print(f"  database, {name}: {line}")
    if r["target"] != "bare":
        print(f"  Slack API calls during the scenario: {r['api']}; response_url posts: {r['replies']}")
    for k, v in sorted(r["samples"].items()):
        if k.endswith(":ok"):
            continue
        print(f"  sample {k}: {v}")


def targets(results: dict, args) -> list[tuple[str, bool]]:  # noqa: ANN001
    """(description, met) for each target, from the scenarios that ran."""
    out = []
    for (target, clients), r in results.items():
        if target == "bare":
            continue
        load = "heavy" if clients == args.clients else "light"
        limit = TARGET_P99[(target, load)]
        p99 = r["all"]["p99"]
        out.append(
            (f"{target}, {clients} clients: p99 {p99 * 1000:.1f} ms < {limit * 1000:.0f} ms", p99 < limit)
        )
        errs = r["errors"]
        out.append(
            (
                f"{target}, {clients} clients: 0 errors ({r['all']['bad']} errors, "
                f"{r['all']['nothing']} 'nothing recorded')",
                errs == 0,
            )
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="a smoke run (~30 s) instead of the full run (~5 min)"
    )
    ap.add_argument("--clients", type=int, default=16, help="clients of the heavy scenarios (default 16)")
    ap.add_argument("--light-clients", type=int, default=2, help="clients of the light scenarios (default 2)")
    ap.add_argument(
        "--requests",
        type=int,
        default=None,
        help="measured requests per client with --clients (default 300, --quick 25)",
    )
    ap.add_argument(
        "--light-requests",
        type=int,
        default=None,
        help="measured requests per client with --light-clients (default 600, --quick 50)",
    )
    ap.add_argument("--warmup", type=int, default=8, help="unmeasured requests per client first (default 8)")
    ap.add_argument(
        "--client-procs", type=int, default=2, help="processes the client threads are spread over"
    )
    ap.add_argument(
        "--max-seconds", type=float, default=None, help="time bound per scenario (default 150, --quick 30)"
    )
    ap.add_argument(
        "--backends",
        default="sqlite,postgresql,postgresql-2",
        help=f"contract-bot's set-ups, of sqlite (a fresh file), postgresql (a fresh schema in {PG_URL}, "
        "dropped afterwards) and postgresql-2 (two bot processes on one fresh schema, the clients alternating "
        "between them as behind a load balancer); the bare Bolt app runs in every case",
    )
    ap.add_argument("--no-light", action="store_true", help="skip the scenarios with --light-clients")
    ap.add_argument(
        "--slack-rate-scale",
        type=float,
        default=0.0,
        help="the Slack double's rate limits: 0 (default) off, the double answers at once; N > 0 at N times "
        "Slack's rates (1 = Slack's own), so outbox delivery is throttled as it would be by Slack",
    )
    ap.add_argument(
        "--seed-contracts",
        type=int,
        default=0,
        help="contracts (with one pending reminder each) added to contract-bot's database first (default 0)",
    )
    ap.add_argument(
        "--rows-out",
        default=None,
        help="write every (kind, start, latency, outcome) to PREFIX.<scenario>.json",
    )
    args = ap.parse_args()
    args.requests = args.requests or (25 if args.quick else 300)
    args.light_requests = args.light_requests or (50 if args.quick else 600)
    args.max_seconds = args.max_seconds or (30.0 if args.quick else 150.0)
    backends = [b for b in args.backends.split(",") if b]
    if set(backends) - {"sqlite", "postgresql", "postgresql-2"}:
        ap.error("--backends takes sqlite, postgresql and postgresql-2")
    loads = [(args.clients, args.requests)] + (
        [] if args.no_light else [(args.light_clients, args.light_requests)]
    )
    started = time.monotonic()
    print(f"ack_latency: {machine()}")
    print(
        f"clients={args.clients} x {args.requests} requests, {args.light_clients} x {args.light_requests} "
        f"(after {args.warmup} warm-up requests each); client processes={args.client_procs}; waitress "
        f"threads={waitress_threads()}; Bolt listener threads={listener_threads()}; seeded contracts={args.seed_contracts}; "
        f"Slack rate limits: {f'x{args.slack_rate_scale:g}' if args.slack_rate_scale else 'off'}; "
        f"bound {args.max_seconds:.0f} s per scenario"
    )
    results: dict[tuple[str, int], dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="ackbench-") as tmp,
        DoubleProcess(n_response_urls=0, rate_scale=args.slack_rate_scale) as dbl,
    ):
        for clients, per_client in loads:
            for target in ["bare", *backends]:
                r = run_scenario(target, clients, per_client, dbl, args, Path(tmp))
                results[(target, clients)] = r
                print_result(r, None if target == "bare" else results[("bare", clients)])
    print(
        "\n== summary (latency in ms, measured by the clients; ratio = p99 / bare Bolt's p99, for information) =="
    )
    print(f"  {'scenario':22} {'kind':7} {'p50':>7} {'p99':>7} {'max':>7} {'errors':>6} {'ratio':>7}")
    for (target, clients), r in results.items():
        bare = results[("bare", clients)]
        for k, s in [("ALL", r["all"]), *r["kinds"].items()]:
            b = bare["all"] if k == "ALL" else bare["kinds"][k]
            errors = s["bad"] + s["nothing"]
            print(
                f"  {target + ', ' + str(clients) + ' clients':22} {k:7} {_ms(s['p50'])} {_ms(s['p99'])} "
                f"{_ms(s['max'])} {errors:6d} {'x' + format(s['p99'] / b['p99'], '.2f'):>7}"
            )
    print("\n== targets ==")
    for text, met in targets(results, args):
        print(f"  {'met    ' if met else 'NOT met'}  {text}")
    print(f"\nend: {loadavg()}; {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_serve":
        sys.path.insert(0, str(ROOT))
        import logging

        logging.basicConfig(level=logging.WARNING)
        target, api_url, db_path, n_clients, n_seed = sys.argv[2:7]
        if target == "bare":
            _serve_bare(api_url)
        else:
            replica_of = sys.argv[7] if len(sys.argv) > 7 else None
            _serve_contract(api_url, db_path, target, int(n_clients), int(n_seed), replica_of)
        sys.exit(0)
    sys.exit(main())
