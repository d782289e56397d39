"""The export's cell rules, table-driven: Slack's markup to plain text, exact money, formula cells."""

from __future__ import annotations

import pytest

from bot.services.exports import _cell, _money, plain

NAMES = {"U1": "Renée Reviewer", "W2": "Max Manager"}


@pytest.mark.parametrize(
    "stored, shown",
    [
        ("for <@U1>", "for Renée Reviewer"),
        ("<@W2|max> and <@U9>", "Max Manager and U9"),  # unknown to Slack: the ID
        ("in <#C123|reviews>", "in #reviews"),
        ("<!here> and <!channel>", "@here and @channel"),
        ("<!subteam^S1|@legal>", "@legal"),
        ("see <https://example.gov/sow|the SOW>", "see the SOW (https://example.gov/sow)"),
        ("<https://example.gov/a?b=1&c=2>", "https://example.gov/a?b=1&c=2"),
        ("<mailto:co@example.gov|co@example.gov>", "co@example.gov"),
        ("a <draft> note, 1 < 2 > 0", "a <draft> note, 1 < 2 > 0"),  # typed text stays as typed
        ("*bold* _it_ `code`", "*bold* _it_ `code`"),
        (None, None),
    ],
)
def test_slack_markup_becomes_plain_text(stored, shown):
    assert plain(stored, lambda uid: NAMES.get(uid, uid)) == shown


@pytest.mark.parametrize(
    "cents, text",
    [
        (None, None),
        (0, "0.00"),
        (5, "0.05"),
        (200000000, "2000000.00"),
        (123456789, "1234567.89"),
        (-150, "-1.50"),
    ],
)
def test_money_is_exact(cents, text):
    assert _money(cents) == text


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-Olu", "'-Olu"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("", ""),
        ("Paragon", "Paragon"),
        (None, None),
        (3, 3),
    ],
)
def test_formula_cells_are_made_text(value, cell):
    assert _cell(value) == cell
