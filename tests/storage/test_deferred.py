"""storage.deferred: the rows a unit of work writes at its commit (outbox, signed request, audit chain), on both
databases: written in the order queued, kept across a savepoint's rollback, dropped with the transaction's, and a
clash on the signed request's key raised as the replay it is."""

from __future__ import annotations

import contextvars
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.services.replays import ReplayGuard
from storage import repositories as repo
from storage.audit import verify_audit_chain
from storage.db import READ_ONLY, session_factory, unit_of_work
from storage.deferred import defer_insert
from storage.models import Contract, SignedRequest, table_of
from storage.replays import AlreadyCarriedOut, watching

NOW = datetime(2024, 9, 27, 14, 0, tzinfo=UTC)


@pytest.fixture
def db(migrated_engine):
    return migrated_engine


def outbox_targets(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT target FROM outbox ORDER BY id"))]


def audit_actions(engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(text("SELECT seq, action FROM audit_entry ORDER BY seq"))]


def queue(s, target: str, at: datetime = NOW, contract_id: int | None = None) -> None:
    repo.add_outbox(s, at=at, op="post", target=target, payload={"text": target}, contract_id=contract_id)


def test_rows_are_written_at_the_commit_in_the_order_queued(db):
    factory = session_factory(db)
    with unit_of_work(factory) as s:
        for n in range(12):
            queue(s, f"C{n:02d}", contract_id=None if n % 2 else n)
        repo.record_audit(s, at=NOW, actor="U1", action="first")
        repo.record_audit(s, at=NOW + timedelta(seconds=1), actor="U1", action="second", after={"a": 1})
        assert outbox_targets(db) == []  # nothing before the commit
    assert outbox_targets(db) == [f"C{n:02d}" for n in range(12)]
    with unit_of_work(factory) as s:
        queue(s, "later")
        repo.record_audit(s, at=NOW, actor="U2", action="third")
    assert outbox_targets(db)[-1] == "later"
    assert audit_actions(db) == [(1, "first"), (2, "second"), (3, "third")]
    with factory() as s:
        checked, broken, why = verify_audit_chain(s)
        head = s.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar_one()
        payloads = [json.loads(p) for (p,) in s.execute(text("SELECT payload FROM outbox ORDER BY id"))]
    assert (checked, broken, why) == (3, None, None)
    assert head == 3
    assert payloads[0] == {"text": "C00"}


def test_a_savepoint_rolled_back_keeps_what_was_queued_before_it(db):
    factory = session_factory(db)
    with unit_of_work(factory) as s:
        queue(s, "kept")
        repo.record_audit(s, at=NOW, actor="U1", action="kept")
        with pytest.raises(RuntimeError), s.begin_nested():
            s.execute(text("SELECT 1"))
            raise RuntimeError("a clash inside a savepoint")
        queue(s, "after")
    assert outbox_targets(db) == ["kept", "after"]
    assert audit_actions(db) == [(1, "kept")]


def test_a_rollback_drops_everything_queued(db):
    factory = session_factory(db)
    with pytest.raises(RuntimeError), unit_of_work(factory) as s:
        queue(s, "never")
        repo.record_audit(s, at=NOW, actor="U1", action="never")
        raise RuntimeError("refused")
    with unit_of_work(factory) as s:
        queue(s, "next")
    assert outbox_targets(db) == ["next"]
    assert audit_actions(db) == []


def test_a_clash_on_the_signed_request_is_a_replay_and_writes_nothing(db):
    factory = session_factory(db)
    digest = "d" * 64
    with unit_of_work(factory) as s:
        s.add(SignedRequest(digest=digest, expires_at=NOW))
    with pytest.raises(AlreadyCarriedOut), unit_of_work(factory) as s:
        queue(s, "never")
        repo.record_audit(s, at=NOW, actor="U1", action="never")
        defer_insert(s, table_of(SignedRequest), {"digest": digest, "expires_at": NOW})
    assert outbox_targets(db) == []
    assert audit_actions(db) == []


def test_a_request_is_recorded_by_its_first_commit_even_when_only_the_orm_wrote(db):
    plain = session_factory(db)
    factory, guard = watching(plain), ReplayGuard(plain)

    def work():
        with unit_of_work(factory) as s:  # nothing ran before the commit: the transaction begins in it
            s.add(SignedRequest(digest="e" * 64, expires_at=NOW))

    def in_request():
        with guard.once("1800000000", "v0=abc"):
            work()

    contextvars.Context().run(in_request)
    with pytest.raises(AlreadyCarriedOut):
        contextvars.Context().run(in_request)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM signed_request")).scalar_one() == 2


def file_one(s) -> int:
    contract = repo.add_contract(
        s, Contract(vendor="V", product="P", agency="A", filed_by="UM", filed_at=NOW, status="intake")
    )
    assert contract.id is not None
    return contract.id


def test_a_new_contracts_questions_and_reminders_wait_for_the_commit_but_are_read_in_it(db):
    factory = session_factory(db)
    with unit_of_work(factory) as s:
        cid = file_one(s)
        repo.add_questions(
            s, [{"contract_id": cid, "qid": q, "asked_at": NOW} for q in ("SCOPE-1", "SCOPE-2")]
        )
        assert repo.add_reminder(s, key=f"c{cid}:ping", kind="ping", due_at=NOW, contract_id=cid)
        assert not repo.add_reminder(s, key=f"c{cid}:ping", kind="ping", due_at=NOW, contract_id=cid)
        with db.connect().execution_options(
            **{READ_ONLY: True}
        ) as other:  # not yet written (SQLite: a reader)
            assert other.execute(text("SELECT count(*) FROM question")).scalar_one() == 0
        # a read in the same transaction writes them first
        assert [q.qid for q in repo.list_questions(s, cid)] == ["SCOPE-1", "SCOPE-2"]
        assert [r.key for r in repo.list_pending_reminders(s, contract_id=cid, limit=10)] == [f"c{cid}:ping"]
        repo.add_questions(s, [{"contract_id": cid, "qid": "PROC-1", "asked_at": NOW}])
    with factory() as s:
        assert [q.qid for q in repo.list_questions(s, cid)] == ["SCOPE-1", "SCOPE-2", "PROC-1"]
        assert [r.key for r in repo.list_pending_reminders(s, contract_id=cid, limit=10)] == [f"c{cid}:ping"]


def test_a_stored_contracts_questions_and_reminders_are_written_at_once(db):
    factory = session_factory(db)
    with unit_of_work(factory) as s:
        cid = file_one(s)
    with unit_of_work(factory) as s:
        repo.add_questions(s, [{"contract_id": cid, "qid": "SCOPE-1", "asked_at": NOW}])
        assert repo.add_reminder(s, key=f"c{cid}:ping", kind="ping", due_at=NOW, contract_id=cid)
        s.flush()
        assert s.info.get("contract_bot_deferred_rows", {}).get("question") is None
        assert [q.qid for q in repo.list_questions(s, cid)] == ["SCOPE-1"]
