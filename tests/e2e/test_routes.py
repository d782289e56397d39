"""Routing of `/contract`, our buttons and our forms by ID (handlers/routes.py), over HTTP, with what is not ours
left to Bolt's own listeners."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import MEMBER, REVIEW, REVIEWER


def seen_and_contracts(running) -> tuple[int, int]:  # noqa: ANN001
    with running.bot.engine.connect() as conn:
        seen = conn.execute(text("SELECT count(*) FROM seen_request")).scalar_one()
        contracts = conn.execute(text("SELECT count(*) FROM contract")).scalar_one()
    return seen, contracts


def test_requests_that_are_not_ours_reach_no_listener_and_change_nothing(running):
    running.command("file vendor=V product=P agency=ICE")
    before = seen_and_contracts(running)
    other_command = running.slack.command(
        "file vendor=X product=Y agency=Z", user_id=MEMBER, channel_id=REVIEW, command="/other"
    )
    other_button = running.slack.block_action(
        user_id=REVIEWER, action_id="someone_elses_button", value="1:SCOPE-1"
    )
    other_form = running.slack.view_submission(
        user_id=MEMBER, callback_id="someone_elses_form", state_values={}
    )
    assert [r.status for r in (other_command, other_button, other_form)] == [404, 404, 404]  # Bolt: unhandled
    assert seen_and_contracts(running) == before


def test_each_route_reaches_its_listener(running):
    r = running.command("file vendor=V product=P agency=ICE")
    assert "Filed *CR-1*" in r.json["text"]
    question = next(m for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-1"))
    r = running.slack.block_action(
        user_id=REVIEWER,
        action_id="answer_yes",
        value="1:SCOPE-1",
        message={"ts": question["ts"], "channel": REVIEW},
        channel_id=REVIEW,
    )
    assert r.status == 200
    running.double.wait_for(lambda d: running.bot.service.show(1).question("SCOPE-1").answer == "yes")
    r = running.slack.block_action(
        user_id=REVIEWER, action_id="add_note", value="1:SCOPE-1", trigger_id="t-note", channel_id=REVIEW
    )
    assert r.status == 200
    running.double.wait_for(lambda d: len(d.calls("views.open")) == 1)
    r = running.slack.view_submission(user_id=MEMBER, callback_id="file_contract_modal", state_values={})
    assert r.status == 200 and r.json["response_action"] == "errors"  # the filing form's own validation
