"""The sealed record (issue 14): attacks on the audit log by someone who can write the database but does not hold
AUDIT_KEY_FILE, each done with SQL behind the bot's back, and each caught by `contract-bot audit verify`.

The checkpoints are read back from the Slack double (conversations.history with message metadata), as the command
does in production; one test uses a saved copy (`audit checkpoints --out FILE`, then `--checkpoints FILE`).
"""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.app import create_app
from bot.clock import ManualClock
from storage import audit
from storage.db import make_engine, migrate, unit_of_work
from storage.models import AuditEntry, AuditHead
from tests.conftest import ADMIN, MANAGER, MANAGERS, OFFICIAL, REVIEWER, START, make_settings

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE value=2000000 awarded=2024-09-27'


@pytest.fixture
def verify(cli, running, monkeypatch):
    """`contract-bot audit verify` reading the checkpoints from the Slack double; returns (code, out, err)."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", running.double.api_url)
    monkeypatch.setenv(
        "MANAGER_CHANNEL", MANAGERS
    )  # no AUDIT_CHANNEL: checkpoints go to the managers' channel

    def run(*extra: str) -> tuple[int, str, str]:
        return cli("audit", "verify", *extra)

    return run


def sql(running, statement: str, **params) -> None:
    with running.bot.engine.begin() as conn:
        conn.execute(text(statement), params)


def head_seq(running) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one()


def checkpoint(running) -> int:
    """Post a checkpoint of the head now (what the daily job does) and deliver it; returns its sequence number."""
    cp = running.bot.seal.checkpoint(force=True)
    assert cp is not None
    running.deliver()
    return cp.seq


def review(running) -> None:
    """A review that ends prohibited: filed, answered, stop-work, a refused action, determined."""
    running.command(FILE)
    running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER)
    running.command('stopwork CR-1 reason="check" on=2024-10-08', user=MANAGER)
    running.command('stopwork CR-1 reason="again"', user=OFFICIAL)  # refused: audited
    running.command('determine CR-1 prohibited reason="IU-1 red flag"', user=OFFICIAL)


def rechain(running, from_seq: int, key: bytes | None = None) -> None:
    """What an insider does after editing an entry: recompute every later hash and the head (plain SHA-256, or a
    key of their own), so that each link holds again."""
    with Session(running.bot.engine) as s:
        entries = list(s.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
        prev = audit.GENESIS
        for e in entries:
            if e.seq >= from_seq:
                e.prev_hash = prev
                e.hash = audit.audit_hash(e, key)
                s.add(e)
            prev = e.hash
        head = s.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = (entries[-1].seq, entries[-1].hash) if entries else (0, audit.GENESIS)
        s.add(head)
        s.commit()


def entry_seq(running, action: str) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(
            text("SELECT min(seq) FROM audit_entry WHERE action = :a AND outcome = 'ok'"), {"a": action}
        ).scalar_one()


def test_an_edited_entry_with_the_chain_recomputed_is_caught(running, verify):
    review(running)
    checkpoint(running)
    code, out, err = verify()
    assert code == 0, err
    assert "sealed chain intact" in out and "1 checkpoints from channel CMANAGER1 match" in out

    # prohibited -> not-risky in the determination's entry, then every later hash and the head recomputed
    seq = entry_seq(running, "determine")
    sql(
        running,
        "UPDATE audit_entry SET after = replace(after, 'prohibited', 'not-risky') WHERE seq = :s",
        s=seq,
    )
    rechain(running, seq)
    code, _, err = verify()
    assert code == 1 and f"BROKEN at entry #{seq} " in err and "not sealed with the key" in err

    # the same with a key of the forger's own: still not the bot's key
    rechain(running, seq, key=b"a key the forger made up, 32 by")
    code, _, err = verify()
    assert code == 1 and f"BROKEN at entry #{seq} " in err and "edited (or its hash forged)" in err


def test_reordered_entries_are_caught(running, verify):
    review(running)
    # swap two entries' places in the chain and recompute the links, as a forger without the key must
    sql(running, "UPDATE audit_entry SET seq = -1 WHERE seq = 3")
    sql(running, "UPDATE audit_entry SET seq = 3 WHERE seq = 4")
    sql(running, "UPDATE audit_entry SET seq = 4 WHERE seq = -1")
    code, _, err = verify("--no-checkpoints")
    assert code == 1 and "BROKEN at entry #3 " in err
    rechain(running, 3)
    code, _, err = verify("--no-checkpoints")
    assert code == 1 and "BROKEN at entry #3 " in err and "not sealed with the key" in err


def test_truncation_after_a_checkpoint_and_deleting_everything_are_caught(running, verify):
    review(running)
    for user in ("UOTHER1", "UOTHER2", "UOTHER3"):  # the newest entries, about no contract
        running.bot.service.grant(ADMIN, user, "reviewer")
    n = checkpoint(running)
    assert n == head_seq(running) and n > 6
    # the newest entries deleted and the head set back to the last one kept: the chain itself is whole
    sql(running, "DELETE FROM audit_entry WHERE seq > :k", k=n - 3)
    sql(
        running,
        "UPDATE audit_head SET seq = :k, hash = (SELECT hash FROM audit_entry WHERE seq = :k) WHERE id = 1",
        k=n - 3,
    )
    code, _, err = verify("--no-checkpoints")
    assert code == 0  # what the chain alone cannot see
    code, _, err = verify()
    assert code == 1
    assert (
        f"records entry {n} but the log ends at entry {n - 3}" in err and "newest entries were deleted" in err
    )

    # everything deleted
    sql(running, "DELETE FROM audit_entry")
    sql(running, "UPDATE audit_head SET seq = 0, hash = :g WHERE id = 1", g=audit.GENESIS)
    code, _, err = verify()
    assert code == 1 and f"records entry {n} but the log ends at entry 0" in err


def test_a_restored_old_copy_written_on_is_caught(running, verify):
    review(running)
    old = checkpoint(running)
    with running.bot.engine.connect() as conn:  # the backup: the log as it stood at the first checkpoint
        kept = conn.execute(text("SELECT hash FROM audit_entry WHERE seq = :s"), {"s": old}).scalar_one()
    running.command('resume CR-1 reason="lifted"', user=MANAGER)
    running.command('close CR-1 reason="terminated"', user=MANAGER)
    new = checkpoint(running)
    assert new > old
    # restored: the newer entries are gone (the contract row too would be the old one: put it back as it was)
    sql(running, "DELETE FROM audit_entry WHERE seq > :s", s=old)
    sql(running, "UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1", s=old, h=kept)
    sql(
        running,
        "UPDATE contract SET stopwork_since = '2024-10-08', stopwork_lifted_on = NULL, closed_on = NULL",
    )
    code, _, err = verify()
    assert code == 1 and f"records entry {new} but the log ends at entry {old}" in err
    # and the bot keeps writing on the restored copy, past the newer checkpoint's entry
    for _ in range(new - old + 1):
        running.command("answer CR-1 SCOPE-2 no", user=REVIEWER)
    assert head_seq(running) > new
    code, _, err = verify()
    assert code == 1 and f"entry {new} does not match the checkpoint of" in err and "rewritten" in err


def test_a_contract_row_edited_without_audit_is_caught(running, verify):
    review(running)
    checkpoint(running)
    code, out, _ = verify()
    assert code == 0 and "1 contracts match their audit trail" in out
    # "certified, notified, no stop-work": show and the export would say operational use is permitted
    sql(
        running,
        "UPDATE contract SET determination = 'not-risky', certified_on = '2024-11-01', certified_by = 'X', "
        "notice_on = '2024-11-02', stopwork_since = NULL",
    )
    code, _, err = verify()
    assert code == 1
    assert "CR-1: its stored determination is 'not-risky' but its audit trail says 'prohibited'" in err
    assert "changed without an audit entry" in err
    sql(
        running,
        "UPDATE contract SET determination = 'prohibited', certified_on = NULL, certified_by = NULL, "
        "notice_on = NULL, stopwork_since = '2024-10-08'",
    )
    assert verify()[0] == 0
    sql(running, "UPDATE question SET answer = 'no' WHERE qid = 'SCOPE-1'")  # an answer flipped
    code, _, err = verify()
    assert code == 1 and "CR-1 SCOPE-1: the stored answer is 'no' but its audit trail says 'yes'" in err
    sql(running, "UPDATE question SET answer = 'yes' WHERE qid = 'SCOPE-1'")
    sql(
        running,
        "INSERT INTO contract (id, vendor, product, agency, status, filed_by, filed_at) "
        "SELECT 99, vendor, product, agency, status, filed_by, filed_at FROM contract WHERE id = 1",
    )
    code, _, err = verify()
    assert code == 1 and "CR-99 has no filing in the audit log" in err


def test_checkpoints_every_100_entries_saved_copy_and_forgery(running, verify, cli, tmp_path):
    start = head_seq(running)
    with unit_of_work(running.bot.session_factory) as s:
        for i in range(100):
            audit.record_audit(s, at=running.clock.now(), actor=ADMIN, action="admin set", detail=str(i))
    running.deliver()
    posted = [
        m
        for m in running.double.messages(MANAGERS)
        if ((m.get("metadata") or {}).get("event_payload") or {}).get("kind") == audit.CHECKPOINT_KIND
    ]
    assert len(posted) == 1  # one per hundred entries, not one per entry
    payload = posted[0]["metadata"]["event_payload"]
    assert payload["seq"] == start + 100 and payload["seq"] == head_seq(running)
    assert posted[0]["metadata"]["event_type"] == "contract_bot_outbox"  # every post names its outbox row
    assert set(payload) >= {"seq", "head", "at", "mac", "outbox_id"} and posted[0]["text"].startswith(
        "Audit checkpoint: entry"
    )

    saved = tmp_path / "checkpoints.jsonl"
    code, _, err = cli("audit", "checkpoints", "--out", str(saved))
    assert code == 0 and "saved 1 checkpoints from channel CMANAGER1" in err
    line = json.loads(saved.read_text())
    assert line == {k: payload[k] for k in ("seq", "head", "at", "mac")}
    code, out, err = verify("--checkpoints", str(saved))
    assert code == 0 and f"1 checkpoints from {saved} match" in out, err

    # a checkpoint made up by someone who can post in the channel (or edit the saved copy) but has no key
    forged = dict(line, seq=line["seq"] + 50, mac="0" * 64)
    saved.write_text(saved.read_text() + json.dumps(forged) + "\n")
    code, _, err = verify("--checkpoints", str(saved))
    assert code == 1 and "is not signed with the audit key: it was forged or edited" in err


def test_the_daily_job_checkpoints_verifies_and_tells_the_admins_once(running, verify):
    review(running)
    assert running.bot.seal.daily_job().ok  # today's verification, and today's checkpoint
    running.deliver()
    assert running.bot.seal.daily_job() is None  # once a day, across processes
    sql(running, "UPDATE contract SET determination = 'not-risky'")
    running.clock.advance(timedelta(days=1))
    verdict = running.bot.seal.daily_job()
    assert verdict is not None and not verdict.ok
    running.deliver()
    dm = running.double.dm_channel(ADMIN)
    texts = [m["text"] for m in running.double.messages(dm)]
    assert any("The audit log failed verification: CR-1: its stored determination" in t for t in texts), texts
    assert not any("failed verification" in m.get("text", "") for m in running.double.messages(MANAGERS))
    # the failure is itself in the (sealed) log
    assert entry_seq(running, "audit verify") is None  # recorded as outcome "failed", not "ok"
    code, _, err = verify()
    assert code == 1 and "CR-1: its stored determination" in err


def test_a_log_from_before_the_key_is_sealed_on_the_first_start(database, double, tmp_path, cli_env):
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    with unit_of_work(lambda: Session(engine, expire_on_commit=False)) as s:  # an older contract-bot: no key
        for i in range(5):
            audit.record_audit(s, at=START, actor=ADMIN, action="admin set", detail=f"old {i}")
    with engine.connect() as conn:
        old_head = conn.execute(text("SELECT hash FROM audit_head")).scalar_one()
    bot = create_app(make_settings(double, url), engine=engine, clock=ManualClock(START))
    try:
        with Session(engine) as s:
            seal = s.exec(select(AuditEntry).where(AuditEntry.action == audit.SEAL_ACTION)).one()
        assert (
            seal.seq == 6
            and seal.prev_hash == old_head
            and json.loads(seal.detail or "{}")["sealed_seq"] == 5
        )
        bot.dispatcher.deliver_due()
        code, out, err = cli_env("audit", "verify")
        assert code == 0 and "5 carried over from before the key" in out and "1 checkpoints" in out, err
        # the carried-over entries are plain SHA-256: rewritten and re-linked up to the seal, the seal still binds them
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_entry SET detail = 'rewritten' WHERE seq = 2"))
        with Session(engine) as s:
            prev = audit.GENESIS
            for e in s.exec(select(AuditEntry).where(AuditEntry.seq <= 5).order_by(AuditEntry.seq)):
                e.prev_hash, e.hash = prev, ""
                e.hash = prev = audit.audit_hash(e)
                s.add(e)
            s.commit()
        code, _, err = cli_env("audit", "verify")
        assert code == 1 and "BROKEN at entry #6 " in err and "prev_hash" in err
    finally:
        bot.stop()
    if not schema:
        key = tmp_path / "bot.db.audit-key"
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_rotating_the_key(running, verify, cli, tmp_path, monkeypatch, database):
    review(running)
    new_file = tmp_path / "new.audit-key"
    code, out, err = cli("audit", "rotate-key", "--new-key-file", str(new_file))
    assert code == 0 and "rotated the audit key at entry #" in out, err
    assert stat.S_IMODE(os.stat(new_file).st_mode) == 0o600
    assert cli("audit", "rotate-key", "--new-key-file", str(new_file))[0] == 2  # never replaced
    rotated = entry_seq(running, audit.ROTATE_ACTION)
    # the bot restarted with the new key file: its entries are sealed with the new key
    running.bot.seal.keys = audit.read_key_file(new_file)
    running.bot.seal.sealer.keys = running.bot.seal.keys
    running.command('resume CR-1 reason="lifted"', user=MANAGER)
    checkpoint(running)
    monkeypatch.setenv("AUDIT_KEY_FILE", str(new_file))
    code, out, err = verify()
    assert code == 0, err
    # the old key alone cannot vouch for what came after the rotation
    old = running.bot.settings.audit_key_file or f"{database[0].removeprefix('sqlite:///')}.audit-key"
    monkeypatch.setenv("AUDIT_KEY_FILE", old)
    code, _, err = verify("--no-checkpoints")
    assert code == 1 and f"BROKEN at entry #{rotated} " in err and "does not hold" in err


def test_postgresql_needs_a_key_and_says_so_in_one_line(double):
    from bot.services.seal import open_keys
    from storage.audit import AuditKeyError

    with pytest.raises(AuditKeyError) as exc:
        open_keys(make_settings(double, "postgresql+psycopg://u@h/d", audit_key_file=None), create=True)
    assert str(exc.value).startswith("AUDIT_KEY_FILE is required on PostgreSQL") and "\n" not in str(
        exc.value
    )


@pytest.fixture
def cli_env(database, double, monkeypatch, capsys):
    """`contract-bot …` in process on ``database`` (no running bot), reading checkpoints from the double."""
    from urllib.parse import quote

    from bot.cli import main
    from tests.conftest import pg_audit_key_file

    url, schema = database
    if schema:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
        monkeypatch.setenv("AUDIT_KEY_FILE", pg_audit_key_file())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", double.api_url)
    monkeypatch.setenv("MANAGER_CHANNEL", MANAGERS)
    for name in ("SLACK_APP_TOKEN", "REVIEW_CHANNEL", "ADMIN_USER_IDS", "AUDIT_CHANNEL"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_key_that_did_not_seal_the_log_stops_start_up_in_one_line(running, double, database, tmp_path):
    from storage.audit import AuditKeyError, new_key, write_key_file

    running.command(FILE)
    other = tmp_path / "other.audit-key"
    write_key_file(other, [new_key()])
    url, schema = database
    with pytest.raises(AuditKeyError) as exc:
        create_app(
            make_settings(double, url, audit_key_file=str(other)),
            engine=make_engine(url, schema=schema),
            clock=ManualClock(START),
        )
    said = str(exc.value)
    assert said.startswith(f"AUDIT_KEY_FILE ({other}) does not hold the key that sealed") and "\n" not in said
