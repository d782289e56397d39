"""handlers.limits: Slack's size limits measured and enforced in one place, never cutting silently."""

from __future__ import annotations

import pytest
from slack_sdk.models.blocks import Block

from handlers import limits


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("a" * 20, 10, "a" * 9 + "…"),
        ("x" * 7 + "&amp;" + "y" * 10, 10, "x" * 7 + "…"),  # no half escape
        ("ab <@U12345678> cd", 10, "ab…"),  # no half mention
        ("<https://h.example/p|thread> and more words", 30, "<https://h.example/p|thread>…"),
    ],
)
def test_clip_is_visible_and_never_splits_an_escape_or_a_token(text, limit, expected):
    assert limits.clip(text, limit) == expected
    assert len(limits.clip(text, limit)) <= limit


def test_split_text_loses_nothing_and_keeps_every_piece_within_the_limit():
    lines = [f"line {i} " + "&amp;" * (i % 7) + " <@U0000000" + str(i % 10) + ">" for i in range(400)]
    text = "\n".join(lines) + "\n" + "word " * 2000 + "&amp;" * 900
    pieces = limits.split_text(text, 2900)
    assert all(0 < len(p) <= 2900 for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())  # nothing dropped, in order
    for p in pieces:  # no piece starts or ends inside an escape or a token
        assert p.count("<") == p.count(">")
        assert not p.rstrip().endswith(("&", "&a", "&am", "&amp"))


def test_problems_names_every_limit_a_message_breaks():
    fine = {"text": "hi", "blocks": [section("hello")]}
    assert limits.problems(fine) == []
    too_many = {"text": "x", "blocks": [section("b")] * 51}
    assert any("51 blocks" in p for p in limits.problems(too_many))
    assert limits.problems({"type": "home", "blocks": [section("b")] * 51}, "home") == []
    too_long_object = {"text": "x", "blocks": [section("a" * 3001)]}
    assert any("3001 characters" in p for p in limits.problems(too_long_object))
    too_much_text = {"text": "x", "blocks": [section("a" * 2900)] * 4}
    assert any("characters of text" in p for p in limits.problems(too_much_text))
    fields = {"text": "x", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]}
    assert any("11 fields" in p for p in limits.problems(fields))
    assert any("`text`" in p for p in limits.problems({"text": "t" * 3001}))


def test_fit_leaves_a_fitting_message_alone():
    message = {"text": "hi", "blocks": [section("hello")]}
    fitted = limits.fit(message)
    assert fitted == message
    # a reply fitted where it was built is not checked again on its way out
    assert limits.fit(fitted) is fitted


def test_a_payload_fitted_for_a_message_is_fitted_again_for_a_view():
    blocks = [section("a" * 100)] * 60  # within a Home tab's 100 blocks, over a message's 50
    as_home = limits.fit({"type": "home", "blocks": blocks}, "home")
    assert len(as_home["blocks"]) == 60
    as_message = limits.fit(as_home, "message")
    assert limits.problems(as_message) == [] and "was too long" in str(as_message["blocks"][-1])


def test_blocks_given_as_dicts_are_checked_with_slack_sdk_models_and_only_those_are_left_to_check():
    # a button label over Slack's 75 characters: only slack_sdk's models know that limit, in the element's to_dict
    bad = {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x" * 80}, "action_id": "a"}],
    }
    message = {"text": "hi", "blocks": [section("fine"), bad]}
    assert any("Block Kit" in p for p in limits.problems(message))
    assert any("Block Kit" in p for p in limits.problems(message, unchecked_blocks=[bad]))
    assert limits.problems(message, unchecked_blocks=[message["blocks"][0]]) == []


@pytest.mark.parametrize(
    "message",
    [
        {"text": "x", "blocks": [section("b")] * 80},
        {"text": "x", "blocks": [section("a" * 2900)] * 6},
        {"text": "x", "blocks": [section("a" * 5000)]},
        {"text": "&amp;" * 3000},
        {"text": "t" * 40_000, "blocks": [section("a" * 2900)] * 60},
    ],
)
def test_fit_shortens_visibly_and_the_result_is_within_every_limit(message, caplog):
    fitted = limits.fit(message)
    assert limits.problems(fitted) == []
    assert "was too long for one Slack message" in str(fitted["blocks"][-1])
    for block in Block.parse_all(fitted["blocks"]):
        block.validate_json()
    assert "over Slack's limits" in caplog.text  # never silently


def test_a_long_text_only_reply_is_spread_over_sections_without_losing_a_word(caplog):
    text = "Stop-work order lifted: " + "&amp;" * 1990 + "."
    fitted = limits.fit({"text": text})
    assert limits.problems(fitted) == [] and "was too long" not in str(fitted)
    assert "".join(b["text"]["text"] for b in fitted["blocks"]) == text
    assert len(fitted["text"]) <= 300 and "over Slack's limits" not in caplog.text


def test_fit_of_a_view_keeps_its_type_and_stays_within_100_blocks():
    view = {"type": "home", "blocks": [section("a" * 2000)] * 120}
    fitted = limits.fit(view, "home", hint="`/contract list` shows every contract.")
    assert fitted["type"] == "home" and limits.problems(fitted, "home") == []
    assert "`/contract list` shows every contract." in str(fitted["blocks"][-1])
