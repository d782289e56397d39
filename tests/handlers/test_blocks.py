"""handlers.blocks: pages of the audit log, within Slack's limits whatever the entries hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block

from bot.services.reviews import Timeline
from bot.services.views import page_of
from handlers import blocks, limits
from handlers.ids import ActionId
from storage.models import AuditEntry

NY = ZoneInfo("America/New_York")
SHORTENED = "was too long for one Slack message"


def entries(n: int, *, hostile: bool = False) -> list[AuditEntry]:
    start = datetime(2026, 1, 1, 15, tzinfo=UTC)
    evil = "&<>" * 700 if hostile else "why"
    return [
        AuditEntry(
            seq=10_000 + i,
            at=start + timedelta(hours=i),
            actor="W" + "9" * 10,
            action="stopwork-extend" if hostile else "answer",
            outcome="refused" if hostile and i % 2 else "ok",
            contract_id=7,
            before=json.dumps({"stopwork_reason": evil, "status": "in-review"}),
            after=json.dumps({"stopwork_reason": evil + "2", "status": "stop-work", "qid": "CI-4"}),
            detail=evil,
            prev_hash="0",
            hash="0",
        )
        for i in range(n)
    ]


def timeline(all_entries: list[AuditEntry], number: int) -> Timeline:
    page = page_of(len(all_entries), number, 40, "audit entries of CR-7")
    end = len(all_entries) - page.offset
    start = max(end - 40, 0)
    return Timeline("CR-7", tuple(all_entries[start:end]), 7, page, start + 1)


def within_limits(message: dict) -> None:
    assert limits.problems(message) == [], limits.problems(message)
    assert SHORTENED not in json.dumps(message)
    parsed = Block.parse_all(message["blocks"])
    for block in parsed:
        block.validate_json()
    assert [b.to_dict() for b in parsed] == message["blocks"]  # nothing the Block Kit models do not know


@pytest.mark.parametrize("hostile", [False, True])
def test_every_page_of_402_entries_fits_and_says_which_entries_it_shows(hostile):
    log = entries(402, hostile=hostile)
    seen: list[int] = []
    for number in range(1, 12):
        message = blocks.build_timeline(timeline(log, number), NY)
        within_limits(message)
        text = json.dumps(message)
        positions = [
            int(p)
            for p in re.findall(
                r"\*(\d+)\.\* ",
                " ".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section"),
            )
        ]
        assert positions == sorted(positions)  # each page reads in time order
        seen += positions
        first, last = positions[0], positions[-1]
        assert (
            f"entries {first}–{last} of 402" in message["text"] and f"page {number} of 11" in message["text"]
        )
        buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        if number < 11:
            assert [b["action_id"] for b in buttons] == [ActionId.AUDIT_MORE.value]
            assert buttons[0]["value"] == f"7:{number + 1}"
            assert f"page={number + 1}" in text and "The first entries are on page 11" in text
        else:
            assert buttons == [] and "begins with the contract's first entry" in text
    assert sorted(seen) == list(range(1, 403))  # every entry on exactly one page
    assert seen[:40] == list(range(363, 403))  # page 1 holds the newest


def test_a_short_log_is_one_page_in_time_order():
    message = blocks.build_timeline(timeline(entries(3), 1), NY)
    within_limits(message)
    assert message["text"] == "Audit timeline of CR-7: all 3 entries, oldest first"
    assert not [b for b in message["blocks"] if b["type"] == "actions"]


def test_an_audit_line_names_what_changed_before_the_long_texts():
    line = blocks._diff(
        json.dumps({"answer": "yes", "note": "n" * 500, "by": "U1"}),
        json.dumps({"qid": "CI-4", "answer": "no", "note": "m" * 500, "by": "U1"}),
    )
    assert line.startswith(" (question CI-4; answer: yes → no; note: ")
    assert "…" in line  # the long note is visibly shortened


FILING = {
    "vendor": "Paragon Solutions",
    "product": "Graphite",
    "agency": "ICE",
    "component": "HSI",
    "value_cents": 200_000_000,
    "awarded_on": "2024-09-27",
    "term": "one year",
    "purpose": "operational",
    "third_party": False,
    "parent": "Paragon Solutions Ltd. (Israel)",
    "contract_no": "70CMSD24C00000010",
    "scope": "a one-year licence",
    "status": "intake",
    "stopwork_since": None,
}


def entry(action: str, before: dict | None, after: dict | None, *, actor: str = "UMAX1", seq: int = 4):
    return AuditEntry(
        seq=seq,
        at=datetime(2026, 1, 1, 15, tzinfo=UTC),
        actor=actor,
        action=action,
        outcome="ok",
        contract_id=7,
        before=None if before is None else json.dumps(before),
        after=None if after is None else json.dumps(after),
        prev_hash="0",
        hash="0",
    )


def lines_of(message: dict) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def test_a_filing_entry_shows_every_field_in_words_and_people_as_mentions():
    log = [
        entry("file", None, FILING),
        entry("assign", None, {"reviewers": ["UREV1", "UREV2"]}, seq=9),
        entry(
            "answer", {"answer": None}, {"qid": "CI-4", "answer": "yes", "by": "UREV1"}, actor="UREV1", seq=12
        ),
        entry(
            "answer",
            {"answer": "yes", "by": "UREV1"},
            {"qid": "CI-4", "answer": "no", "by": "UREV2"},
            actor="UREV2",
        ),
    ]
    text = lines_of(blocks.build_timeline(timeline(log, 1), NY))
    for shown in (
        "vendor set to Paragon Solutions",
        "value set to $2,000,000",
        "third party operates it set to no",
        "ultimate owner set to Paragon Solutions Ltd. (Israel)",
        "contract no. set to 70CMSD24C00000010",
        "scope set to a one-year licence",
        "awarded set to 2024-09-27",
        "term set to one year",
        "component set to HSI",
        "purpose set to operational",
        "status set to intake",
        "reviewers set to <@UREV1>, <@UREV2>",
        "question CI-4; answer set to yes",
        "question CI-4; answer: yes → no; answered by: <@UREV1> → <@UREV2>",
    ):
        assert shown in text, shown
    assert "stop-work since" not in text  # nothing to nothing is no change
    assert "answered by set to" not in text  # who first answered is the entry's actor, already named
    assert "more" not in text and "…" not in text  # nothing left out or shortened
    assert (
        "*1.*" in text and "*3.*" in text and "`#12`" in text
    )  # numbered per contract; the chain's number kept


def test_a_cleared_value_says_cleared_never_an_arrow_to_nothing():
    log = [
        entry(
            "resume",
            {"status": "stop-work", "stopwork_since": "2024-10-08", "stopwork_reason": "HSI order"},
            {"status": "cleared", "stopwork_since": None, "stopwork_reason": None},
        )
    ]
    text = lines_of(blocks.build_timeline(timeline(log, 1), NY))
    assert "status: stop-work → cleared" in text
    assert (
        "stop-work since cleared (was 2024-10-08)" in text
        and "stop-work reason cleared (was HSI order)" in text
    )
    assert "→ —" not in text and "→ )" not in text


def test_the_bots_own_changes_name_the_bot():
    log = [entry("status", {"status": "waiting"}, {"status": "cleared"}, actor="contract-bot")]
    text = lines_of(blocks.build_timeline(timeline(log, 1), NY))
    assert "_contract-bot_ *status*" in text and "<@contract-bot>" not in text


def test_an_entry_too_long_for_its_page_says_how_many_fields_it_leaves_out():
    huge = {f"field_{i:02d}": "x" * 400 for i in range(40)}
    log = [entry("file", None, huge, seq=100 + i) for i in range(40)]
    message = blocks.build_timeline(timeline(log, 1), NY)
    within_limits(message)
    text = lines_of(message)
    assert re.search(r"and \d+ more\)", text)
    for line in text.split("\n"):
        if re.match(r"\*\d+\.\*", line):
            shown = len(re.findall(r"field \d\d set to", line))
            left = int(re.search(r"and (\d+) more", line).group(1))
            assert shown + left == 40, line  # every field either shown or counted


def test_question_and_parent_blocks_get_new_block_ids_only_where_they_changed():
    from slack_sdk.models.blocks import SectionBlock

    one = blocks.versioned([blocks.section("a"), blocks.section("b")], "q:CI-4:")
    two = blocks.versioned([blocks.section("a"), blocks.section("c")], "q:CI-4:")
    assert one[0]["block_id"] == two[0]["block_id"] and one[1]["block_id"] != two[1]["block_id"]
    assert len({b["block_id"] for b in one}) == 2 and all(len(b["block_id"]) <= 255 for b in one)
    assert isinstance(Block.parse(one[0]), SectionBlock)
