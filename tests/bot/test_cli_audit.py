"""`contract-bot audit verify` and `contract-bot export` against the database a running bot wrote.

Tampering is done the way an insider would: SQL straight on the database, behind the bot's back.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from sqlalchemy import text

from bot.services.exports import csv_rows
from tests.conftest import MANAGER, OFFICIAL, REVIEWER, pg_audit_key_file

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE value=2000000 awarded=2024-09-27'


def sql(running, statement: str, **params) -> None:
    with running.bot.engine.begin() as conn:
        conn.execute(text(statement), params)


def build_log(running) -> int:
    """A small review with a refusal in it; returns how many audit entries there are."""
    running.command(FILE)
    running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER)
    running.command('stopwork CR-1 reason="check" on=2024-10-08', user=MANAGER)
    running.command('stopwork CR-1 reason="again"', user=OFFICIAL)  # refused: audited
    running.command('resume CR-1 reason="done"', user=MANAGER)
    with running.bot.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()


def test_verify_detects_an_edited_entry(running, cli):
    n = build_log(running)
    assert n >= 8
    code, out, _ = cli("audit", "verify", "--no-checkpoints")
    assert code == 0 and f"{n} entries" in out

    # an edit of a refusal's text in the middle of the log
    sql(running, "UPDATE audit_entry SET detail = 'nothing happened' WHERE outcome = 'refused'")
    seq = _seq(running, "outcome = 'refused'")
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1
    assert (
        f"BROKEN at entry #{seq} " in err
        and "edited" in err
        and f"{seq - 1} entries before it verified" in err
    )

    # an editor who also recomputes the row's hash, without the key, is caught at that row
    from storage import repositories as repo
    from storage.db import unit_of_work
    from storage.models import AuditEntry

    with unit_of_work(running.bot.session_factory) as s:
        entry = s.get(AuditEntry, _id(running, seq))
        forged = repo.audit_hash(entry)
    sql(running, "UPDATE audit_entry SET hash = :h WHERE seq = :seq", h=forged, seq=seq)
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1 and f"BROKEN at entry #{seq} " in err and "not sealed with the key" in err


def test_verify_detects_an_edited_newest_entry_even_with_its_hash_recomputed(running, cli):
    n = build_log(running)
    sql(running, "UPDATE audit_entry SET actor = 'USOMEONE' WHERE seq = :seq", seq=n)
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1 and f"entry #{n} " in err and "edited" in err

    from storage import repositories as repo
    from storage.db import unit_of_work
    from storage.models import AuditEntry

    with unit_of_work(running.bot.session_factory) as s:
        forged = repo.audit_hash(s.get(AuditEntry, _id(running, n)))
    sql(running, "UPDATE audit_entry SET hash = :h WHERE seq = :seq", h=forged, seq=n)
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1 and "BROKEN" in err


def test_verify_detects_a_deleted_entry(running, cli):
    n = build_log(running)
    sql(running, "DELETE FROM audit_entry WHERE seq = 3")
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1
    assert "BROKEN at entry #4 " in err and "entry 3 is missing" in err and "deleted" in err
    assert n > 4


def test_verify_detects_deleting_the_newest_entries(running, cli):
    n = build_log(running)
    sql(running, "DELETE FROM audit_entry WHERE seq = :seq", seq=n)
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1
    assert f"BROKEN at entry #{n - 1} " in err and f"{n} were written" in err and "newest" in err
    # the bot keeps appending after the tampering; the gap stays visible
    running.command('stopwork CR-1 reason="again"', user=MANAGER)
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1 and f"entry {n} is missing" in err


@pytest.mark.long
def test_the_installed_command_exits_non_zero_on_tampering(running, database, tmp_path):
    """The same check as an operator runs it: `contract-bot audit verify` in its own process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    url, schema = database
    if schema:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    n = build_log(running)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | {"DATABASE_URL": url}
    if schema:
        env["AUDIT_KEY_FILE"] = pg_audit_key_file()
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(root)

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "audit", "verify", "--no-checkpoints"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = verify()
    assert ok.returncode == 0 and f"{n} entries" in ok.stdout, ok.stderr
    assert "hunter2" not in ok.stdout and ("sqlite" in ok.stdout or "postgresql" in ok.stdout)
    sql(running, "UPDATE audit_entry SET after = NULL WHERE seq = 5")
    broken = verify()
    assert broken.returncode == 1 and "BROKEN at entry #5 " in broken.stderr, broken.stderr


def test_export_csv_and_json_to_a_file_and_stdout(running, cli, tmp_path, monkeypatch):
    monkeypatch.delenv(
        "SLACK_BOT_TOKEN", raising=False
    )  # offline: people are shown by their IDs, and it says so
    build_log(running)
    running.command('determine CR-1 prohibited reason="IU-1"', user=OFFICIAL)
    out_file = tmp_path / "export.csv"
    code, _, err = cli("export", "--format", "csv", "--out", str(out_file))
    assert code == 0 and str(out_file) in err and ("from sqlite" in err or "from postgresql" in err)
    assert "shown by their Slack user IDs (set SLACK_BOT_TOKEN" in err
    raw = out_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    _, rows = csv_rows(raw)
    assert len(rows) == 1
    row = rows[0]
    assert (
        row["reference"] == "CR-1"
        and row["vendor"] == "Paragon Solutions"
        and row["value_usd"] == "2000000.00"
    )
    assert (
        row["determination"] == "prohibited"
        and row["answer_SCOPE-1"] == "yes"
        and row["answered_by_SCOPE-1"] == REVIEWER
        and row["status"] == "prohibited"
    )
    assert row["stopwork_since"] == "" and row["operational_use_permitted"] == "no"
    assert row["red_flags"] == "" and row["determination_reason"] == "IU-1"  # empty cells are not prefixed
    assert row["still_missing"].startswith("the determination is prohibited")  # no `markup`

    code, out, err = cli("export", "--format", "json")
    assert code == 0 and "exported from" in err
    document = json.loads(out.removeprefix("\ufeff"))
    assert document["banner"] == "CUI"
    data = document["contracts"]
    assert data[0]["reference"] == "CR-1" and data[0]["determination"] == "prohibited"
    assert data[0]["awarded_on"] == "2024-09-27" and "only a waiver" in " ".join(data[0]["still_missing"])
    assert data[0]["value_usd"] == "2000000.00"

    code, out, _ = cli("export", "--format", "csv")  # standard output: the same bytes, BOM included
    assert code == 0 and out.startswith("\ufeffCUI\r\nreference,")


def _seq(running, where: str) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(text(f"SELECT min(seq) FROM audit_entry WHERE {where}")).scalar_one()


def _id(running, seq: int) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM audit_entry WHERE seq = :seq"), {"seq": seq}).scalar_one()
