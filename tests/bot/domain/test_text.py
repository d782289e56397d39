"""Tests of safe user text: escaping, mentions, classification markings and the free-text gate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import InputError
from bot.domain.text import (
    CLASSIFIED_REFUSAL,
    check_free_text,
    escape_mrkdwn,
    find_classification_marking,
    format_user_mention,
    neutralize,
    parse_channel_ref,
    parse_user_mention,
    safe_mrkdwn,
    unescape_slack,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://x|y>", "&lt;https://x|y&gt;"),
        ("AT&T", "AT&amp;T"),
        ("&lt;", "&amp;lt;"),
        ("plain *bold* _it_ 'q' \"dq\"", "plain *bold* _it_ 'q' \"dq\""),
        ("", ""),
    ],
)
def test_escape_mrkdwn_replaces_only_the_three_control_characters(raw: str, escaped: str) -> None:
    assert escape_mrkdwn(raw) == escaped


@given(st.text())
def test_escape_mrkdwn_output_never_contains_angle_brackets(s: str) -> None:
    out = escape_mrkdwn(s)
    assert "<" not in out and ">" not in out


@given(st.text())
def test_unescape_slack_inverts_escape_mrkdwn(s: str) -> None:
    assert unescape_slack(escape_mrkdwn(s)) == s


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel", "hi @here!"])
def test_neutralize_defuses_bare_special_mentions(word: str) -> None:
    out = neutralize(word)
    assert out != word
    assert "@\u200d" in out
    assert out.replace("\u200d", "") == word


@pytest.mark.parametrize("text", ["@channelling", "mail@hereford.example", "@jane", "no mention"])
def test_neutralize_leaves_other_text_alone(text: str) -> None:
    assert neutralize(text) == text


def test_safe_mrkdwn_combines_both() -> None:
    assert safe_mrkdwn("<!here> @here") == "&lt;!here&gt; @\u200dhere"


@pytest.mark.parametrize(
    "text",
    [
        "TOP SECRET",
        "top secret",
        "Top Secret program",
        "TOP  SECRET",
        "TOP\u00a0SECRET",
        "TOP\nSECRET",
        "ＴＯＰ　ＳＥＣＲＥＴ",  # full-width letters and space
        "TOP\u200bSECRET",  # zero-width space
        "TOP ЅЕСRЕТ",  # Cyrillic look-alikes
        "SECRET//NOFORN",
        "SECRET // REL TO USA, FVEY",
        "TS//SI//NOFORN",
        "TS/SCI",
        "//NOFORN",
        "NOFORN",
        "dissemination ORCON",
        "//REL TO USA",
        "//SCI",
        "the SECRET annex",
        "CONFIDENTIAL//REL TO USA",
        "(TS) the tool",
        "(S) the tool",
        "(TS//SI) the tool",
        "(S//NF) the tool",
        "(C//REL) the tool",
        "(S/NF) the tool",
        "S//NF",
        "secret//noforn",
    ],
)
def test_classification_markings_are_found(text: str) -> None:
    assert find_classification_marking(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Secret Service",
        "US SECRET SERVICE",
        "secretary",
        "SECRETARY OF HOMELAND SECURITY",
        "confidential",
        "Confidential business information",
        "COMPANY CONFIDENTIAL",
        "(c) 2024 NSO Group",
        "(C) 2024",
        "Top-notch security",
        "NSO Group",
        "U//FOUO",
        "(U//FOUO) routine",
        "(U) unclassified",
        "CUI",
        "https://example.com/a//b",
        "THE VENDOR(S) SHALL",
        "Orcon Internet",
        "Paragon Solutions Graphite",
        "secret sauce",
        "C/O JOHN SMITH",
        "",
    ],
)
def test_ordinary_text_is_not_taken_for_a_marking(text: str) -> None:
    assert find_classification_marking(text) is None


def test_find_classification_marking_returns_the_marking() -> None:
    assert find_classification_marking("see the TOP SECRET annex") == "TOP SECRET"
    assert find_classification_marking("x SECRET//NOFORN y") == "SECRET//"


@given(st.text())
def test_find_classification_marking_never_raises(s: str) -> None:
    result = find_classification_marking(s)
    assert result is None or isinstance(result, str)


def test_check_free_text_strips_and_returns() -> None:
    assert check_free_text("  Paragon Solutions \n", field="vendor", max_len=200) == "Paragon Solutions"


def test_check_free_text_keeps_newlines_and_tabs() -> None:
    assert check_free_text("line 1\n\tline 2", field="note", max_len=200) == "line 1\n\tline 2"


@pytest.mark.parametrize(
    ("value", "kwargs", "needles"),
    [
        ("   ", {}, ["`vendor`", "empty"]),
        ("x" * 201, {}, ["too long", "201", "200"]),
        ("a\x00b", {}, ["control character", "U+0000"]),
        ("a\x1bb", {}, ["U+001B"]),
        ("evil\u202etxt", {}, ["U+202E"]),
        ("a\nb", {"multiline": False}, ["line break"]),
        ("TOP SECRET//NOFORN program", {}, ["classification marking", CLASSIFIED_REFUSAL]),
    ],
)
def test_check_free_text_refuses(value: str, kwargs: dict[str, bool], needles: list[str]) -> None:
    with pytest.raises(InputError) as info:
        check_free_text(value, field="vendor", max_len=200, **kwargs)
    for needle in needles:
        assert needle in str(info.value)


def test_check_free_text_optional_may_be_empty() -> None:
    assert check_free_text("  ", field="note", max_len=10, required=False) == ""


def test_check_free_text_names_limit_for_ten_thousand_characters() -> None:
    with pytest.raises(InputError) as info:
        check_free_text("y" * 10_000, field="reason", max_len=2000)
    assert "10,000" in str(info.value) and "2,000" in str(info.value)


@pytest.mark.parametrize(
    ("token", "user_id"),
    [
        ("<@U123>", "U123"),
        ("<@U123|jane>", "U123"),
        ("<@U0G9QF9C6|jane doe>", "U0G9QF9C6"),
        ("<@W123ABC>", "W123ABC"),
        ("@jane", None),
        ("U123", None),
        ("<@u123>", None),
        ("<#C123|general>", None),
        ("<!channel>", None),
        ("<@U123", None),
        ("x<@U123>", None),
    ],
)
def test_parse_user_mention(token: str, user_id: str | None) -> None:
    assert parse_user_mention(token) == user_id


@pytest.mark.parametrize(
    ("token", "channel_id"),
    [
        ("<#C123|general>", "C123"),
        ("<#C0123ABC>", "C0123ABC"),
        ("C0123ABC", "C0123ABC"),
        ("#general", None),
        ("CLOSE", None),
        ("CONFIGURE", None),
        ("<@U123>", None),
        ("c0123abc", None),
    ],
)
def test_parse_channel_ref(token: str, channel_id: str | None) -> None:
    assert parse_channel_ref(token) == channel_id


def test_format_user_mention_builds_and_validates() -> None:
    assert format_user_mention("U123") == "<@U123>"
    for bad in ["", "u123", "U1>", "<!channel>", "U123|x"]:
        with pytest.raises(ValueError):
            format_user_mention(bad)


@given(st.from_regex(r"[UW][A-Z0-9]{2,12}", fullmatch=True))
def test_format_then_parse_user_mention_roundtrips(user_id: str) -> None:
    assert parse_user_mention(format_user_mention(user_id)) == user_id
