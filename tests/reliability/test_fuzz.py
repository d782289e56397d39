"""Hypothesis fuzzing over real HTTP: `/contract` text, and the payload shape of every handler
(block_actions, view_submission, message shortcuts, Events API bodies).

Never a 500, never a stack trace in anything the bot says, no unexpected-error replies or logged crashes,
exactly one reply per command (the ack body, or one response_url post after a "working on it" ack),
and the database unchanged whenever the input was refused."""

from __future__ import annotations

import json
import logging
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import args
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, REVIEW, REVIEWER
from tests.reliability.support import (
    counts,
    file_form_state,
    fingerprint,
    note_form_state,
    reply_text,
    said,
    settle,
)

# CI runs a fixed, modest set; RELIABILITY_FUZZ_EXAMPLES=2000 explores (randomly) for longer.
_EXPLORE = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES") or 0)
FUZZ = settings(
    max_examples=_EXPLORE or 60,
    deadline=None,
    database=None,
    derandomize=not _EXPLORE,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
CRASH_WORDS = ("Traceback", 'File "/', "went wrong on our side")
REFUSAL_WORDS = ("Usage:", "needs the *", "went wrong", "not allowed")  # a reply with these changed nothing

NASTY = [
    "",
    " ",
    "=",
    "==",
    "a=",
    "=b",
    '"',
    "“",
    "”",
    "''",
    '""',
    "<>",
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;!channel&gt;",
    "<!channel>",
    "<@U123>",
    "<@U123|x>",
    "<#C123|c>",
    "<https://evil|click>",
    "CR-1",
    "CR-0",
    "CR-99999999999",
    "CR--1",
    "cr-1",
    "SCOPE-1",
    "yes",
    "no",
    "unknown",
    "TOP SECRET",
    "(S//NF)",
    "T0P 5ECRET",
    "S-E-C-R-E-T//",
    "TS/SCI clearances",
    "(S)upport",
    '\\"',
    '\\\\"',
    "<@U1>,<@U2>",
    ",",
    "true",
    "off",
    "\u202e",
    "\x00",
    "\n",
    "\t",
    "\u200b",
    "🙂",
    "ÿ",
    "𝕊𝔼ℂℝ𝔼𝕋",
    "2024-02-30",
    "9999-12-31",
    "0000-00-00",
    "-1",
    "1e309",
    "NaN",
    "1,000,000.999",
    "%s%n",
    "{0}",
    "${x}",
    "'; DROP TABLE contract; --",
    "\\",
    '\\"',
    "on=",
    "until=",
    "reason=",
    "official=AG",
]
KEYS = sorted({o.key for c in args.COMMANDS.values() for o in c.options}) + ["", "x", "VENDOR", "on", "<@U1>"]
SUBCOMMANDS = sorted({*args.COMMANDS, "admin", "admin nope", "frobnicate", "FILE", "Show"})


def _huge(draw_text: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda s, n: s * n, draw_text, st.integers(300, 3000))


pieces = st.one_of(
    st.sampled_from(NASTY), st.text(max_size=12), _huge(st.sampled_from(["a", "é", "<!", "=", '"', "🙂 "]))
)


@st.composite
def command_texts(draw) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(st.one_of(st.text(max_size=300), _huge(st.text(min_size=1, max_size=4))))
    words = [draw(st.sampled_from(SUBCOMMANDS))]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        value = draw(pieces)
        if kind == 0:
            words.append(value)
        else:
            quote = draw(st.sampled_from(['"', "“", "", "'"]))
            close = {"“": "”"}.get(quote, quote)
            words.append(f"{draw(st.sampled_from(KEYS))}={quote}{value}{close}")
    return " ".join(words)


def _no_crash_logged(caplog) -> None:
    bad = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and (r.name.startswith("slack_bolt") or "unexpected error" in r.getMessage())
    ]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad[:5]]


def _no_crash_said(running, acks) -> int:
    n = 0
    for where, text, _ in said(running, acks):
        n += 1
        for word in CRASH_WORDS:
            assert word not in text, (where, text[:500])
    return n


@pytest.fixture
def fuzzed(running, caplog):
    caplog.set_level(logging.ERROR)
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    return running


def test_fuzz_contract_command_text(fuzzed, caplog):
    running = fuzzed
    tried, urls, acks = [0], [], []

    @FUZZ
    @given(
        text=command_texts(),
        user=st.sampled_from([MEMBER, MEMBER, REVIEWER, MANAGER, OFFICIAL, ADMIN]),
        escaped=st.booleans(),
    )
    def one(text, user, escaped):
        sent = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") if escaped else text
        before, opened = fingerprint(running), len(running.double.views_opened())
        url = running.double.new_response_url(channel=REVIEW, user=user)
        r = running.command(sent, user=user, response_url=url)
        tried[0] += 1
        assert r.status == 200, (text, r.status, r.body[:300])
        words = reply_text(r.json)
        if not words:  # an empty ack is only right for a bare `file`: the filing modal opens instead
            running.double.wait_for(lambda d: len(d.views_opened()) == opened + 1, timeout=5)
        urls.append(url)
        acks.append(r.json)
        for word in CRASH_WORDS:
            assert word not in words, (text, words[:500])
        if any(w in words for w in REFUSAL_WORDS):
            assert fingerprint(running) == before, (text, words[:300])

    one()
    settle(running)
    for url in urls:  # an ack that answered must not be followed by a second reply
        assert not running.double.responses(url), url
    checked = _no_crash_said(running, acks)
    _no_crash_logged(caplog)
    assert tried[0] >= FUZZ.max_examples and checked >= tried[0]


def _user():
    return st.one_of(
        st.fixed_dictionaries({"id": st.sampled_from([MEMBER, "USTRANGER1", "", "W1"])}),
        st.just({}),
        st.none(),
        st.text(max_size=5),
        st.fixed_dictionaries({"id": st.integers()}),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
ACTION_IDS = ["answer_yes", "answer_no", "answer_unknown", "add_note", "snooze_tomorrow", "snooze_3d"]
VALUES = st.one_of(
    st.sampled_from(
        [
            "1:SCOPE-1",
            "1:",
            ":SCOPE-1",
            "999:SCOPE-1",
            "1:NOPE-9",
            "1:SCOPE-1:x",
            "-1:SCOPE-1",
            "1:" + "A" * 500,
            "unanswered:1:SCOPE:1",
            ",,,",
            "x" * 3000,
        ]
    ),
    st.text(max_size=30),
    json_values,
)


@st.composite
def block_actions(draw) -> dict:
    action = draw(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.just("button"),
                    "action_id": st.sampled_from(ACTION_IDS),
                    "block_id": st.text(max_size=8),
                    "value": VALUES,
                }
            ),
            st.fixed_dictionaries({"action_id": st.sampled_from(ACTION_IDS)}),
            st.dictionaries(st.sampled_from(["action_id", "value", "type", "selected_option"]), json_values),
        )
    )
    actions = draw(st.one_of(st.just([action]), st.lists(st.just(action), min_size=2, max_size=3)))
    payload = {
        "type": "block_actions",
        "user": draw(_user()),
        "actions": actions,
        "trigger_id": running_trigger,  # a live one: an expired trigger is Slack's error, not a shape
        "container": draw(json_values),
        "channel": draw(json_values),
        "message": draw(json_values),
        "state": draw(json_values),
        "team": {"id": "T1"},
        "api_app_id": "A1",
    }
    return {
        k: v for k, v in payload.items() if draw(st.integers(0, 9)) or k in ("type", "actions", "trigger_id")
    }


running_trigger = "TRIGGER"  # replaced by a real trigger of the double in the test


@st.composite
def view_submissions(draw) -> dict:
    callback = draw(st.sampled_from(["file_contract_modal", "add_note_modal", "nope"]))
    blocks = sorted(args.COMMANDS["file"].options, key=lambda o: o.key)
    values = draw(
        st.one_of(
            st.dictionaries(
                st.sampled_from([o.key for o in blocks] + ["note", "x"]),
                st.dictionaries(
                    st.text(max_size=6),
                    st.one_of(
                        st.fixed_dictionaries(
                            {"type": st.just("plain_text_input"), "value": st.one_of(pieces, json_values)}
                        ),
                        st.fixed_dictionaries(
                            {"type": st.just("static_select"), "selected_option": json_values}
                        ),
                        json_values,
                    ),
                    max_size=2,
                ),
                max_size=6,
            ),
            json_values,
        )
    )
    metadata = draw(
        st.one_of(
            st.just(json.dumps({"contract_id": 1, "qid": "SCOPE-1"})),
            st.text(max_size=20),
            json_values.map(json.dumps),
        )
    )
    view = {
        "id": draw(st.one_of(st.just("V" + uuid.uuid4().hex[:8].upper()), st.text(max_size=5), st.none())),
        "type": "modal",
        "callback_id": callback,
        "private_metadata": metadata,
        "state": {"values": values},
    }
    if draw(st.integers(0, 5)) == 0:
        view["state"] = draw(json_values)
    return {
        "type": "view_submission",
        "user": draw(_user()),
        "view": view,
        "team": {"id": "T1"},
        "api_app_id": "A1",
    }


@st.composite
def shortcuts(draw) -> dict:
    return {
        "type": draw(st.sampled_from(["message_action", "shortcut"])),
        "callback_id": draw(st.sampled_from(["file_as_contract", "nope"])),
        "user": draw(_user()),
        "trigger_id": running_trigger,
        "message": draw(
            st.one_of(
                st.fixed_dictionaries({"text": st.one_of(pieces, json_values), "ts": st.text(max_size=5)}),
                json_values,
            )
        ),
        "channel": draw(json_values),
        "team": {"id": "T1"},
        "api_app_id": "A1",
    }


@st.composite
def event_bodies(draw) -> dict:
    event = draw(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["app_home_opened", "message", "app_mention", "nope"]),
                    "user": st.one_of(st.sampled_from([MEMBER, "USTRANGER1", ""]), json_values),
                    "tab": st.one_of(st.sampled_from(["home", "messages"]), json_values),
                    "text": st.one_of(pieces, json_values),
                    "channel": json_values,
                }
            ),
            json_values,
        )
    )
    body = {
        "type": draw(st.sampled_from(["event_callback", "event_callback", "nope"])),
        "event": event,
        "event_id": draw(
            st.one_of(st.just("Ev" + uuid.uuid4().hex[:10]), st.text(max_size=300), json_values)
        ),
        "team_id": "T1",
        "api_app_id": "A1",
    }
    return {k: v for k, v in body.items() if draw(st.integers(0, 9)) or k == "type"}


def _fuzz_interactions(running, caplog, strategy, *, as_json: bool):
    tried, acks, filed = [0], [], [0]
    before_counts = counts(running)

    @FUZZ
    @given(payload=strategy)
    def one(payload):
        for key in ("trigger_id",):
            if payload.get(key) == running_trigger:
                payload[key] = running.double.new_trigger_id()
        if "actions" in payload or payload.get("type") in ("message_action", "shortcut"):
            payload["response_url"] = running.double.new_response_url(channel=REVIEW)
        if as_json:
            r = running.slack.raw(json.dumps(payload), "application/json")
        else:
            r = running.slack._interactive(payload)  # noqa: SLF001 - a hand-made payload, signed like Slack's
        tried[0] += 1
        assert r.status < 500, (payload, r.status, r.body[:300])
        for word in CRASH_WORDS:
            assert word not in r.body, (payload, r.body[:500])
        acks.append(r.json or {})
        if "Filed *CR-" in r.body:
            filed[0] += 1

    one()
    settle(running)
    checked = _no_crash_said(running, acks)
    _no_crash_logged(caplog)
    after = counts(running)
    assert after["contract"] - before_counts["contract"] == filed[0]  # only well-formed filing forms filed
    assert after["answered"] == before_counts["answered"]  # nobody without a role answered anything
    assert after["role_grant"] == before_counts["role_grant"] and after["setting"] == before_counts["setting"]
    assert tried[0] >= FUZZ.max_examples
    return checked


def test_fuzz_block_actions(fuzzed, caplog):
    state = fingerprint(fuzzed)
    _fuzz_interactions(fuzzed, caplog, block_actions(), as_json=False)
    assert fingerprint(fuzzed) == state


def test_fuzz_view_submissions(fuzzed, caplog):
    _fuzz_interactions(fuzzed, caplog, view_submissions(), as_json=False)


def test_fuzz_shortcuts(fuzzed, caplog):
    state = fingerprint(fuzzed)
    _fuzz_interactions(fuzzed, caplog, shortcuts(), as_json=False)
    assert fingerprint(fuzzed) == state


def test_fuzz_event_bodies(fuzzed, caplog):
    state = fingerprint(fuzzed)
    _fuzz_interactions(fuzzed, caplog, event_bodies(), as_json=True)
    assert fingerprint(fuzzed) == state


def test_nul_characters_anywhere(fuzzed, caplog):
    """PostgreSQL cannot store NUL: IDs carrying one are dropped, typed text carrying one is refused, never a 500."""
    running = fuzzed
    before, state = counts(running), fingerprint(running)
    s = running.slack
    results = [
        s.event({"type": "app_home_opened", "user": MEMBER, "tab": "home"}, event_id="Ev\x00NUL"),
        s.event({"type": "app_home_opened", "user": "U\x00", "tab": "home"}),
        s.view_submission(
            user_id=MEMBER,
            callback_id="file_contract_modal",
            view_id="V\x00",
            state_values=file_form_state(vendor="V", product="P", agency="A"),
        ),
        s.view_submission(
            user_id=REVIEWER,
            callback_id="add_note_modal",
            state_values=note_form_state("a\x00b"),
            private_metadata=json.dumps({"contract_id": 1, "qid": "SCOPE-1"}),
        ),
        s.block_action(user_id="U\x00", action_id="answer_yes", value="1:SCOPE-1"),
        s.block_action(user_id=MANAGER, action_id="snooze_3d", value="a\x00b"),
        s.message_shortcut(
            user_id=MEMBER,
            callback_id="file_as_contract",
            channel_id=REVIEW,
            message={"ts": "1.1", "text": "a\x00b"},
        ),
        s.command("show CR-1\x00", user_id=MEMBER),
        s.command("file vendor=a\x00 product=b agency=c", user_id=MEMBER),
        s.command("help", user_id="U\x00"),
    ]
    assert [r.status for r in results] == [200] * len(results), [(r.status, r.body[:100]) for r in results]
    assert "control character U+0000" in results[3].body  # typed text: told why, not dropped
    settle(running)
    _no_crash_said(running, [r.json or {} for r in results])
    _no_crash_logged(caplog)
    after = counts(running)
    assert after["contract"] == before["contract"] and after["answered"] == before["answered"]
    assert fingerprint(running) == state
