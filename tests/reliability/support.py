"""Helpers of the reliability suite: database fingerprints, everything the bot said, waiting for quiet."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

from sqlalchemy import text

from tests.conftest import REVIEW, REVIEWER, Running

# Tables whose rows are the bot's state (the audit log and delivery bookkeeping are counted separately).
STATE_TABLES = (
    "contract",
    "question",
    "assignment",
    "role_grant",
    "setting",
    "reminder",
    "notice",
    "vendor",
    "vendor_alias",
    "vendor_affiliate",
    "vendor_event",
    "screening_match",
)
# Written by the outbox when a message is posted (its Slack ts), asynchronously: delivery bookkeeping, not state.
DELIVERY_COLUMNS = ("parent_ts", "message_ts", "permalink")  # written by the outbox, in the background
FILE_OK = 'file vendor="Paragon Solutions" product=Graphite agency=ICE'


def counts(running: Running) -> dict[str, int]:
    """Row counts that must not move when a request is refused."""
    out = {}
    with running.bot.engine.connect() as conn:
        for table in (*STATE_TABLES, "audit_entry", "seen_request"):
            out[table] = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
        out["refused"] = conn.execute(
            text("SELECT COUNT(*) FROM audit_entry WHERE outcome = 'refused'")
        ).scalar_one()
        out["answered"] = conn.execute(
            text("SELECT COUNT(*) FROM question WHERE answer IS NOT NULL")
        ).scalar_one()
    return out


def snapshot(running: Running) -> dict[str, list[str]]:
    """Every row of the state tables (as sorted JSON lines per table)."""
    out = {}
    with running.bot.engine.connect() as conn:
        for table in STATE_TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
            out[table] = sorted(
                json.dumps(
                    {k: v for k, v in r.items() if k not in DELIVERY_COLUMNS}, sort_keys=True, default=str
                )
                for r in rows
            )
    return out


def fingerprint(running: Running) -> str:
    """A hash of every row of the state tables: equal fingerprints mean nothing changed."""
    return hashlib.sha256(json.dumps(snapshot(running), sort_keys=True).encode()).hexdigest()


def changes(
    before: dict[str, list[str]], after: dict[str, list[str]]
) -> dict[str, tuple[list[str], list[str]]]:
    """Rows gone and rows new, per table that changed (for assertion messages)."""
    out = {}
    for table in before:
        gone = sorted(set(before[table]) - set(after[table]))
        new = sorted(set(after[table]) - set(before[table]))
        if gone or new:
            out[table] = (gone, new)
    return out


def audit_rows(running: Running, action: str | None = None) -> list[dict]:
    """Audit entries in order (optionally of one action)."""
    with running.bot.engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT seq, actor, action, outcome, contract_id, before, after, detail "
                    "FROM audit_entry ORDER BY seq"
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows if action is None or r["action"] == action]


def settle(running: Running, quiet: float = 0.2, timeout: float = 60.0, *, outbox: bool = True) -> None:
    """Deliver the outbox and wait until neither the database nor the Slack double has moved for ``quiet`` s.

    ``outbox=False``: the outbox is left to deliver at its own pace meanwhile (it writes only delivery bookkeeping,
    DELIVERY_COLUMNS); only the audit log and the work that follows answers must be still.
    ``timeout`` only catches a bot that never settles: delivering a few hundred messages on PostgreSQL takes 15 s
    and more on a machine busy with the rest of the suite."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if outbox:
            running.deliver()
        now = (
            len(running.double.calls()) if outbox else 0,
            counts(running)["audit_entry"],
            _pending_outbox(running) if outbox else 0,
            _pool_backlog(running),
        )
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and now[2] == 0 and now[3] == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the bot did not settle within {timeout} s: {last}")


def _pending_outbox(running: Running) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(
            text("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now"),
            {"now": running.clock.now()},
        ).scalar_one()


def _pool_backlog(running: Running) -> int:
    # private replies and uploads that follow an answer, and lazy listeners (App Home)
    return (
        running.bot.followups._work_queue.qsize()  # noqa: SLF001 - only to know both are idle
        + running.bot.bolt.listener_runner.listener_executor._work_queue.qsize()  # type: ignore[attr-defined]  # noqa: SLF001
    )


# ---- what the bot said -----------------------------------------------------------------------------------

SAYING_METHODS = (
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.update",
    "views.push",
    "views.publish",
    "response_url",
    "files.completeUploadExternal",
)


def text_objects(node: object, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every Block Kit text object (``{"type": "mrkdwn"|"plain_text", "text": …}``) inside ``node``."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield where, node
        for k, v in node.items():
            yield from text_objects(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from text_objects(v, f"{where}[{i}]")


def said(running: Running, extra: list[dict] | None = None) -> list[tuple[str, str, dict | None]]:
    """(where, text, text object or None for top-level text) for everything the bot sent to Slack,
    plus ``extra`` bodies (HTTP acks of commands and interactions)."""
    out: list[tuple[str, str, dict | None]] = []
    bodies = [(c.method, c.params) for c in running.double.calls() if c.method in SAYING_METHODS]
    bodies += [("ack", b) for b in (extra or []) if isinstance(b, dict)]
    for method, params in bodies:
        for key in ("text", "initial_comment"):
            if isinstance(params.get(key), str):
                out.append((f"{method}.{key}", params[key], None))
        for where, obj in text_objects({k: v for k, v in params.items() if k not in ("text",)}, method):
            out.append((where, obj["text"], obj))
    return out


def reply_text(body: dict | None) -> str:
    """All the words of a reply body (top-level text and every text object)."""
    if not body:
        return ""
    parts = [body.get("text") or ""] if isinstance(body.get("text"), str) else []
    parts += [obj["text"] for _, obj in text_objects(body)]
    return "\n".join(parts)


def command_reply(
    running: Running, text_: str, user: str, timeout: float = 10.0
) -> tuple[int, str, dict | None]:
    """POST a command with its own response_url; returns (status, the one reply's words, ack body).
    Asserts there is exactly one reply, in the ack body, and nothing through the response_url."""
    url = running.double.new_response_url(channel=REVIEW, user=user)
    r = running.command(text_, user=user, response_url=url)
    if r.status != 200:
        return r.status, r.body, r.json
    ack = reply_text(r.json)
    if r.json is None or not ack:  # an empty ack: the filing modal was opened instead
        return r.status, "", r.json
    assert not running.double.responses(url), (text_, running.double.responses(url))
    return r.status, ack, r.json


def question_ts(running: Running, contract_id: int, qid: str) -> str:
    """The ts of a question's message in the thread."""
    ref = f"CR-{contract_id} {qid}:"
    for m in running.thread(contract_id):
        if m["text"].startswith(ref):
            return m["ts"]
    raise AssertionError(f"{qid} of CR-{contract_id} is not in the thread")


def answer_all(running: Running, contract_id: int, values: dict[str, str]) -> None:
    """Answer questions in order through the service (as the reviewer), section by section."""
    for qid, value in values.items():
        running.bot.service.answer(REVIEWER, contract_id, qid, value)


CLEAN_ANSWERS = {
    **{f"SCOPE-{i}": "yes" for i in range(1, 6)},
    **{f"PROC-{i}": "yes" for i in range(1, 5)},
    **{f"CI-{i}": "no" for i in range(1, 5)},
    **{f"IU-{i}": "no" for i in range(1, 4)},
}


def file_form_state(**fields: str) -> dict:
    """``view.state.values`` of the filing modal with these fields typed or chosen."""
    values: dict = {}
    for key, value in fields.items():
        if key in ("purpose", "third_party"):
            values[key] = {key: {"type": "static_select", "selected_option": {"value": value}}}
        else:
            values[key] = {key: {"type": "plain_text_input", "value": value}}
    return values


def note_form_state(note: str) -> dict:
    """``view.state.values`` of the note modal."""
    return {"note": {"note": {"type": "plain_text_input", "value": note}}}
