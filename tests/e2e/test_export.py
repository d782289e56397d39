"""The admin's export as a person opens it: a CSV that Excel reads as UTF-8 (a byte-order mark), every field the bot
holds, people by name (Slack's users.info), times in BOT_TIMEZONE to the second, money exact, no Slack markup, and no
cell a spreadsheet would run as a formula. Read back with the csv module, as any spreadsheet would."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.services.exports import csv_rows
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, REVIEWER

FILE = (
    'file vendor="Société Générale de Surveillance" product=Graphite agency=ICE value=$1,234,567.89 '
    'awarded=2024-09-27 term="12 months" third_party=yes parent="=HYPERLINK(1)" contract_no=70CMSD24C00000123 '
    'scope="Mobile forensics for <@UMANAGE1>, see <https://example.gov/sow|the SOW>"'
)


def export(running, fmt: str, n: int) -> tuple[str, bytes]:
    r = running.command("admin export" if fmt == "csv" else "admin export json", user=ADMIN)
    assert r.status == 200 and fmt.upper() in str(r.json)
    running.double.wait_for(lambda d: len(d.files()) == n)
    f = running.double.files()[-1]
    return f["name"], f["content"]


def test_the_admin_export_is_what_a_spreadsheet_and_an_auditor_need(running):
    double = running.double
    double.set_user(REVIEWER, real_name="Renée Reviewer")
    double.set_user(MEMBER, real_name="Mel Member")
    double.set_user(MANAGER, real_name="Max Manager")
    double.set_user(OFFICIAL, real_name="-Olu Official")  # a name a spreadsheet would take for a formula
    assert running.command(FILE, user=MEMBER).status == 200
    running.command(f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    running.clock.advance(
        timedelta(seconds=90, microseconds=123456)
    )  # a time with microseconds: the export shows whole seconds
    running.command('answer CR-1 SCOPE-1 yes note="SOW §3, <https://example.gov/a|annex A>"', user=REVIEWER)
    running.command('determine CR-1 prohibited reason="IU-1 risk"', user=OFFICIAL)

    name, content = export(running, "csv", 1)
    assert name.endswith(".csv") and content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads UTF-8
    banner, (row,) = csv_rows(content)
    assert banner == "CUI"  # CUI_BANNER, first and last line (contract records are CUI)
    assert row["reference"] == "CR-1" and row["vendor"] == "Société Générale de Surveillance"
    assert (
        row["contract_no"] == "70CMSD24C00000123"
        and row["term"] == "12 months"
        and row["third_party"] == "yes"
    )
    assert row["parent"] == "'=HYPERLINK(1)"  # no spreadsheet formula
    assert row["value_usd"] == "1234567.89"  # exact, not 1234567.8900000001
    assert row["scope"] == "Mobile forensics for Max Manager, see the SOW (https://example.gov/sow)"
    assert row["filed_by"] == "Mel Member" and row["filed_at"] == "2026-11-24T10:00:00-05:00"
    assert row["reviewers"] == "Renée Reviewer"
    assert row["answer_SCOPE-1"] == "yes" and row["answered_by_SCOPE-1"] == "Renée Reviewer"
    assert row["note_SCOPE-1"] == "SOW §3, annex A (https://example.gov/a)"
    assert row["answered_at_SCOPE-1"] == "2026-11-24T10:01:30-05:00"
    assert row["determined_by"] == "'-Olu Official" and row["determination"] == "prohibited"
    assert row["operational_use_permitted"] == "no"
    for cell in row.values():  # no Slack markup anywhere: no mentions, links or `code`
        assert "<@" not in cell and "<http" not in cell and "`" not in cell, cell

    name, content = export(running, "json", 2)
    document = json.loads(content)
    assert document["banner"] == "CUI"
    (record,) = document["contracts"]
    assert name.endswith(".json") and record["value_usd"] == "1234567.89"
    assert record["reviewers"] == ["Renée Reviewer"] and record["operational_use_permitted"] is False
    assert record["answers"]["SCOPE-1"] == {
        "answer": "yes",
        "note": "SOW §3, annex A (https://example.gov/a)",
        "answered_by": "Renée Reviewer",
        "answered_at": "2026-11-24T10:01:30-05:00",
    }
    assert record["parent"] == "=HYPERLINK(1)"  # JSON is data, not a spreadsheet: kept as typed
    # each person was looked up once, however often they appear
    looked_up = [c.params.get("user") for c in double.calls("users.info")]
    assert sorted(looked_up) == sorted(set(looked_up))
