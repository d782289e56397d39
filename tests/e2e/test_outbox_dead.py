"""Messages Slack refuses for good, end to end against the strict double: the message is dead with what depends on
it (never retried every 2 s), the channel is recorded, the filer and the admins are told in Slack what to do, a
refused token is logged loudly and stops delivery, and `contract-bot outbox retry` sends everything once fixed."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlmodel import select

from storage import repositories as repo
from storage.channels import get_channel
from storage.db import read_only, unit_of_work
from storage.models import Contract, OutboxMessage
from tests.conftest import ADMIN, MANAGER, MANAGERS, MEMBER, REVIEW, REVIEWER
from tests.support.slack_double import Fault

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'


def rows(running, **where) -> list[OutboxMessage]:  # noqa: ANN001
    """Outbox rows, oldest first, filtered by column values."""
    with read_only(running.bot.session_factory) as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(s.exec(query).all())


def drain(running, rounds: int = 40) -> None:  # noqa: ANN001
    """Deliver until nothing is pending, moving the injected clock past each back-off."""
    for _ in range(rounds):
        running.deliver()
        if not rows(running, status="pending"):
            return
        running.clock.advance(timedelta(minutes=6))
        time.sleep(0.05)
    raise AssertionError(
        f"outbox not drained: {[(r.id, r.op, r.last_error) for r in rows(running, status='pending')]}"
    )


def dms_to(running, user: str) -> list[str]:  # noqa: ANN001
    """Texts of the direct messages the bot sent a user."""
    return [m["text"] for m in running.double.messages(running.double.dm_channel(user))]


def posts_to(running, channel: str) -> list:  # noqa: ANN001
    """chat.postMessage calls made to a channel (accepted or refused)."""
    return [c for c in running.double.calls("chat.postMessage") if c.params.get("channel") == channel]


def test_bot_not_in_the_review_channel_kills_the_thread_tells_filer_and_admins_and_retry_sends_it(
    running, cli
):
    running.double.remove(REVIEW)  # the bot was never invited (or was removed)
    assert "CR-1" in running.command(FILE, user=MEMBER).json["text"]
    drain(running)
    parent = rows(running, contract_id=1, message_key="parent", op="post")[0]
    assert parent.status == "dead" and "not_in_channel" in (parent.last_error or "")
    thread = [r for r in rows(running, contract_id=1) if r.id != parent.id]
    assert len(thread) == 6 and all(r.status == "dead" and r.depends_on == parent.id for r in thread)
    assert len(posts_to(running, REVIEW)) == 1  # one refusal; the thread was never tried
    with read_only(running.bot.session_factory) as s:
        known = get_channel(s, REVIEW)
    assert known is not None and not known.is_member and known.problem == "not_in_channel"
    # the filer and the admins are told in Slack, with what to do
    (to_filer,) = dms_to(running, MEMBER)
    assert "CR-1" in to_filer and "not_in_channel" in to_filer and "admins have been told" in to_filer
    (to_admin,) = dms_to(running, ADMIN)
    for words in (
        f"<#{REVIEW}>",
        "/invite @contract-bot",
        "/contract admin set review_channel",
        "outbox retry",
    ):
        assert words in to_admin, to_admin
    assert "6 message(s) that need it" in to_admin
    # nothing is retried in the background: no call to the channel while the loop runs
    time.sleep(1.5)
    assert len(posts_to(running, REVIEW)) == 1
    # a later thread message of CR-1 is dead with its parent at once, never deferred
    running.command('stopwork CR-1 reason="vendor under review"', user=MANAGER)
    drain(running)
    later = [r for r in rows(running, contract_id=1) if r.id > thread[-1].id]
    assert later and all(r.status == "dead" and r.depends_on == parent.id for r in later)
    assert len(posts_to(running, REVIEW)) == 1
    # `outbox dead` lists it with what is held with it
    code, out, _ = cli("outbox", "dead")
    assert code == 0 and f"#{parent.id}" in out and "not_in_channel" in out
    assert f"held with it ({6 + len(later)})" in out
    # the cause is fixed; `outbox retry` sends the parent and then its thread, in order
    running.double.invite(REVIEW)
    code, out, _ = cli("outbox", "retry")
    assert code == 0 and f"#{parent.id}" in out and f"{7 + len(later)} message(s) are pending again" in out
    drain(running)
    assert not rows(running, status="dead") and not rows(running, status="pending")
    texts = [m["text"] for m in running.thread(1)]
    assert "CR-1" in texts[0]
    asked = [t.split(":")[0] for t in texts if t.startswith("CR-1 SCOPE-")]
    assert asked == [f"CR-1 SCOPE-{i}" for i in range(1, 6)]
    with read_only(running.bot.session_factory) as s:
        known = get_channel(s, REVIEW)
        contract = s.get(Contract, 1)
    assert known is not None and known.is_member and known.problem is None  # Slack took a message there
    assert contract is not None and contract.permalink  # fetched once the parent was posted
    code, out, _ = cli("outbox", "dead")
    assert code == 0 and "No dead messages" in out


def test_a_refused_token_is_logged_loudly_tells_nobody_by_dm_and_stops_delivery(running, caplog):
    running.double.script(
        "chat.postMessage", [Fault(status=200, body={"ok": False, "error": "invalid_auth"})]
    )
    with caplog.at_level(logging.ERROR, logger="bot.services.outbox"):
        running.command(FILE)
        running.deliver()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("SLACK_BOT_TOKEN" in e and "invalid_auth" in e and "outbox retry" in e for e in errors), errors
    parent = rows(running, contract_id=1, message_key="parent", op="post")[0]
    assert parent.status == "dead"
    assert all(r.status == "dead" for r in rows(running, contract_id=1))
    assert not rows(running, op="dm")  # a DM cannot go with a refused token: none is queued
    # delivery stops in this process instead of trying every message in turn
    with unit_of_work(running.bot.session_factory) as s:
        repo.add_outbox(
            s, at=running.clock.now(), op="post", target=MANAGERS, payload={"render": "text", "text": "x"}
        )
    calls = len(running.double.calls())
    running.deliver()
    time.sleep(1.2)
    assert len(running.double.calls()) == calls
    assert rows(running, target=MANAGERS)[0].status == "pending"


def test_a_question_slack_refuses_dies_with_its_edits_and_the_thread_goes_on(running):
    running.double.script(
        "chat.postMessage",
        [Fault(), Fault(), Fault(status=200, body={"ok": False, "error": "msg_blocks_too_long"})],
    )
    running.command(FILE, user=MEMBER)
    drain(running)
    (post,) = rows(running, contract_id=1, message_key="q:SCOPE-1", op="post")
    assert post.status == "dead" and "msg_blocks_too_long" in (post.last_error or "")
    running.command("answer CR-1 SCOPE-1 yes", user=REVIEWER)
    drain(running)
    (edit,) = rows(running, contract_id=1, message_key="q:SCOPE-1", op="update")
    assert edit.status == "dead" and edit.depends_on == post.id
    asked = [m["text"].split(":")[0] for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-")]
    assert asked == [f"CR-1 SCOPE-{i}" for i in range(2, 6)]
    assert "answered 1 of" in running.parent(1)["text"]  # the parent's edit went
    assert any("msg_blocks_too_long" in t for t in dms_to(running, ADMIN))
    assert any("CR-1" in t for t in dms_to(running, MEMBER))


@pytest.mark.parametrize(
    ("break_it", "error", "fix"),
    [
        (lambda d: d.remove(MANAGERS), "not_in_channel", "/invite @contract-bot"),
        (lambda d: d.archive(MANAGERS), "is_archived", "unarchive"),
        (lambda d: d.delete_channel(MANAGERS), "channel_not_found", "/contract admin set"),
    ],
    ids=["not_in_channel", "is_archived", "channel_not_found"],
)
def test_a_channel_refusal_is_recorded_and_the_admins_are_told_once(running, break_it, error, fix):
    break_it(running.double)
    with unit_of_work(running.bot.session_factory) as s:
        for n in range(3):
            repo.add_outbox(
                s,
                at=running.clock.now(),
                op="post",
                target=MANAGERS,
                payload={"render": "text", "text": f"m{n}"},
            )
    drain(running)
    dead = rows(running, target=MANAGERS)
    assert [r.status for r in dead] == ["dead"] * 3 and all(error in (r.last_error or "") for r in dead)
    assert len(posts_to(running, MANAGERS)) == 3  # each tried once, none again
    with read_only(running.bot.session_factory) as s:
        known = get_channel(s, MANAGERS)
    assert known is not None and known.problem == error
    (notice,) = dms_to(running, ADMIN)  # told once, not once per message
    assert error in notice and fix in notice


def test_a_permalink_that_cannot_be_had_is_left_out_without_holding_the_thread(running):
    running.double.script(
        "chat.getPermalink", [Fault(status=200, body={"ok": False, "error": "internal_error"})] * 3
    )
    running.command(FILE)
    drain(running)
    (link,) = rows(running, op="permalink")
    assert link.status == "skipped" and "internal_error" in (link.last_error or "")
    assert len(running.double.calls("chat.getPermalink")) == 3
    with read_only(running.bot.session_factory) as s:
        contract = s.get(Contract, 1)
    assert contract is not None and contract.permalink is None and contract.parent_ts
    assert not rows(running, status="dead")
    assert len([m for m in running.thread(1) if m["text"].startswith("CR-1 SCOPE-")]) == 5
