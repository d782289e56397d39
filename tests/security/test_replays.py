"""At most once: a captured signed request sent again (the same body, timestamp and signature, which Slack's check
accepts for 5 minutes) changes nothing: each request kind, copies racing each other, and another bot process on the
same database."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from bot.app import create_app
from bot.clock import ManualClock
from storage.db import make_engine
from tests.conftest import (
    ADMIN,
    MANAGER,
    MEMBER,
    OFFICIAL,
    REVIEW,
    REVIEWER,
    SECRET,
    SLACK_RATE_SCALE,
    START,
    make_settings,
    serve_bot,
)
from tests.reliability.support import (
    CLEAN_ANSWERS,
    answer_all,
    changes,
    counts,
    question_ts,
    settle,
    snapshot,
)
from tests.security.support import capture
from tests.support.slack_requests import SlackRequester

ALREADY = "already carried out"
FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE'


def command(running, text_: str, user: str):
    """A `/contract` command as sent over the wire, kept for a replay."""
    return capture(
        running.slack.command, text=text_, user_id=user, channel_id=REVIEW, response_url=None, trigger_id=None
    )


def ok(r) -> str:
    assert r.status == 200, r.body
    reply = (r.json or {}).get("text") or ""
    assert ALREADY not in reply, reply
    return reply


def replayed_changes_nothing(running, captured) -> str:
    """Send a captured request again; assert it is refused privately and that no state or audit row moved."""
    settle(running)
    before, audit = snapshot(running), counts(running)["audit_entry"]
    again = captured.replay(running.slack)
    assert again.status == 200, again.body
    settle(running)
    assert changes(before, snapshot(running)) == {}
    assert counts(running)["audit_entry"] == audit
    return again.body


def roles_of(running, user: str) -> set[str]:
    with running.bot.engine.connect() as conn:
        rows = conn.execute(text("SELECT role FROM role_grant WHERE user_id = :u"), {"u": user}).all()
    return {r[0] for r in rows}


def test_a_replay_of_each_command_changes_nothing(running):
    # a filing
    filing = command(running, FILE, MEMBER)
    assert "CR-1" in ok(filing.first)
    assert ALREADY in json.loads(replayed_changes_nothing(running, filing))["text"]
    assert [c.id for c in running.bot.service.list_contracts(None, 1).rows] == [1]

    # a grant after a revoke
    grant = command(running, f"admin grant <@{MEMBER}> reviewer", ADMIN)
    ok(grant.first)
    ok(running.command(f"admin revoke <@{MEMBER}> reviewer", user=ADMIN))
    assert ALREADY in replayed_changes_nothing(running, grant)
    assert "reviewer" not in roles_of(running, MEMBER)

    # a stop-work after a resume
    stop = command(running, 'stopwork CR-1 reason="verify compliance"', MANAGER)
    ok(stop.first)
    ok(running.command('resume CR-1 reason="review done"', user=MANAGER))
    assert ALREADY in replayed_changes_nothing(running, stop)
    assert running.bot.service.show(1).state.stopwork_since is None

    # a determination flipped back
    answer_all(running, 1, CLEAN_ANSWERS)
    prohibited = command(running, 'determine CR-1 prohibited reason="foreign intelligence risk"', OFFICIAL)
    ok(prohibited.first)
    assert "not-risky" in ok(
        running.command('determine CR-1 not-risky reason="new information"', user=OFFICIAL)
    )
    assert ALREADY in replayed_changes_nothing(running, prohibited)
    assert running.bot.service.show(1).state.determination == "not-risky"


def test_a_replayed_button_and_form_change_nothing(running):
    ok(running.command(FILE, user=MEMBER))
    settle(running)
    ts = question_ts(running, 1, "SCOPE-1")
    url = running.double.new_response_url(channel=REVIEW, message_ts=ts, user=REVIEWER)
    press = capture(
        running.slack.block_action,
        user_id=REVIEWER,
        action_id="answer_no",
        value="1:SCOPE-1",
        message={"ts": ts, "channel": REVIEW},
        channel_id=REVIEW,
        response_url=url,
    )
    assert press.first.status == 200
    running.double.wait_for(lambda d: running.bot.service.show(1).question("SCOPE-1").answer == "no")
    ok(running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER))
    replayed_changes_nothing(running, press)
    assert running.bot.service.show(1).question("SCOPE-1").answer == "yes"
    running.double.wait_for(lambda d: any(ALREADY in (p["body"].get("text") or "") for p in d.responses(url)))

    note = capture(
        running.slack.view_submission,
        user_id=REVIEWER,
        callback_id="add_note_modal",
        private_metadata=json.dumps({"contract_id": 1, "qid": "SCOPE-1"}),
        state_values={"note": {"note": {"type": "plain_text_input", "value": "first note"}}},
    )
    assert note.first.status == 200, note.first.body
    ok(running.command('answer CR-1 SCOPE-1 yes note="second note"', user=REVIEWER))
    assert ALREADY in replayed_changes_nothing(running, note)
    assert running.bot.service.show(1).question("SCOPE-1").note == "second note"


def test_a_replayed_event_is_acknowledged_and_not_repeated(running):
    event = {"type": "app_home_opened", "user": MEMBER, "channel": "D1", "tab": "home", "event_ts": "1.0"}
    opened = capture(running.slack.event, "application/json", event=event)
    assert opened.first.status == 200
    running.double.wait_for_calls("views.publish", 1)
    again = opened.replay(running.slack)
    assert (again.status, again.body) == (200, "")  # Slack's expected answer to an event
    settle(running)
    assert len(running.double.calls("views.publish")) == 1


def test_copies_sent_at_once_are_carried_out_once(running):
    filing = command(running, FILE, MEMBER)
    with ThreadPoolExecutor(max_workers=6) as pool:
        copies = list(pool.map(lambda _: filing.replay(running.slack), range(6)))
    assert all(r.status == 200 for r in copies), [r.body for r in copies]
    assert all(ALREADY in (r.json or {}).get("text", "") for r in copies), [r.body for r in copies]
    assert [c.id for c in running.bot.service.list_contracts(None, 1).rows] == [1]

    # and copies racing the first delivery itself: exactly one files
    # the first delivery and its copies at once (signed and kept, but not sent until then): exactly one files
    race = capture(
        running.slack.command, text='file vendor="Second" product=P agency=A', user_id=MEMBER, path="/nowhere"
    )
    assert race.first.status == 404
    with ThreadPoolExecutor(max_workers=6) as pool:
        copies = list(pool.map(lambda _: race.replay(running.slack), range(6)))
    assert all(r.status == 200 for r in copies), [r.body for r in copies]
    replies = [(r.json or {}).get("text", "") for r in copies]
    assert sum(ALREADY not in t for t in replies) == 1, replies
    # one filed (on PostgreSQL a copy rolled back may have used up a reference number: count, not ids)
    assert running.bot.service.list_contracts(None, 1).total == 2


def test_another_process_on_the_same_database_refuses_a_replay(running, database):
    url, schema = database
    other = create_app(
        make_settings(running.double, url),
        engine=make_engine(url, schema=schema),
        clock=ManualClock(START),
        slack_rate_scale=SLACK_RATE_SCALE,
    )
    base, stop = serve_bot(other)
    try:
        filing = command(running, FILE, MEMBER)
        ok(filing.first)
        again = filing.replay(SlackRequester(base, SECRET, double=running.double))
        assert ALREADY in (again.json or {}).get("text", ""), again.body
        assert [c.id for c in other.service.list_contracts(None, 1).rows] == [1]
    finally:
        stop()
        other.stop()


def test_a_new_request_for_the_same_thing_is_carried_out(running):
    # what a person does after "nothing was recorded, try again": a new signed request, not a replay; within the
    # same second too, as Slack's bodies differ (trigger_id, response_url), and so do their signatures
    grant = f"admin grant <@{MEMBER}> reviewer"
    ok(running.command(grant, user=ADMIN))
    ok(running.command(f"admin revoke <@{MEMBER}> reviewer", user=ADMIN))
    ok(running.command(grant, user=ADMIN))
    assert "reviewer" in roles_of(running, MEMBER)
