"""What a user meets at the edges of `/contract` text, over real HTTP: oversize bodies, marking syntax versus
talk of clearances, escaped quotes, yes/no words and `admin set KEY=VALUE`, commas between mentions."""

from __future__ import annotations

from bot.domain.args import COMMAND_TEXT_MAX
from tests.conftest import ADMIN, MANAGER, MEMBER
from tests.reliability.support import audit_rows, command_reply, fingerprint, settle


def test_a_two_megabyte_command_is_refused_unread_and_changes_nothing(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    before = fingerprint(running)
    for text in (
        'stopwork CR-1 reason="' + "x" * 2_000_000 + '"',
        "show " + "<@" * 1_000_000,  # a `<` without its `>`, a million times: once a search each
    ):
        status, words, _ = command_reply(running, text, MANAGER)
        assert status == 200, words[:300]
        assert "The command is too long" in words and f"{COMMAND_TEXT_MAX:,}" in words, words[:300]
        assert "xxxxx" not in words and "&lt;@&lt;@" not in words  # the text itself is not echoed
    settle(running)
    assert fingerprint(running) == before
    refused = audit_rows(running, "stopwork")
    assert refused and refused[-1]["outcome"] == "refused"  # an attempt at an action is audited as refused


def test_clearance_wording_is_filed_and_a_disguised_marking_is_refused_with_how_to_rephrase(running):
    scope = (
        "Staff must hold TS/SCI clearances; a SECRET facility clearance (DD-254) is required. "
        '(S)upport for 12 months. The vendor said \\"no\\" to source escrow.'
    )
    status, words, _ = command_reply(
        running,
        f'file vendor="Paragon Solutions" product=Graphite agency=ICE third_party=true scope="{scope}"',
        MEMBER,
    )
    assert status == 200 and "CR-1" in words, words
    c = running.bot.service.show(1)
    assert c.scope.endswith('The vendor said "no" to source escrow.') and "TS/SCI clearances" in c.scope
    before = fingerprint(running)
    for marked in ("T0P 5ECRET annex", "T O P S E C R E T", "S-E-C-R-E-T//NOFORN", "(S) the tool"):
        status, words, _ = command_reply(
            running, f'file vendor=V product=P agency=A scope="{marked}"', MEMBER
        )
        assert status == 200 and "looks like a classification marking" in words, (marked, words)
        assert "TS/SCI clearances" in words and "unclassified reference" in words, words
    assert fingerprint(running) == before


def test_yes_no_words_admin_set_key_value_and_commas_between_mentions(running):
    status, words, _ = command_reply(running, "admin set digest=false", ADMIN)
    assert status == 200 and "digest" in words and "Usage" not in words, words
    status, words, _ = command_reply(running, "admin set reminder_hour=8", ADMIN)
    assert status == 200 and "Usage" not in words, words
    status, words, _ = command_reply(running, "admin settings", ADMIN)
    assert "8" in words, words
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    before = fingerprint(running)
    status, words, _ = command_reply(running, "assign CR-1 <@U0REVIEW1>, <@U0REVIEW2>", MANAGER)
    assert "Separate mentions with spaces, not commas" in words and "not a user mention" not in words, words
    assert fingerprint(running) == before
