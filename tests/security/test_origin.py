"""Requests well signed but from another workspace or enterprise than the bot's own (auth.test at start-up), or
naming a user ID Slack never issues, are refused privately before any listener and change nothing."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

import pytest

from handlers.context import foreign_origin, valid_user_id
from tests.conftest import ADMIN, MEMBER, REVIEW, REVIEWER, SECRET
from tests.reliability.support import (
    FILE_OK,
    counts,
    file_form_state,
    fingerprint,
    question_ts,
    settle,
)
from tests.security.support import capture
from tests.support.slack_requests import SlackRequester

FOREIGN = "serves only its own Slack workspace"
BAD_USER = "does not name a Slack user"


@pytest.mark.parametrize(
    ("team", "enterprise", "own_team", "own_enterprise", "refused"),
    [
        ("T1", None, "T1", None, None),
        ("T2", None, "T1", None, "another workspace"),
        (None, None, "T1", None, "another workspace"),
        ("T1", "E1", "T1", None, "another enterprise"),
        ("T1", "E1", "T1", "E1", None),
        ("T1", "E2", "T1", "E1", "another enterprise"),
        ("T1", None, "T1", "E1", "another enterprise"),
        ("T9", "E1", None, "E1", None),  # an org-wide install serves every workspace of its enterprise
        ("T9", "E2", None, "E1", "another enterprise"),
        ("T1", "", "T1", None, None),  # Slack sends an empty enterprise for none
    ],
)
def test_foreign_origin(team, enterprise, own_team, own_enterprise, refused):
    assert foreign_origin(team, enterprise, own_team, own_enterprise) == refused


@pytest.mark.parametrize(
    ("user", "ok"),
    [
        ("UADMIN1", True),
        ("W0123ABCD", True),
        ("U01", True),
        ("U1", False),
        ("uadmin1", False),
        ("B0123ABCD", False),
        ("UADMIN1|ada", False),
        ("<@UADMIN1>", False),
        ("<!channel>", False),
        ("U ADMIN", False),
        ("UADMIN1\n*Determination:* not-risky", False),
        ("U" + "A" * 40, False),
        ("", False),
        (None, False),
        (42, False),
    ],
)
def test_valid_user_id(user, ok):
    assert valid_user_id(user) is ok


def _with(body: bytes, **fields: str) -> str:
    """A form-encoded body with fields changed (signed afresh by the caller)."""
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    form.update(fields)
    return urlencode(form)


def test_another_workspace_or_enterprise_is_refused_on_every_surface(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    ts = question_ts(running, 1, "SCOPE-1")
    before, state = counts(running), fingerprint(running)
    publishes = len(running.double.calls("views.publish"))
    elsewhere = SlackRequester(running.url, SECRET, team_id="T2", double=running.double)

    r = elsewhere.command(FILE_OK, user_id=MEMBER, channel_id=REVIEW)
    assert r.status == 200 and FOREIGN in r.json["text"] and "another workspace" in r.json["text"], r.body
    r = elsewhere.command(f"admin grant <@{MEMBER}> admin", user_id=ADMIN, channel_id=REVIEW)
    assert FOREIGN in r.json["text"], r.body

    # our own team, but another enterprise
    kept = capture(running.slack.command, text=FILE_OK, user_id=MEMBER, channel_id=REVIEW, path="/nowhere")
    r = running.slack.raw(_with(kept.body, enterprise_id="E2", is_enterprise_install="false"))
    assert r.status == 200 and "another enterprise" in r.json["text"], r.body

    url = running.double.new_response_url(channel=REVIEW, message_ts=ts, user=REVIEWER)
    r = elsewhere.block_action(
        user_id=REVIEWER,
        action_id="answer_no",
        value="1:SCOPE-1",
        message={"ts": ts, "channel": REVIEW},
        channel_id=REVIEW,
        response_url=url,
    )
    assert r.status == 200
    running.double.wait_for(lambda d: any(FOREIGN in (p["body"].get("text") or "") for p in d.responses(url)))

    r = elsewhere.view_submission(
        user_id=MEMBER,
        callback_id="file_contract_modal",
        state_values=file_form_state(vendor="W", product="P", agency="A"),
    )
    assert r.status == 200 and r.json["response_action"] == "update", r.body
    assert FOREIGN in json.dumps(r.json["view"])

    event = {"type": "app_home_opened", "user": MEMBER, "channel": "D1", "tab": "home", "event_ts": "1.0"}
    r = elsewhere.event(event)
    assert (r.status, r.body) == (200, "")

    settle(running)
    assert counts(running) == before
    assert fingerprint(running) == state
    assert len(running.double.calls("views.publish")) == publishes
    # and our own workspace is served as before
    r = running.slack.command(FILE_OK, user_id=MEMBER, channel_id=REVIEW)
    assert "Filed" in r.json["text"] or "looks like" in r.json["text"], r.body


def test_a_user_id_slack_never_issues_is_refused_and_not_repeated(running, caplog):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    before, state = counts(running), fingerprint(running)
    for forged in ("UADMIN1\n*Determination:* not-risky", "<!channel>", "uadmin1", "UADMIN1|ada", "U1"):
        r = running.slack.command(FILE_OK, user_id=forged, channel_id=REVIEW)
        assert r.status == 200 and BAD_USER in r.json["text"], (forged, r.body)
        assert forged not in r.body
        url = running.double.new_response_url(channel=REVIEW)
        r = running.slack.block_action(
            user_id=forged, action_id="answer_no", value="1:SCOPE-1", channel_id=REVIEW, response_url=url
        )
        assert r.status == 200
        running.double.wait_for(
            lambda d, u=url: any(BAD_USER in (p["body"].get("text") or "") for p in d.responses(u))
        )
    settle(running)
    assert counts(running) == before
    assert fingerprint(running) == state
    assert "<!channel>" not in caplog.text and "Determination" not in caplog.text
