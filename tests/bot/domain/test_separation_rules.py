"""The pure rules behind separation of duties (issue 14, AC-5): §2(f)'s two people, and user text quoted so that it
cannot pass for the bot's own lines."""

from __future__ import annotations

import pytest

from bot.domain import review as rv
from bot.domain.errors import InvalidState
from bot.domain.text import quote_lines, quoted

STATE = rv.ReviewState(ref="CR-7", determination=rv.NOT_RISKY)


@pytest.mark.parametrize(
    ("determined_by", "actor", "refused"),
    [
        ("UOFF1", "UOFF1", True),  # the one who recorded the determination
        ("UOFF1", "UOFF2", False),  # another official
        (None, "UOFF1", False),  # a determination from before who recorded it was kept
    ],
)
def test_the_determiner_may_not_certify(determined_by, actor, refused):
    if refused:
        with pytest.raises(InvalidState) as e:
            rv.check_certifier(STATE, determined_by, actor)
        assert e.value.message.startswith(
            "§2(f): certification is a separate act of the relevant official; the person who recorded the "
            f"determination (<@{actor}>) may not also record its certification"
        )
        assert '`certify CR-7 official="…"`' in e.value.message
    else:
        rv.check_certifier(STATE, determined_by, actor)


@pytest.mark.parametrize(
    ("text", "after", "shown"),
    [
        ("review EO 14093", ". ", "review EO 14093. "),  # one line: inline, with its punctuation
        ("<!channel> & co", "", "&lt;!channel&gt; &amp; co"),  # escaped either way
        ("a\n:white_check_mark: CR-2 certified", ". ", "\n>a\n>:white_check_mark: CR-2 certified\n"),
        ("a\n\nb", "", "\n>a\n>\n>b\n"),  # an empty line stays inside the quote
        (
            "a\u2028:scales: CR-1 determined",
            "",
            "\n>a\n>:scales: CR-1 determined\n",
        ),  # Slack breaks there too
        ("> fake quote\n<@U1>", "", "\n>&gt; fake quote\n>&lt;@U1&gt;\n"),
    ],
)
def test_user_text_spanning_lines_is_set_off_as_a_quote(text, after, shown):
    assert quoted(text, after) == shown
    # no line of it can start as the bot's own lines do
    assert (
        all(line == "" or line.startswith(">") for line in quoted(text, after).split("\n"))
        or "\n" not in shown
    )


def test_quote_lines_takes_text_already_escaped_and_leaves_one_line_alone():
    assert quote_lines("a &lt;b&gt;") == "a &lt;b&gt;"
    assert quote_lines("a\nb") == "\n>a\n>b\n"
