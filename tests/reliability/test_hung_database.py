"""A database that stops answering: every request is still answered within Slack's 3 s, truthfully, nothing is
half-written, and the bot recovers by itself when the database comes back.

* PostgreSQL: a TCP proxy (tests/support/tcp_proxy.py) sits between the bot and the server. Hung, it holds every
  byte and closes nothing, as a server or network that stops answering does (no error, no reset: the bot's reads
  simply never return). Filings, a modal filing and a button press sent at once are each answered HTTP 200 within
  3 s saying nothing was recorded (the button privately, through its response_url), and /healthz answers 503.
  Resumed, /healthz turns 200 and new requests succeed by themselves; the work that was stuck in the bot's
  threads, which reaches its commit only after the resume, rolls back: no filing, answer or audit entry from the
  hung period exists, and the audit chain is intact.
* PostgreSQL, the one uncertain case: the proxy hangs right after forwarding a COMMIT, so the server commits but
  its answer never arrives. The filer is told "cannot confirm", never "nothing was recorded", and the filing
  exists exactly once.
* PostgreSQL, slow: the proxy delays every chunk (at two paces), so the bot's work goes on past the deadline
  and reaches its commit after the user was answered. Every request (a filing, a form filing, a note form, a
  button) is answered within 3 s, and every answer is true once the work has ended: "Filed CR-n" exists, "nothing
  was recorded" does not (the late work rolled back), a saved note is saved, a refused button press is not.
* SQLite: another connection holds the write lock (BEGIN IMMEDIATE). A filing form and a note form are answered
  within 3 s with the form kept open (``response_action: errors``, or a view pushed on top of it) saying nothing
  was recorded; /healthz is 503.
  Released: /healthz is 200, nothing was written, and resubmitting the same forms files once and saves the note.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bot.app import ContractBot, create_app
from bot.clock import ManualClock
from storage.db import make_engine, session_factory, unit_of_work
from storage.repositories import verify_audit_chain
from tests.conftest import (
    ADMIN,
    DB_PARAMS,
    MANAGER,
    OFFICIAL,
    REVIEW,
    REVIEWER,
    SECRET,
    START,
    audit_keys,
    make_settings,
    serve_bot,
)
from tests.reliability.support import file_form_state, note_form_state, reply_text
from tests.support.slack_double import SlackDouble
from tests.support.slack_requests import SlackRequester, SlackResponse, healthz
from tests.support.tcp_proxy import TcpProxy

SQLITE, POSTGRESQL = DB_PARAMS
SLACK_DEADLINE = 3.0  # Slack shows the user an error when the 200 takes longer
HEALTH_DEADLINE = 2.0  # /healthz gives up on the database after 1.5 s
RECOVERY = 10.0  # how long the bot may take to work again once the database answers (it takes well under 1 s)
NOTHING = "nothing was recorded"
UNCONFIRMED = "cannot confirm"


# ---- plumbing ---------------------------------------------------------------------------------------------------


@dataclass
class Proxied:
    """The real app, served over HTTP, talking to PostgreSQL through a proxy that can hang."""

    bot: ContractBot
    slack: SlackRequester
    double: SlackDouble
    proxy: TcpProxy
    url: str
    direct: Engine  # straight to PostgreSQL (not through the proxy), to look at what was written
    app_name: str  # the bot's connections' application_name, to find them in pg_stat_activity


@contextlib.contextmanager
def proxied_bot(
    database: tuple[str, str | None], double: SlackDouble, *, background: bool
) -> Iterator[Proxied]:
    """The bot (roles granted as in conftest ``running``) on ``database`` through a fresh proxy."""
    url, schema = database
    target = make_url(url)
    app_name = f"hung_{uuid.uuid4().hex[:8]}"
    direct = make_engine(url, schema=schema)
    with TcpProxy((target.host or "127.0.0.1", target.port or 5432)) as proxy:
        proxied = (
            make_url(proxy.rewrite(url))
            .update_query_dict({"application_name": app_name})
            .render_as_string(hide_password=False)
        )
        bot = create_app(
            make_settings(double, proxied),
            engine=make_engine(proxied, schema=schema),
            clock=ManualClock(START),
        )
        stop = None
        try:
            for user, role in ((REVIEWER, "reviewer"), (MANAGER, "manager"), (OFFICIAL, "official")):
                bot.service.grant(ADMIN, user, role)
            if background:
                bot.start_background(scheduler=False)
            base, stop = serve_bot(bot)
            yield Proxied(
                bot, SlackRequester(base, SECRET, double=double), double, proxy, base, direct, app_name
            )
        finally:
            proxy.latency = 0
            proxy.resume()  # let whatever is stuck finish, so that the bot stops promptly
            if stop is not None:
                stop()
            bot.stop()
            direct.dispose()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(what ``fn()`` returned, how long it took in seconds)."""
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


def at_once(calls: dict[str, Callable[[], Any]]) -> dict[str, tuple[Any, float]]:
    """Run every call at the same moment, each in its own thread; {name: (result, seconds)}."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(timed, fn) for name, fn in calls.items()}
        return {name: f.result() for name, f in futures.items()}


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` s, naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout} s (last: {last!r})")


def state(engine: Engine) -> dict[str, Any]:
    """Row counts that a request must not move unless it says it did, and the audit chain's health (the outbox is
    left out: delivery moves it in the background)."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in (
            "contract",
            "question",
            "assignment",
            "role_grant",
            "reminder",
            "audit_entry",
            "seen_request",
        ):
            out[table] = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
        out["answered"] = conn.execute(
            text("SELECT COUNT(*) FROM question WHERE answer IS NOT NULL")
        ).scalar_one()
        out["noted"] = conn.execute(text("SELECT COUNT(*) FROM question WHERE note IS NOT NULL")).scalar_one()
        out["audit"] = dict(
            conn.execute(text("SELECT action, COUNT(*) FROM audit_entry GROUP BY action")).all()
        )
    with unit_of_work(session_factory(engine)) as s:
        _, broken, why = verify_audit_chain(s, audit_keys(str(engine.url)))
    out["chain"] = "intact" if broken is None else f"broken at seq {broken.seq}: {why}"
    return out


def vendors(engine: Engine, like: str) -> dict[str, list[int]]:
    """{vendor: [contract ids]} of contracts whose vendor is LIKE ``like``."""
    out: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for vendor, cid in conn.execute(
            text("SELECT vendor, id FROM contract WHERE vendor LIKE :v ORDER BY id"), {"v": like}
        ):
            out.setdefault(vendor, []).append(cid)
    return out


def consistent(engine: Engine) -> None:
    """Every contract has exactly one ``file`` audit entry naming it, and every audited filing exists; every
    recorded answer and note has its audit entry; the hash chain is intact."""
    with engine.connect() as conn:
        contracts = set(conn.execute(text("SELECT id FROM contract")).scalars())
        filed = (
            conn.execute(text("SELECT contract_id FROM audit_entry WHERE action = 'file' AND outcome = 'ok'"))
            .scalars()
            .all()
        )
        answered = conn.execute(text("SELECT COUNT(*) FROM question WHERE answer IS NOT NULL")).scalar_one()
        answer_entries = conn.execute(
            text("SELECT COUNT(*) FROM audit_entry WHERE action = 'answer' AND outcome = 'ok'")
        ).scalar_one()
        noted = conn.execute(text("SELECT COUNT(*) FROM question WHERE note IS NOT NULL")).scalar_one()
        note_entries = conn.execute(
            text("SELECT COUNT(*) FROM audit_entry WHERE action = 'note'")
        ).scalar_one()
    assert sorted(filed) == sorted(contracts), (
        f"contracts {sorted(contracts)} vs 'file' audit entries {sorted(filed)}"
    )
    assert answer_entries >= answered, f"{answered} answers recorded, {answer_entries} audited"
    assert note_entries >= noted, f"{noted} notes recorded, {note_entries} audited"
    with unit_of_work(session_factory(engine)) as s:
        _, broken, why = verify_audit_chain(s, audit_keys(str(engine.url)))
    assert broken is None, f"audit chain broken at seq {broken.seq}: {why}"


def in_flight(p: Proxied) -> int:
    """The bot's connections with a statement running or a transaction open (seen from PostgreSQL directly)."""
    with p.direct.connect() as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = :a "
                "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
            ),
            {"a": p.app_name},
        ).scalar_one()


def wait_quiet(p: Proxied, quiet: float = 0.5, timeout: float = 15.0) -> None:
    """Poll until none of the bot's connections has had work in flight for ``quiet`` s: the work that was stuck
    during the hang has reached its end (commit or rollback)."""
    deadline = time.monotonic() + timeout
    since = None
    while time.monotonic() < deadline:
        if in_flight(p) == 0:
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet:
                return
        else:
            since = None
        time.sleep(0.05)
    raise AssertionError(f"the bot still had {in_flight(p)} transactions open {timeout} s after the resume")


def command_text(r: SlackResponse) -> str:
    """The words of a command's answer."""
    return (r.json or {}).get("text") or r.body


def file_command(
    slack: SlackRequester, vendor: str, user: str, response_url: str | None = None
) -> SlackResponse:
    """``/contract file`` of one contract named by its vendor."""
    return slack.command(
        f'file vendor="{vendor}" product=Graphite agency=ICE',
        user_id=user,
        channel_id=REVIEW,
        response_url=response_url,
    )


def file_form(slack: SlackRequester, vendor: str, user: str, view_id: str) -> SlackResponse:
    """The filing modal submitted (``view_id`` is the form: submitting it again is the same form)."""
    return slack.view_submission(
        user_id=user,
        callback_id="file_contract_modal",
        view_id=view_id,
        state_values=file_form_state(vendor=vendor, product="Graphite", agency="ICE", purpose="operational"),
    )


def note_form(slack: SlackRequester, contract_id: int, qid: str, note: str, view_id: str) -> SlackResponse:
    """The note modal of a question submitted by the reviewer."""
    return slack.view_submission(
        user_id=REVIEWER,
        callback_id="add_note_modal",
        view_id=view_id,
        state_values=note_form_state(note),
        private_metadata=json.dumps({"contract_id": contract_id, "qid": qid}),
    )


def question_message(slack: SlackRequester, value: str, wait: float = 0.0) -> dict | None:
    """The question's message as the outbox posted it (its buttons are pressed there), waiting up to ``wait`` s."""
    cid, qid = value.split(":")
    deadline = time.monotonic() + wait
    while True:
        shown = [m for m in slack.double.messages(REVIEW) if m.get("text", "").startswith(f"CR-{cid} {qid}:")]
        if shown:
            return {"ts": shown[0]["ts"], "channel": REVIEW}
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def press(slack: SlackRequester, action_id: str, value: str, response_url: str) -> SlackResponse:
    """A question's answer button pressed by the reviewer, on the question's message (a button acts only there)."""
    return slack.block_action(
        user_id=REVIEWER,
        action_id=action_id,
        value=value,
        channel_id=REVIEW,
        response_url=response_url,
        message=question_message(slack, value),
    )


def kept_open_saying(r: SlackResponse, field: str) -> str:
    """What a refused form submission tells the user, asserting that the form stays open with what was typed:
    ``errors`` on the form's field, or a view pushed on top of it (closing it shows the form again). Never
    ``update`` (it would replace the form) and never an empty answer (it would close it)."""
    body = r.json or {}
    action = body.get("response_action")
    assert r.status == 200 and action in ("errors", "push"), (
        f"the form was not kept open: {r.status} {r.body[:300]}"
    )
    if action == "errors":
        return str(body["errors"][field])
    return reply_text(body["view"])


def untruthful(answer: str) -> bool:
    """False when an answer given while the database did not answer says nothing was, or might have been, recorded."""
    return NOTHING not in answer and UNCONFIRMED not in answer


# ---- PostgreSQL: the server stops answering ----------------------------------------------------------------------

HUNG_FILINGS = 6


@pytest.mark.parametrize("database", [POSTGRESQL], indirect=True)
def test_postgresql_that_stops_answering_gets_truthful_answers_in_time_and_recovers(database, double):
    with proxied_bot(database, double, background=True) as p:
        # Before: one contract to press buttons on, and a pool with connections in it (warmed by a few at once).
        first = file_command(p.slack, "Before The Hang", "UFILER0")
        assert first.status == 200 and "Filed *CR-1*" in command_text(first), first.body
        warm = at_once({f"show{i}": lambda: p.slack.command("show CR-1", user_id=REVIEWER) for i in range(4)})
        assert all(r.status == 200 for r, _ in warm.values())
        before = state(p.direct)
        assert before["chain"] == "intact", before
        assert question_message(p.slack, "1:SCOPE-1", wait=10) and question_message(
            p.slack, "1:SCOPE-2", wait=10
        )

        p.proxy.hang()
        button_url = double.new_response_url(channel=REVIEW, user=REVIEWER)
        calls: dict[str, Callable[[], Any]] = {
            f"filing {i}": (lambda i=i: file_command(p.slack, f"Hung Vendor {i}", f"UHUNG{i}"))
            for i in range(HUNG_FILINGS)
        }
        calls["form"] = lambda: file_form(p.slack, "Hung Form Vendor", "UHUNGFORM", "VHUNGFORM")
        calls["button"] = lambda: press(p.slack, "answer_no", "1:SCOPE-1", button_url)
        calls["healthz"] = lambda: healthz(p.url, timeout=10)
        results = at_once(calls)

        status, took = results.pop("healthz")
        assert status[0] == 503 and took < HEALTH_DEADLINE + 0.5, (
            f"/healthz while hung: {status} in {took:.2f} s"
        )
        slow = {k: round(t, 2) for k, (_, t) in results.items() if t >= SLACK_DEADLINE}
        assert not slow, f"answered after Slack's {SLACK_DEADLINE} s: {slow}"
        assert all(r.status == 200 for r, _ in results.values()), {
            k: r.status for k, (r, _) in results.items()
        }
        answers = {k: command_text(r) for k, (r, _) in results.items() if k.startswith("filing")}
        assert not {k: a for k, a in answers.items() if untruthful(a)}, answers
        form = kept_open_saying(results["form"][0], "vendor")
        assert NOTHING in form, form
        button = results["button"][0]
        assert not button.body, button.body  # a button's acknowledgement shows nothing; the reply is private
        replies = poll(lambda: double.responses(button_url), 5, "the button's private reply")
        assert len(replies) == 1 and NOTHING in replies[0]["body"]["text"], replies
        unsure = {k for k, a in answers.items() if UNCONFIRMED in a}
        assert p.proxy.hung, "the proxy resumed by itself"
        # Nothing reached the database while it was hung (PostgreSQL itself is fine: read it directly).
        assert state(p.direct) == before

        p.proxy.resume()
        resumed = time.monotonic()
        poll(lambda: healthz(p.url)[0] == 200, RECOVERY, "/healthz did not turn 200 after the resume")
        after = file_command(p.slack, "After The Hang", "UFILER1")
        assert after.status == 200 and "Filed *CR-" in command_text(after), after.body
        pressed_url = double.new_response_url(channel=REVIEW, user=REVIEWER)
        again = press(p.slack, "answer_yes", "1:SCOPE-2", pressed_url)
        assert again.status == 200 and not again.body, again.body
        recovered = time.monotonic() - resumed
        wait_quiet(p)  # the work stuck in the bot's threads during the hang has ended by now

        # What the hung period left: nothing (a filing answered "cannot confirm" may exist, once).
        hung = vendors(p.direct, "Hung%")
        assert set(hung) <= {f"Hung Vendor {k.split()[1]}" for k in unsure}, f"filed though told not: {hung}"
        assert all(len(ids) == 1 for ids in hung.values()), hung
        assert len(vendors(p.direct, "After The Hang").get("After The Hang", [])) == 1
        with p.direct.connect() as conn:
            scope = dict(
                conn.execute(
                    text(
                        "SELECT qid, answer FROM question WHERE contract_id = 1 AND qid IN ('SCOPE-1', 'SCOPE-2')"
                    )
                ).all()
            )
            pressed = conn.execute(
                text("SELECT COUNT(*) FROM audit_entry WHERE action = 'answer' AND after LIKE '%SCOPE-1%'")
            ).scalar_one()
        assert scope == {"SCOPE-1": None, "SCOPE-2": "yes"}, scope
        assert pressed == 0, "the button pressed during the hang was audited"
        final = state(p.direct)
        assert final["contract"] == before["contract"] + 1 + len(hung), (before, final)
        assert final["audit"].get("file", 0) == before["audit"].get("file", 0) + 1 + len(hung), (
            before,
            final,
        )
        assert final["audit"].get("answer", 0) == before["audit"].get("answer", 0) + 1, (before, final)
        assert final["answered"] == before["answered"] + 1, (before, final)
        consistent(p.direct)
        print(
            f"\nhung PostgreSQL: {len(results)} requests answered in at most "
            f"{max(t for _, t in results.values()):.2f} s ({len(unsure)} 'cannot confirm'), /healthz 503 in "
            f"{took:.2f} s; working again {recovered:.2f} s after the resume; proxy connections {p.proxy.accepted}"
        )


@pytest.mark.parametrize("database", [POSTGRESQL], indirect=True)
def test_postgresql_hanging_after_a_commit_is_sent_is_answered_cannot_confirm(database, double):
    # No background work: the only COMMIT on the wire is the filing's own.
    with proxied_bot(database, double, background=False) as p:
        first = file_command(p.slack, "Before The Hang", "UFILER0")
        assert first.status == 200 and "Filed *CR-1*" in command_text(first), first.body
        before = state(p.direct)

        p.proxy.hang_after(b"COMMIT\x00")  # PostgreSQL's simple-query COMMIT, as psycopg sends it
        r, took = timed(lambda: file_command(p.slack, "Unconfirmed Vendor", "UFILER1"))
        assert p.proxy.hung_by_marker.is_set(), "the filing's COMMIT never went through the proxy"
        assert r.status == 200 and took < SLACK_DEADLINE, (r.status, took)
        answer = command_text(r)
        # The server committed; the bot could not know: it must not say "nothing was recorded", nor "Filed".
        assert UNCONFIRMED in answer and NOTHING not in answer, answer
        assert vendors(p.direct, "Unconfirmed Vendor") == {"Unconfirmed Vendor": [2]}

        p.proxy.resume()
        poll(lambda: healthz(p.url)[0] == 200, RECOVERY, "/healthz did not turn 200 after the resume")
        after = file_command(p.slack, "After The Hang", "UFILER2")
        assert after.status == 200 and "Filed *CR-3*" in command_text(after), after.body
        wait_quiet(p)
        assert vendors(p.direct, "Unconfirmed Vendor") == {"Unconfirmed Vendor": [2]}
        final = state(p.direct)
        assert final["contract"] == before["contract"] + 2, (before, final)
        assert final["audit"]["file"] == before["audit"]["file"] + 2, (before, final)
        consistent(p.direct)


# ---- PostgreSQL: a slow database (answers, late) ---------------------------------------------------------------

# Seconds added to every chunk each way. A request's work that needs k round trips takes about 2 * k * latency; the
# two values make any piece of work of 2 to 7 round trips take between 1 and 2 s at one of them, where a request
# that waited for two pieces of work one after the other (each given the whole deadline) would answer late.
SLOW_LATENCIES = (0.13, 0.3)


@pytest.mark.parametrize("database", [POSTGRESQL], indirect=True)
def test_postgresql_that_answers_slowly_gets_every_request_answered_in_time_and_truthfully(database, double):
    with proxied_bot(database, double, background=False) as p:
        first = file_command(p.slack, "Before The Slowness", "UFILER0")
        assert first.status == 200 and "Filed *CR-1*" in command_text(first), first.body
        p.bot.dispatcher.deliver_due()  # the questions' messages, whose buttons are pressed below
        warm = at_once({f"show{i}": lambda: p.slack.command("show CR-1", user_id=REVIEWER) for i in range(4)})
        assert all(r.status == 200 for r, _ in warm.values())
        report = []
        for n, latency in enumerate(SLOW_LATENCIES):
            p.proxy.latency = latency
            button_url = double.new_response_url(channel=REVIEW, user=REVIEWER)
            qid = f"SCOPE-{n + 1}"
            results = at_once(
                {
                    "command": lambda n=n: file_command(p.slack, f"Slow Command {n}", "UFILER1"),
                    "form": lambda n=n: file_form(p.slack, f"Slow Form {n}", "UFILER2", f"VSLOWFILE{n}"),
                    "note": lambda n=n, qid=qid: note_form(
                        p.slack, 1, qid, f"slow note {n}", f"VSLOWNOTE{n}"
                    ),
                    "button": lambda qid=qid, url=button_url: press(p.slack, "answer_yes", f"1:{qid}", url),
                }
            )
            p.proxy.latency = 0  # what the bot still has in hand goes at once now: its end is not waited for
            took = {k: round(t, 2) for k, (_, t) in results.items()}
            report.append(f"latency {latency} s: {took}")
            assert all(r.status == 200 for r, _ in results.values()), {
                k: r.body for k, (r, _) in results.items()
            }
            assert max(took.values()) < SLACK_DEADLINE, f"answered after Slack's {SLACK_DEADLINE} s: {report}"
            wait_quiet(p)

            # each answer is true of what the database holds once the bot's work has ended
            command = command_text(results["command"][0])
            filed = vendors(p.direct, f"Slow Command {n}").get(f"Slow Command {n}", [])
            if command.startswith("Filed"):
                assert [f"Filed *CR-{cid}*" in command for cid in filed] == [True], (command, filed)
            else:
                assert NOTHING in command and not filed or UNCONFIRMED in command and len(filed) <= 1, (
                    command,
                    filed,
                )
            form = results["form"][0]
            filed = vendors(p.direct, f"Slow Form {n}").get(f"Slow Form {n}", [])
            if (form.json or {}).get("response_action") == "update":
                assert "Filed" in reply_text(form.json["view"]) and len(filed) == 1, (form.body, filed)
            else:
                said = kept_open_saying(form, "vendor")
                assert NOTHING in said and not filed or UNCONFIRMED in said and len(filed) <= 1, (said, filed)
            with p.direct.connect() as conn:
                note, answer = conn.execute(
                    text("SELECT note, answer FROM question WHERE contract_id = 1 AND qid = :q"), {"q": qid}
                ).one()
            noted = results["note"][0]
            if not noted.body:  # saved: the form closed
                assert note == f"slow note {n}", note
            else:
                said = kept_open_saying(noted, "note")
                assert NOTHING in said and note is None or UNCONFIRMED in said, (said, note)
            if answer is None:  # refused: the presser is told privately, once
                poll(lambda url=button_url: double.responses(url), 5, "the button's private reply")
            replies = [r["body"].get("text", "") for r in double.responses(button_url)]
            if answer is None:
                assert len(replies) == 1 and NOTHING in replies[0], (replies, answer)
            else:
                assert answer == "yes" and not any(NOTHING in r for r in replies), (replies, answer)
        consistent(p.direct)
        print("\nslow PostgreSQL: " + "; ".join(report))


# ---- SQLite: another connection holds the write lock ---------------------------------------------------------------


@contextlib.contextmanager
def sqlite_write_lock(url: str) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock from another connection (a stuck writer) for the block."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.mark.real_deadline  # about the deadline: the forms are answered within it while the database is locked
@pytest.mark.parametrize("database", [SQLITE], indirect=True)
def test_sqlite_locked_forms_stay_open_saying_nothing_was_recorded_and_file_once_when_resubmitted(
    running, database
):
    url, _ = database
    first = running.command('file vendor="Before The Lock" product=Graphite agency=ICE', user="UFILER0")
    assert first.status == 200 and "Filed *CR-1*" in first.json["text"], first.body
    before = state(running.bot.engine)

    with sqlite_write_lock(url):
        results = at_once(
            {
                "file form": lambda: file_form(running.slack, "Locked Vendor", "UFILER1", "VLOCKEDFILE"),
                "note form": lambda: note_form(
                    running.slack, 1, "SCOPE-1", "evidence: memo 9", "VLOCKEDNOTE"
                ),
                "healthz": lambda: healthz(running.url, timeout=10),
            }
        )
        (health, health_took) = results.pop("healthz")
        assert health[0] == 503 and health_took < HEALTH_DEADLINE + 0.5, (health, health_took)
        slow = {k: round(t, 2) for k, (_, t) in results.items() if t >= SLACK_DEADLINE}
        assert not slow, f"answered after Slack's {SLACK_DEADLINE} s: {slow}"
        filed, noted = results["file form"][0], results["note form"][0]
        assert filed.status == 200 and noted.status == 200, (filed.body, noted.body)
        # the forms stay open, with what was typed, saying nothing was recorded
        assert NOTHING in kept_open_saying(filed, "vendor"), filed.body
        assert NOTHING in kept_open_saying(noted, "note"), noted.body

    poll(
        lambda: healthz(running.url)[0] == 200,
        RECOVERY,
        "/healthz did not turn 200 once the lock was released",
    )
    assert state(running.bot.engine) == before, "something was written while the database was locked"
    assert not vendors(running.bot.engine, "Locked Vendor")

    # The user submits the same forms again: the filing is made once (even submitted twice), the note saved.
    again = [file_form(running.slack, "Locked Vendor", "UFILER1", "VLOCKEDFILE") for _ in range(2)]
    assert all(r.status == 200 and r.json and r.json["response_action"] == "update" for r in again), [
        r.body for r in again
    ]
    assert "Filed *CR-2*" in json.dumps(again[0].json), again[0].json
    assert "CR-2 was already filed from this form" in json.dumps(again[1].json), again[1].json
    saved = note_form(running.slack, 1, "SCOPE-1", "evidence: memo 9", "VLOCKEDNOTE")
    assert saved.status == 200 and not saved.body, saved.body  # saved: the form closes
    assert vendors(running.bot.engine, "Locked Vendor") == {"Locked Vendor": [2]}
    assert running.bot.service.show(1).question("SCOPE-1").note == "evidence: memo 9"
    final = state(running.bot.engine)
    assert final["contract"] == before["contract"] + 1 and final["noted"] == before["noted"] + 1, (
        before,
        final,
    )
    assert final["audit"]["file"] == before["audit"]["file"] + 1, (before, final)
    assert final["audit"].get("note", 0) == before["audit"].get("note", 0) + 1, (before, final)
    consistent(running.bot.engine)
