"""The request path: the answer comes with the acknowledgement, after the commit; forms open on their own trigger
once, never retried; one log line per request and one warning per refused signature, never a secret."""

from __future__ import annotations

import logging
import time

from handlers.ids import ActionId
from tests.conftest import MEMBER, REVIEW, REVIEWER, SECRET
from tests.support.slack_double import Fault


def test_the_answer_comes_with_the_acknowledgement_after_the_commit(running):
    url = running.double.new_response_url(channel=REVIEW, user=MEMBER)
    r = running.command("file vendor=Paragon product=Graphite agency=ICE", response_url=url)
    assert r.status == 200 and r.json["response_type"] == "ephemeral"
    assert r.json["text"].startswith("Filed *CR-1*"), r.json
    # committed before the 200: readable at once, by another connection, without waiting for anything
    assert running.bot.service.show(1).vendor == "Paragon"
    time.sleep(0.2)
    assert running.double.responses(url) == []  # nothing follows through the response_url


def test_a_bare_file_whose_trigger_expired_is_told_and_not_retried(running):
    running.double.trigger_ttl = 0.05
    trigger = running.double.new_trigger_id()
    time.sleep(0.1)
    r = running.command("file", trigger_id=trigger)
    assert r.status == 200 and "did not open the form in time" in r.json["text"], r.json
    assert len(running.double.calls("views.open")) == 1  # a used or expired trigger is never tried again
    assert running.double.views_opened() == []


def test_a_rate_limited_form_is_not_retried_with_its_single_use_trigger(running):
    running.double.script("views.open", [Fault(status=429, retry_after=1)])
    r = running.command("file")
    assert r.status == 200 and "Please try again" in r.json["text"], r.json
    time.sleep(1.5)  # a retry after Retry-After would have come by now
    assert len(running.double.calls("views.open")) == 1


def test_a_note_form_that_cannot_open_is_told_privately(running):
    running.command("file vendor=V product=P agency=ICE")
    q = next(m for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-1"))
    running.double.script(
        "views.open", [Fault(status=200, body={"ok": False, "error": "exchanged_trigger_id"})]
    )
    url = running.double.new_response_url(channel=REVIEW, user=REVIEWER)
    r = running.slack.block_action(
        user_id=REVIEWER,
        action_id=ActionId.ADD_NOTE.value,
        value="1:SCOPE-1",
        channel_id=REVIEW,
        response_url=url,
        message={"ts": q["ts"], "channel": REVIEW},
    )
    assert r.status == 200
    running.double.wait_for(lambda d: d.responses(url), timeout=5)
    assert "did not open the form in time" in running.double.responses(url)[0]["body"]["text"]


def test_one_info_line_per_request_and_no_secret(running, caplog):
    caplog.set_level(logging.INFO)
    running.command("file vendor=Paragon product=Graphite agency=ICE")
    running.command("show CR-1", user=REVIEWER)
    running.command("determine CR-1 prohibited reason=x", user=MEMBER)
    lines = [r.getMessage() for r in caplog.records if r.name == "contract_bot.requests"]
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"/contract file by {MEMBER}: done, HTTP 200 in ") and lines[0].endswith(" ms")
    assert lines[1].startswith(f"/contract show by {REVIEWER}: done")
    assert lines[2].startswith(f"/contract determine by {MEMBER}: refused: PermissionDenied")
    everything = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Graphite" not in everything  # what people type (CUI) is not logged
    assert SECRET not in everything and "xoxb-test" not in everything


def test_one_warning_per_refused_signature_with_its_reason(running, caplog):
    caplog.set_level(logging.INFO)
    stale = running.slack.command("help", user_id=MEMBER, timestamp=int(time.time()) - 600)
    forged = running.slack.command("help", user_id=MEMBER, signature="v0=" + "0" * 64)
    unsigned = running.slack.command("help", user_id=MEMBER, unsigned=True)
    garbled = running.slack.command("help", user_id=MEMBER, timestamp="yesterday")
    assert [r.status for r in (stale, forged, unsigned, garbled)] == [401, 401, 401, 401]
    # ours only: waitress may add "Task queue depth is 1" on a loaded machine (its own, not about the request)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.name.startswith("waitress")
    ]
    assert len(warnings) == 4, warnings
    assert "stale timestamp" in warnings[0]
    assert warnings[1] == "refused a request: bad signature"
    assert "unsigned" in warnings[2] and "malformed signature headers" in warnings[3]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in everything and "v0=" not in everything and "help" not in everything
    assert not [r for r in caplog.records if r.name.startswith("slack_bolt") and r.levelno < logging.WARNING]


def test_healthz_takes_a_write(running, database):
    from tests.support.slack_requests import healthz

    assert healthz(running.url) == (200, "ok")
    if database[1] is None:  # SQLite: a stuck writer elsewhere holds the write lock
        import sqlite3

        conn = sqlite3.connect(database[0].removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            assert healthz(running.url) == (503, "database unavailable")
            assert time.monotonic() - started < 2.0
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        assert healthz(running.url) == (200, "ok")
