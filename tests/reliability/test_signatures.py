"""Request signing (SLACK-FACTS F1.12-F1.13): every unsigned, mis-signed, stale or altered request is 401 and
changes nothing, on every surface (slash commands, block_actions, view_submission, shortcuts, events)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode

from tests.conftest import MEMBER, REVIEW, REVIEWER
from tests.reliability.support import FILE_OK, counts, file_form_state, fingerprint, question_ts, settle


def _send(running, kind: str, **overrides):
    """One request of ``kind`` that, correctly signed, would change something."""
    s = running.slack
    if kind == "command":
        return s.command(FILE_OK, user_id=MEMBER, **overrides)
    if kind == "block_actions":
        on = {"ts": question_ts(running, 1, "SCOPE-1"), "channel": REVIEW}  # the message the button is on
        return s.block_action(
            user_id=REVIEWER, action_id="answer_yes", value="1:SCOPE-1", message=on, **overrides
        )
    if kind == "view_submission":
        return s.view_submission(
            user_id=MEMBER,
            callback_id="file_contract_modal",
            state_values=file_form_state(vendor="V", product="P-form", agency="A"),
            **overrides,
        )
    if kind == "shortcut":
        return s.message_shortcut(
            user_id=MEMBER,
            callback_id="file_as_contract",
            channel_id="CREVIEW1",
            message={"ts": "1.000001", "text": "a contract"},
            **overrides,
        )
    if kind == "event":
        return s.event(
            {
                "type": "app_home_opened",
                "user": MEMBER,
                "channel": "D1",
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            },
            **overrides,
        )
    raise AssertionError(kind)


def _alter(body: bytes) -> bytes:
    """The same request with one value changed after it was signed (a replay with an altered body)."""
    if body.startswith(b"{"):
        data = json.loads(body)
        data["event"]["user"] = REVIEWER
        return json.dumps(data).encode()
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    if "payload" in form:
        form["payload"] = form["payload"].replace(MEMBER, "UADMIN1").replace(REVIEWER, "UADMIN1")
    else:
        form["text"] = form["text"] + " value=1"
    return urlencode(form).encode()


KINDS = ("command", "block_actions", "view_submission", "shortcut", "event")


def _variants():
    now = time.time()
    return {
        "missing": {"unsigned": True},
        "missing signature only": {"headers": {"X-Slack-Signature": ""}},
        "wrong": {"signature": "v0=" + "0" * 64},
        "wrong scheme": {"signature": "v1=deadbeef"},
        "garbage": {"signature": "not a signature at all"},
        "non-ASCII": {"headers": {"X-Slack-Signature": "v0=\u00e9" + "0" * 63}},
        "stale (6 min)": {"timestamp": int(now) - 360},
        "stale (1 day)": {"timestamp": int(now) - 86_400},
        "future (6 min)": {"timestamp": int(now) + 360},
        "timestamp not a number": {"timestamp": "yesterday"},
        "timestamp huge": {"timestamp": "9" * 5000},
        "altered body": {"tamper": _alter},
    }


def test_bad_signatures_are_401_and_change_nothing_good_ones_act(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    before_counts, before_state = counts(running), fingerprint(running)
    calls_before = len(running.double.calls())
    tried = 0
    for kind in KINDS:
        for name, overrides in _variants().items():
            r = _send(running, kind, **overrides)
            tried += 1
            assert r.status == 401, (kind, name, r.status, r.body)
            assert "Traceback" not in r.body
    settle(running)
    assert tried == len(KINDS) * len(_variants()) == 60
    assert counts(running) == before_counts
    assert fingerprint(running) == before_state
    assert len(running.double.calls()) == calls_before, running.double.summary()

    # control: the rejected requests are real ones; signed properly (even 4 minutes old) they are accepted and act
    before = counts(running)
    for kind in KINDS:
        assert _send(running, kind).status == 200, kind
    settle(running)
    after = counts(running)
    assert after["contract"] == before["contract"] + 2  # the command and the modal each filed one
    assert after["answered"] == before["answered"] + 1  # the reviewer's button
    assert after["seen_request"] == before["seen_request"] + 1  # the event's event_id
    assert running.double.calls("views.open") and running.double.calls("views.publish")
    r = running.slack.command("help", user_id=MEMBER, timestamp=int(time.time()) - 240)
    assert r.status == 200 and "/contract help" in json.dumps(r.json)  # help is long: it comes in blocks
