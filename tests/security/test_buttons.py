"""A button acts only on the contract and question of the message it is on: a value naming another contract or
another question, or a press that names no message or another channel's, is refused privately and changes
nothing."""

from __future__ import annotations

from bot.services.bindings import NOT_ITS_MESSAGE
from tests.conftest import MANAGERS, MEMBER, REVIEW, REVIEWER
from tests.reliability.support import counts, fingerprint, question_ts, settle


def press(running, value: str, message: dict | None, action_id: str = "answer_no", **kw):
    url = running.double.new_response_url(channel=REVIEW, user=REVIEWER)
    r = running.slack.block_action(
        user_id=REVIEWER, action_id=action_id, value=value, message=message, response_url=url, **kw
    )
    assert r.status == 200, r.body
    return url


def told(running, url: str) -> str:
    running.double.wait_for(lambda d: bool(d.responses(url)))
    return running.double.responses(url)[0]["body"]["text"]


def test_a_forged_button_value_acts_on_nothing(running):
    for vendor in ("Paragon", "Other"):
        running.bot.service.file_contract(MEMBER, {"vendor": vendor, "product": "P", "agency": "A"})
    settle(running)
    on_1 = {"ts": question_ts(running, 1, "SCOPE-1"), "channel": REVIEW}
    before, state = counts(running), fingerprint(running)
    opened = len(running.double.calls("views.open"))

    forged = [
        ("2:SCOPE-1", on_1, {}),  # another contract's question, pressed on CR-1's message
        ("1:SCOPE-2", on_1, {}),  # another question of the same contract
        ("1:SCOPE-1", {**on_1, "channel": MANAGERS}, {}),  # the right ts in another channel
        ("1:SCOPE-1", None, {"channel_id": REVIEW}),  # no message at all
        ("1:SCOPE-1", None, {"container": {"type": "view", "view_id": "V1"}}),  # not a message
    ]
    for value, message, extra in forged:
        for action_id in ("answer_no", "add_note"):
            url = press(running, value, message, action_id, **extra)
            assert told(running, url) == NOT_ITS_MESSAGE, (value, message, extra, action_id)
    settle(running)
    assert counts(running) == before
    assert fingerprint(running) == state
    assert len(running.double.calls("views.open")) == opened

    # pressed on its own message, the same buttons act
    press(running, "1:SCOPE-1", on_1)
    running.double.wait_for(lambda d: running.bot.service.show(1).question("SCOPE-1").answer == "no")
    press(running, "1:SCOPE-1", on_1, "add_note")
    running.double.wait_for_calls("views.open", opened + 1)
    assert running.bot.service.show(2).question("SCOPE-1").answer is None
