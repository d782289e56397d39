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


# Marking syntax, however written: refused (find_classification_marking returns what it matched).
MARKED = [
    # banners in capitals
    "TOP SECRET",
    "TOP  SECRET",
    "TOP\u00a0SECRET",
    "TOP\nSECRET",
    "TOPSECRET",
    "TOP_SECRET",
    "the SECRET annex",
    "SECRET",
    "TS/SCI",
    "TS / SCI",
    "ref TOP SECRET memo 12",
    "TOP SECRET\nStaff must hold clearances",  # the clearance talk is on another line
    # level or control joined by //, any case and spacing
    "SECRET//NOFORN",
    "SECRET // REL TO USA, FVEY",
    "secret//noforn",
    "Secret//NoForn",
    "TOP SECRET//SI//NOFORN",
    "TS//SI//NOFORN",
    "TS//SCI",
    "ts//sci",
    "S//NF",
    "C//REL TO USA",
    "CONFIDENTIAL//REL TO USA, GBR",
    "Confidential // rel to USA",
    "//NOFORN",
    "// NOFORN",
    "//REL TO USA",
    "//SCI",
    "//noforn",
    "staff must hold TS//SCI clearances",  # // is marking syntax even among clearance words
    # portion marks
    "(TS) the tool",
    "(S) the tool",
    "( S ) the tool",
    "(S).",
    "(TS//SI) the tool",
    "(S//NF) the tool",
    "(C//REL) the tool",
    "(S/NF) the tool",
    "(TS/SCI) the tool",
    "(C/NF) the tool",
    # controls that are never prose
    "NOFORN",
    "noforn",
    "dissemination ORCON",
    "REL TO USA",
    # disguised: spaced or punctuated apart
    "T O P S E C R E T",
    "T O P  S E C R E T",
    "t o p s e c r e t",
    "S E C R E T",
    "S-E-C-R-E-T//",
    "S-E-C-R-E-T",
    "S.E.C.R.E.T.",
    "s_e_c_r_e_t",
    "S * E * C * R * E * T",
    "T-O-P S-E-C-R-E-T clearance",  # a disguise is refused whatever surrounds it
    "N O F O R N",
    # disguised: digits and symbols for letters
    "T0P 5ECRET",
    "t0p s3cr3t",
    "$ECRET",
    "5ECRET//N0F0RN",
    "TOP SECR3T clearance",
    # disguised: look-alike, full-width, accented, invisible
    "ＴＯＰ　ＳＥＣＲＥＴ",
    "ｓｅｃｒｅｔ",
    "TOP\u200bSECRET",
    "SE\u200bCRET",
    "TOP ЅЕСRЕТ",
    "ѕесrеt",
    "SÉCRET",
    "S\u0301ECRET",
    "𝐒𝐄𝐂𝐑𝐄𝐓",
]

# Ordinary contract wording, clearance requirements included: accepted.
PROSE = [
    # clearance requirements, as contracts word them
    "staff must hold TS/SCI clearances",
    "staff must hold ts/sci clearances",
    "a SECRET facility clearance (DD-254)",
    "Top Secret clearance required",
    "TOP SECRET clearance required",
    "TOP SECRET CLEARANCE REQUIRED",
    "SECRET-cleared engineers",
    "cleared to TOP SECRET",
    "personnel cleared at the SECRET level",
    "requires TS/SCI eligibility",
    "TS/SCI access for two analysts",
    "engineers with an active TS/SCI with polygraph",
    "clearance: SECRET",
    "FCL at SECRET",
    # level words in lower or mixed case are prose
    "secret sauce",
    "Top Secret program",
    "top secret",
    "a secret",
    "Secret Service",
    "US SECRET SERVICE",
    "the U.S. Secret Service",
    "trade secrets",
    "secretary",
    "SECRETARY OF HOMELAND SECURITY",
    "Secretary of Defense",
    # "confidential" and friends
    "confidential",
    "Confidential business information",
    "COMPANY CONFIDENTIAL",
    "CONFIDENTIAL",
    # parentheses that are not portion marks
    "(S)upport",
    "(S)ervices",
    "THE VENDOR(S) SHALL",
    "the vendor(s) shall",
    "(c) 2024 NSO Group",
    "(C) 2024",
    "(5) deliverables",
    "(a), (b) and (c)",
    "(U) unclassified",
    "U//FOUO",
    "(U//FOUO) routine",
    "CUI",
    "CUI//SP-PROCURE",
    # slashes that are not marking syntax
    "https://example.com/a//b",
    "https://sci.example.org/paper",
    "http://nf.example",
    "file://server/share",
    "C/O JOHN SMITH",
    "TCP/IP",
    "S/MIME",
    # letters, digits and words that only look close
    "Top-notch security",
    "NSO Group",
    "Orcon Internet",
    "Paragon Solutions Graphite",
    "DD-254",
    "C4ISR",
    "AWS S3 bucket",
    "5G modem",
    "a b c",
    "U.S.A.",
    "S.A. de C.V.",
    "TS",
    "TS clearance",
    "Release to the USA",
    "",
]


@pytest.mark.parametrize("text", MARKED)
def test_classification_markings_are_found(text: str) -> None:
    assert find_classification_marking(text) is not None


@pytest.mark.parametrize("text", PROSE)
def test_ordinary_text_is_not_taken_for_a_marking(text: str) -> None:
    assert find_classification_marking(text) is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see the TOP SECRET annex", "TOP SECRET"),
        ("x SECRET//NOFORN y", "SECRET//"),
        ("memo (S//NF) paragraph", "(S//NF)"),
        ("then //NOFORN", "//NOFORN"),
        ("T0P 5ECRET", "TOP SECRET"),
        ("T O P S E C R E T", "TOPSECRET"),
        ("staff must hold TS/SCI clearances; the SECRET annex", "SECRET"),
    ],
)
def test_find_classification_marking_returns_the_first_marking(text: str, found: str) -> None:
    assert find_classification_marking(text) == found


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), st.sampled_from(MARKED[:40]))
def test_a_marking_is_found_wherever_it_stands(prefix: str, marking: str) -> None:
    # prose before a marking does not hide it (a newline keeps clearance words out of its clause)
    assert find_classification_marking(f"{prefix}\n{marking}\n") is not None


def test_find_classification_marking_is_linear_on_long_text() -> None:
    # each of these once cost a scan per character; the answer must not depend on the length
    for text in ("S " * 50_000, "T0" * 50_000, "(S" * 50_000, "/" * 100_000, "secret " * 20_000):
        find_classification_marking(text)


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
        (
            "TOP SECRET//NOFORN program",
            {},
            ["classification marking", CLASSIFIED_REFUSAL, "TS/SCI clearances"],
        ),
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
