"""Start-up time and peak memory of a fresh contract-bot process with 200,000 contracts already in the database.

    /work/venv/bin/python bench/startup_memory.py            # 200,000 contracts vs a 1-contract baseline
    /work/venv/bin/python bench/startup_memory.py --quick    # 20,000 contracts vs the baseline
    ... --backend postgresql                                 # the same on PostgreSQL (a fresh schema per database)

For each database (baseline: CR-1 only; big: N contracts, ids 1..N, each with one pending reminder due in
30 days), filled beforehand with SQLAlchemy core (a SQLite file, or with --backend postgresql a fresh schema
in PG_URL, dropped afterwards), a fresh child process does what ``contract-bot serve`` does, bound to
127.0.0.1: ``create_app(settings)`` (on PostgreSQL with ``engine=make_engine(url, schema=...)``, since the
settings carry only the URL), ``auth.test`` against the Slack
double (own process), ``start_background()`` (outbox delivery + the APScheduler sweep job, whose first run is
immediate), then waitress as in tests/conftest.py ``serve_bot``. This process measures, from the moment it
started the child: the time until ``GET /healthz`` answers 200, then until a signed ``/contract show CR-1``
answers with CR-1; and the child's RSS and peak RSS (VmHWM from /proc/<pid>/status) right after, and again
after ``--settle`` seconds (first sweep done). The child also reports its own phase times and RSS.
"""

from __future__ import annotations

import time

T_IMPORT = time.monotonic()  # the child's phases are measured from here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PY,
    ROOT,
    DoubleProcess,
    create_schema,
    drop_schema,
    loadavg,
    machine,
    peak_rss_mb,
    proc_status_mb,
    seed_contracts,
    stop_child,
)

SECRET = "test-signing-secret"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime.now(UTC)


def _child_serve(url: str, api_url: str, schema: str | None = None) -> None:
    """The server process (mirrors bot/serve.py `serve`, but on 127.0.0.1 and an ephemeral port).

    ``schema`` (PostgreSQL only): create_app builds its engine from ``settings.database_url``, which has no
    schema, so the engine is built here with ``make_engine(url, schema=schema)`` and passed in, as
    sweep_scaling.py does. On SQLite create_app builds its own engine, as `serve` does.
    """
    from types import SimpleNamespace

    phases = {}
    rss = {"start": peak_rss_mb()}
    from bot.app import create_app
    from storage.db import make_engine
    from tests.conftest import make_settings, serve_bot

    phases["imports"] = time.monotonic() - T_IMPORT
    rss["imports"] = peak_rss_mb()
    engine = make_engine(url, schema=schema) if schema else None
    bot = create_app(make_settings(SimpleNamespace(api_url=api_url), url), engine=engine)
    phases["create_app"] = time.monotonic() - T_IMPORT
    rss["create_app"] = peak_rss_mb()
    bot.client.auth_test()
    bot.start_background()  # delivery loop + APScheduler sweep job (first run at once), as `serve`
    phases["background"] = time.monotonic() - T_IMPORT
    url, stop = serve_bot(bot)
    phases["listening"] = time.monotonic() - T_IMPORT
    rss["listening"] = peak_rss_mb()
    print(json.dumps({"url": url, "pid": os.getpid(), "phases": phases, "peak_rss_mb": rss}), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()
        bot.stop()


def _get(url: str, timeout: float = 5.0) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def measure(url: str, schema: str | None, dbl: DoubleProcess, settle: float, bound: float) -> dict:
    from tests.support.slack_requests import SlackRequester

    t0 = time.monotonic()
    proc = subprocess.Popen(
        [PY, __file__, "_serve", url, dbl.api_url, *([schema] if schema else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server did not start: {proc.stderr.read()[-3000:]}")
        t_listening = time.monotonic() - t0
        info = json.loads(line)
        url = info["url"]
        while _get(url + "/healthz") != 200:
            if time.monotonic() - t0 > bound:
                raise RuntimeError("healthz never answered 200")
            time.sleep(0.005)
        t_health = time.monotonic() - t0
        req = SlackRequester(url, SECRET, timeout=30)
        req._response_url = lambda channel, message_ts=None, user=None: dbl.response_urls[0]  # noqa: ARG005
        r = req.command("show CR-1", user_id="UMEMBER1", channel_id="CREVIEW1")
        t_show = time.monotonic() - t0
        ok = r.status == 200 and "CR-1" in r.body
        mem_first = proc_status_mb(info["pid"])
        # a second show, warm
        t = time.monotonic()
        req.command("show CR-1", user_id="UMEMBER1", channel_id="CREVIEW1")
        t_show2 = time.monotonic() - t
        time.sleep(settle)
        mem_settled = proc_status_mb(info["pid"])
    finally:
        stop_child(proc, 30)
    return {
        "to_listening_s": t_listening,
        "to_healthz_s": t_health,
        "to_show_s": t_show,
        "show_ok": ok,
        "show_body": r.body[:120],
        "second_show_s": t_show2,
        "child_phases": info["phases"],
        "child_peak_rss_mb": info["peak_rss_mb"],
        "rss_after_show_mb": mem_first.get("VmRSS"),
        "peak_after_show_mb": mem_first.get("VmHWM"),
        "rss_settled_mb": mem_settled.get("VmRSS"),
        "peak_settled_mb": mem_settled.get("VmHWM"),
    }


@contextlib.contextmanager
def _database(backend: str, path: Path):  # noqa: ANN202
    """Yield (url, schema, size_mb) of a fresh, empty database: a SQLite file, or a PostgreSQL schema that is
    dropped on exit. ``size_mb()`` is the file's size, or the schema's tables with their indexes and TOAST."""
    if backend == "sqlite":
        yield f"sqlite:///{path}", None, lambda: path.stat().st_size / 2**20
        return
    from sqlalchemy import create_engine, text

    schema = create_schema(PG_URL, "bench")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")  # for the schema's size

    def size_mb() -> float:
        with admin.connect() as conn:
            return (
                conn.execute(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r'"
                    ),
                    {"s": schema},
                ).scalar()
                / 2**20
            )

    try:
        yield PG_URL, schema, size_mb
    finally:
        admin.dispose()
        drop_schema(PG_URL, schema)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--contracts", type=int, default=None)
    ap.add_argument(
        "--repeat", type=int, default=3, help="start each server this many times (best and median shown)"
    )
    ap.add_argument(
        "--settle", type=float, default=3.0, help="seconds to wait after the first show for a 2nd sample"
    )
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after seeding (production never does; PostgreSQL is always analyzed)",
    )
    ap.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help=f"sqlite: a file per database; postgresql: a fresh schema per database in {PG_URL}, dropped "
        "afterwards",
    )
    a = ap.parse_args()
    big = a.contracts or (20_000 if a.quick else 200_000)
    print(f"startup_memory: {machine()}")
    print(
        f"backend={a.backend}; ANALYZE after seeding: "
        f"{'yes' if a.analyze or a.backend == 'postgresql' else 'no (as in production)'}"
    )
    from storage.db import make_engine, migrate

    results = {}
    with tempfile.TemporaryDirectory(prefix="startbench-") as tmp, DoubleProcess(n_response_urls=1) as dbl:
        for name, n in (("baseline", 1), ("big", big)):
            with _database(a.backend, Path(tmp) / f"{name}.db") as (url, schema, size_mb):
                engine = make_engine(url, schema=schema)
                migrate(engine)
                seeded = seed_contracts(engine, n, now=NOW, due=0, analyze=a.analyze)
                engine.dispose()
                runs = [measure(url, schema, dbl, a.settle, a.max_seconds) for _ in range(a.repeat)]
                db_mb = size_mb()
            results[name] = runs
            print(
                f"\n[{name}: {n} contracts, {a.backend} db {db_mb:.1f} MiB, seeded in {seeded['seconds']:.1f} s]"
                f" {a.repeat} fresh starts"
            )
            for i, r in enumerate(runs):
                ph = r["child_phases"]
                print(
                    f"  run {i + 1}: listening {r['to_listening_s']:.2f} s, /healthz 200 at {r['to_healthz_s']:.2f} s, "
                    f"show CR-1 at {r['to_show_s']:.2f} s ({'ok' if r['show_ok'] else 'BAD: ' + r['show_body']}), "
                    f"warm show {r['second_show_s'] * 1000:.0f} ms | child: imports {ph['imports']:.2f} s, "
                    f"create_app {ph['create_app']:.2f} s, listening {ph['listening']:.2f} s"
                )
                print(
                    f"         RSS {r['rss_after_show_mb']:.0f} MiB (peak {r['peak_after_show_mb']:.0f}) after the first "
                    f"show; RSS {r['rss_settled_mb']:.0f} MiB (peak {r['peak_settled_mb']:.0f}) {a.settle:.0f} s later"
                )
    print("\n== big / baseline (median of runs) ==")

    def med(name: str, key: str) -> float:
        vals = sorted(r[key] for r in results[name])
        return vals[len(vals) // 2]

    for key, unit in (
        ("to_healthz_s", "s"),
        ("to_show_s", "s"),
        ("second_show_s", "s"),
        ("peak_after_show_mb", "MiB"),
        ("peak_settled_mb", "MiB"),
    ):
        b, s = med("big", key), med("baseline", key)
        print(f"  {key:20}: {b:8.3f} {unit} / {s:8.3f} {unit} = x{b / s:.2f}")
    print(f"\nend: {loadavg()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_serve":
        sys.path.insert(0, str(ROOT))
        import logging

        logging.basicConfig(level=logging.WARNING)
        _child_serve(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
        sys.exit(0)
    sys.exit(main())
