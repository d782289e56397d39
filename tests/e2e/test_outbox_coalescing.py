"""Coalescing, end to end: pending edits of one message collapse to the newest (one chat.update of the parent after
a burst of answers), and an edit that would show what the message already shows is not sent."""

from __future__ import annotations

from sqlmodel import select

from storage import repositories as repo
from storage.db import read_only, unit_of_work
from storage.models import OutboxMessage
from tests.conftest import REVIEW, REVIEWER

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'


def edits(running, key: str) -> list[OutboxMessage]:  # noqa: ANN001
    """The queued edits of CR-1's message ``key``, oldest first."""
    with read_only(running.bot.session_factory) as s:
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.contract_id == 1, OutboxMessage.message_key == key, OutboxMessage.op == "update"
            )
            .order_by(OutboxMessage.id)
        )
        return list(s.exec(query).all())


def test_a_burst_of_answers_edits_the_parent_once(running):
    running.command(FILE)
    parent_ts = running.parent(1)["ts"]
    updates_before = len(running.double.calls("chat.update"))
    # NOTE: the test holds the dispatcher's lock so that the five answers queue up before any is delivered, as
    # they do when a reviewer answers faster than Slack's Tier 3 lets chat.update go
    with running.bot.dispatcher._lock:
        for i in range(1, 6):
            assert "Recorded" in running.command(f"answer CR-1 SCOPE-{i} yes", user=REVIEWER).json["text"]
    running.deliver()
    parent_edits = [
        c for c in running.double.calls("chat.update")[updates_before:] if c.params["ts"] == parent_ts
    ]
    assert len(parent_edits) == 1
    assert "answered 5 of" in running.double.message(REVIEW, parent_ts)["text"]
    queued = edits(running, "parent")
    assert [r.status for r in queued] == ["skipped"] * 4 + ["sent"]
    assert all("superseded by" in (r.last_error or "") for r in queued[:4])
    # each question's own edit went once (they are different messages)
    question_edits = [
        c for c in running.double.calls("chat.update")[updates_before:] if c.params["ts"] != parent_ts
    ]
    assert len(question_edits) == 5


def test_an_edit_that_changes_nothing_is_not_sent(running):
    running.command(FILE)
    running.parent(1)
    calls = len(running.double.calls("chat.update"))
    with unit_of_work(running.bot.session_factory) as s:
        repo.add_outbox(
            s,
            at=running.clock.now(),
            op="update",
            target="thread",
            contract_id=1,
            message_key="parent",
            payload={"render": "parent"},
        )
    running.deliver()
    assert len(running.double.calls("chat.update")) == calls
    (edit,) = edits(running, "parent")
    assert edit.status == "skipped" and "unchanged" in (edit.last_error or "")
    # a real change is sent
    running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER)
    running.deliver()
    assert edits(running, "parent")[-1].status == "sent"
