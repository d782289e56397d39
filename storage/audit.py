"""The audit log: append-only, chained with a keyed hash (HMAC-SHA256), checked against checkpoints kept outside it.

Each entry's ``hash`` is HMAC-SHA256, under the key from ``AUDIT_KEY_FILE``, of its content and the previous entry's
hash. The key is never stored in the database, so someone who can write the database but does not hold the key
cannot edit, reorder or recompute the chain without ``verify_chain`` noticing. A log written before the key existed
(plain SHA-256) is carried over once: a ``audit seal`` entry, sealed with the key, binds its last hash; what came
before it proves only what a plain hash chain proves (docs/security.md). A key is replaced by an ``audit rotate-key``
entry, sealed with the old key and naming the new one; the entries after it are sealed with the new key.

Which key seals the appends of a session is found by the session's engine (``seal_engine``): the bot and the
command-line tools register it when they open the database; without one, entries are chained with plain SHA-256
(as before keys), which ``verify_chain`` reports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage import deferred
from storage.models import AuditEntry, AuditHead, OutboxMessage, table_of

GENESIS = "0" * 64
SEAL_ACTION = "audit seal"
ROTATE_ACTION = "audit rotate-key"
CHECKPOINT_KIND = "audit_checkpoint"  # in the message metadata's event_payload, beside the outbox row
CHECKPOINT_EVERY = 100  # entries: a checkpoint goes out whenever the sequence passes a multiple of this


# ---- keys -------------------------------------------------------------------------------------------------------


class AuditKeyError(ValueError):
    """The audit key file is missing, unreadable or malformed; the message is one line naming AUDIT_KEY_FILE."""


@dataclass(frozen=True)
class AuditKeys:
    """The current key (seals new entries) and retired ones (verify entries sealed before a rotation)."""

    current: bytes = field(repr=False)
    retired: tuple[bytes, ...] = field(default=(), repr=False)
    path: str | None = None

    @property
    def all(self) -> tuple[bytes, ...]:
        """Every key, the current one first."""
        return (self.current, *self.retired)

    def by_id(self, kid: str) -> bytes | None:
        """The key with that id, if the file holds it."""
        return next((k for k in self.all if key_id(k) == kid), None)


def key_id(key: bytes) -> str:
    """A short public name of a key (an HMAC of a constant under it): says which key, reveals nothing of it."""
    return hmac.new(key, b"contract-bot audit key id", hashlib.sha256).hexdigest()[:16]


def new_key() -> bytes:
    """32 random bytes."""
    return secrets.token_bytes(32)


def key_file_text(keys: Iterable[bytes]) -> str:
    """The key file's text: one base64 key a line, the current one first, retired ones after it."""
    lines = [
        "# contract-bot audit key: keep it apart from the database and its backups.",
        "# The first key seals new entries; the ones after it are retired keys kept to verify older entries.",
        *(base64.b64encode(k).decode("ascii") for k in keys),
    ]
    return "\n".join(lines) + "\n"


def write_key_file(path: Path, keys: Iterable[bytes]) -> None:
    """Create ``path`` readable by its owner only (0600); raises FileExistsError rather than replace a key."""
    # written beside it and linked into place: a process starting alongside never reads a half-written key
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key_file_text(keys))
        os.link(tmp, path)  # FileExistsError when another process made it first
    finally:
        tmp.unlink(missing_ok=True)


def read_key_file(path: Path) -> AuditKeys:
    """The keys in ``path``; raises AuditKeyError naming AUDIT_KEY_FILE when it cannot be used."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise AuditKeyError(f"AUDIT_KEY_FILE {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"AUDIT_KEY_FILE {path} cannot be read: {exc}") from None
    keys: list[bytes] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except ValueError:
            raise AuditKeyError(f"AUDIT_KEY_FILE {path}, line {n}: not a base64 key") from None
        if len(key) < 16:
            raise AuditKeyError(f"AUDIT_KEY_FILE {path}, line {n}: a key must be at least 16 bytes")
        keys.append(key)
    if not keys:
        raise AuditKeyError(f"AUDIT_KEY_FILE {path} holds no key")
    return AuditKeys(keys[0], tuple(keys[1:]), str(path))


# ---- hashing ----------------------------------------------------------------------------------------------------


def _body(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    outcome: str,
    contract_id: int | None,
    before: str | None,
    after: str | None,
    detail: str | None,
    prev_hash: str,
) -> bytes:
    return json.dumps(
        {
            "seq": seq,
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "contract_id": contract_id,
            "before": before,
            "after": after,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def _digest(body: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def audit_hash(entry: AuditEntry | PendingEntry, key: bytes | None = None) -> str:
    """HMAC-SHA256 under ``key`` (plain SHA-256 without one) of an entry's content and the previous entry's hash."""
    return _digest(
        _body(
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.outcome,
            entry.contract_id,
            entry.before,
            entry.after,
            entry.detail,
            entry.prev_hash,
        ),
        key,
    )


def checkpoint_mac(key: bytes, seq: int, head: str, at: str) -> str:
    """The HMAC that makes a checkpoint (seq, head, time) unforgeable without the key."""
    return hmac.new(key, f"contract-bot checkpoint|{seq}|{head}|{at}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at a moment, with its HMAC: posted to Slack, outside the database."""

    seq: int
    head: str
    at: str  # ISO 8601, UTC
    mac: str

    def as_dict(self) -> dict[str, Any]:
        """The message metadata payload and the JSON-lines form of a saved copy."""
        return {"seq": self.seq, "head": self.head, "at": self.at, "mac": self.mac}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkpoint:
        """Raises ValueError when a field is missing or of the wrong kind."""
        try:
            seq, head, at, mac = int(d["seq"]), str(d["head"]), str(d["at"]), str(d["mac"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("a checkpoint needs seq (a number), head, at and mac") from None
        return cls(seq, head, at, mac)

    def signed_by(self, keys: AuditKeys) -> bool:
        """True when one of the keys made its MAC."""
        return any(
            hmac.compare_digest(checkpoint_mac(k, self.seq, self.head, self.at), self.mac) for k in keys.all
        )


def make_checkpoint(key: bytes, seq: int, head: str, at: datetime) -> Checkpoint:
    """A checkpoint of the head ``seq``/``head`` at ``at``."""
    stamp = at.isoformat()
    return Checkpoint(seq, head, stamp, checkpoint_mac(key, seq, head, stamp))


def checkpoint_message(cp: Checkpoint) -> dict[str, Any]:
    """The outbox payload of a checkpoint: a line people can read, and the metadata the bot reads back."""
    return {
        "render": "text",
        "text": f"Audit checkpoint: entry {cp.seq}, head {cp.head[:16]}…, at {cp.at}",
        # NOTE: the outbox's own event_type (every post carries its outbox row); the payload says what it is
        "metadata": {"event_payload": {"kind": CHECKPOINT_KIND, **cp.as_dict()}},
    }


# ---- sealing appends --------------------------------------------------------------------------------------------


@dataclass
class Sealer:
    """What an engine's sessions seal appends with: the key, and where checkpoints go (None: nowhere yet)."""

    keys: AuditKeys
    checkpoint_channel: Callable[[Session], str | None] = lambda s: None


_SEALERS: weakref.WeakKeyDictionary[Engine, Sealer] = weakref.WeakKeyDictionary()


def seal_engine(engine: Engine, sealer: Sealer) -> None:
    """Seal every audit entry appended through ``engine`` with ``sealer``'s key."""
    _SEALERS[engine] = sealer


def sealer_of(s: Session) -> Sealer | None:
    """The sealer registered for the session's engine, if any."""
    bind = s.get_bind()
    engine = getattr(bind, "engine", bind)
    return _SEALERS.get(engine) if isinstance(engine, Engine) else None


def record_audit(
    s: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    outcome: str = "ok",
    contract_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    detail: str | None = None,
) -> PendingEntry:
    """Append one entry to the chain when the transaction commits (``_chain_pending_audit``), which numbers it.

    NOTE: the chain's head row is locked only at the commit, for the few statements that append: locked here,
    it was held through the rest of the unit of work and every writer queued on it (PostgreSQL, bench/README.md).
    """
    entry = PendingEntry(at, actor, action, outcome, contract_id, _dump(before), _dump(after), detail)
    s.info.setdefault(_PENDING_AUDIT, []).append(entry)
    return entry


@dataclass(slots=True)
class PendingEntry:
    """An audit entry recorded in this transaction: an AuditEntry's values, chained and written at the commit (a
    table model's object costs more to make than the row it becomes, and the session need not track it)."""

    at: datetime
    actor: str
    action: str
    outcome: str
    contract_id: int | None
    before: str | None
    after: str | None
    detail: str | None
    seq: int = 0
    prev_hash: str = GENESIS
    hash: str = ""


_PENDING_AUDIT = "contract_bot_pending_audit"


def lock_head(s: Session) -> AuditHead:
    """The chain's head row, locked until the transaction ends (created if a database lost it)."""
    head = s.execute(select(AuditHead).where(col(AuditHead.id) == 1).with_for_update()).scalars().first()
    if head is None:
        # The migration seeds this row; this only runs on a database whose row was removed.
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        try:
            with s.begin_nested():  # add inside the savepoint, so a clash rolls back only this insert
                s.add(head)
                s.flush()
        except IntegrityError:  # another process created it first
            head = (
                s.execute(select(AuditHead).where(col(AuditHead.id) == 1).with_for_update()).scalars().one()
            )
    return head


def _chain_pending_audit(s: Session) -> deferred.Chained | None:
    """Chain the entries this transaction recorded, in order, under the locked head (serialises appends); the
    rows are written with the rest of the commit's deferred rows (storage.deferred)."""
    pending: list[PendingEntry] = s.info.pop(_PENDING_AUDIT, [])
    if not pending:
        return None
    sealer = sealer_of(s)
    key = sealer.keys.current if sealer else None
    heads, entries = table_of(AuditHead), table_of(AuditEntry)
    found = s.connection().execute(_LOCK_HEAD).first()
    if found is None:  # a database whose head row was removed: created (and locked) the ORM's way
        created = lock_head(s)
        seq, last = created.seq, created.hash
    else:
        seq, last = found.seq, found.hash
    first = seq
    columns = [c.name for c in entries.columns if c.name != "id"]  # the database numbers the entries
    rows = []
    for entry in pending:
        entry.seq, entry.prev_hash = seq + 1, last or GENESIS
        entry.hash = audit_hash(entry, key)
        seq, last = entry.seq, entry.hash
        rows.append({c: getattr(entry, c) for c in columns})
    if sealer is not None and key is not None and seq // CHECKPOINT_EVERY != first // CHECKPOINT_EVERY:
        queue_checkpoint(s, sealer, make_checkpoint(key, seq, last, pending[-1].at))
    return deferred.Chained(table=entries, rows=rows, head=heads, seq=seq, hash=last)


_LOCK_HEAD = (
    select(table_of(AuditHead).c.seq, table_of(AuditHead).c.hash)
    .where(table_of(AuditHead).c.id == 1)
    .with_for_update()
)
deferred.register_chain(_chain_pending_audit, _PENDING_AUDIT)


def queue_checkpoint(s: Session, sealer: Sealer, cp: Checkpoint) -> bool:
    """Queue the checkpoint's Slack message in this transaction (written at its commit, storage.deferred); False
    when there is no channel to post it in."""
    channel = sealer.checkpoint_channel(s)
    if not channel:
        return False
    at = datetime.fromisoformat(cp.at)
    row = {
        "created_at": at,
        "contract_id": None,
        "op": "post",
        "target": channel,
        "message_key": None,
        "payload": json.dumps(checkpoint_message(cp), ensure_ascii=False),
        "next_attempt_at": at,
        "status": "pending",
        "attempts": 0,
    }
    deferred.defer_insert(s, table_of(OutboxMessage), row)
    return True


@event.listens_for(Session, "after_rollback")
def _forget_pending_audit(s: Session) -> None:
    if not s.in_nested_transaction():  # a savepoint's rollback keeps what the transaction recorded before it
        s.info.pop(_PENDING_AUDIT, None)


def _dump(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def list_audit(s: Session, *, contract_id: int | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Audit entries in chain order, optionally one contract's."""
    stmt = select(AuditEntry).order_by(col(AuditEntry.seq))
    if contract_id is not None:
        stmt = stmt.where(col(AuditEntry.contract_id) == contract_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(s.execute(stmt).scalars())


def last_entry(s: Session) -> AuditEntry | None:
    """The newest entry of the chain."""
    return s.execute(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).scalars().first()


def get_head(s: Session) -> tuple[int, str]:
    """The head row's (seq, hash), without locking it."""
    head = s.get(AuditHead, 1)
    return (head.seq, head.hash or GENESIS) if head else (0, GENESIS)


# ---- verifying --------------------------------------------------------------------------------------------------


@dataclass
class ChainReport:
    """What walking the chain found: entries checked, the first broken one and why, and what the caller asked for."""

    checked: int = 0
    broken: AuditEntry | None = None
    why: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    hashes: dict[int, str] = field(default_factory=dict)  # seq -> hash, for the seqs asked for (checkpoints)
    snapshots: dict[int, dict] = field(default_factory=dict)  # contract id -> state after its last milestone
    answers: dict[tuple[int, str], str | None] = field(default_factory=dict)  # (contract, qid) -> last answer
    filed: set[int] = field(default_factory=set)  # contracts whose filing is in the log
    unsealed: int = 0  # entries carried over from before the key (plain SHA-256)


# plain rows, not ORM objects: building 100,000 of them was most of a verification's time
_COLUMNS = [
    col(AuditEntry.id),
    col(AuditEntry.seq),
    col(AuditEntry.at),
    col(AuditEntry.actor),
    col(AuditEntry.action),
    col(AuditEntry.outcome),
    col(AuditEntry.contract_id),
    col(AuditEntry.before),
    col(AuditEntry.after),
    col(AuditEntry.detail),
    col(AuditEntry.prev_hash),
    col(AuditEntry.hash),
]


def verify_chain(s: Session, keys: AuditKeys | None, *, want: Iterable[int] = ()) -> ChainReport:
    """Walk the chain in order checking every link and seal; stops at the first problem.

    Without ``keys`` only plain SHA-256 links are checked (a log never sealed). With them, a run of plain entries may
    only open the log (carried over from before the key) and must be closed by a sealed entry; every later entry
    must be sealed with the key in force (the rotation entries say which).
    """
    report = ChainReport()
    wanted = set(want)
    prev_hash, expected, key = GENESIS, 1, None
    legacy = True  # until the first sealed entry
    rows = s.execute(select(*_COLUMNS).order_by(col(AuditEntry.seq)).execution_options(yield_per=2000))
    for row in rows:
        (_id, seq, at, actor, action, outcome, contract_id, before, after, detail, prev, stored) = row
        if seq != expected:
            return _broken(
                report, s, _id, f"entry {expected} is missing (next found is {seq}): a row was deleted"
            )
        if prev != prev_hash:
            return _broken(report, s, _id, "its prev_hash does not match the entry before it")
        body = _body(seq, at, actor, action, outcome, contract_id, before, after, detail, prev)
        if key is not None and hmac.compare_digest(_digest(body, key), stored):
            pass
        elif keys is not None and legacy and (found := _which_key(body, stored, keys)) is not None:
            key, legacy = found, False
        elif legacy and _digest(body, None) == stored:
            report.unsealed += 1
        elif keys is not None and _digest(body, None) == stored:
            return _broken(
                report,
                s,
                _id,
                "its hash is plain SHA-256, not sealed with the key: written or recomputed by someone without "
                "AUDIT_KEY_FILE",
            )
        elif keys is not None:
            return _broken(
                report,
                s,
                _id,
                "its content does not match its sealed hash: the row was edited (or its hash forged)",
            )
        else:
            return _broken(report, s, _id, "its content does not match its hash: the row was edited")
        if action == ROTATE_ACTION and outcome == "ok" and keys is not None and not legacy:
            kid = _json(detail).get("new_key")
            key = keys.by_id(str(kid))
            if key is None:
                return _broken(
                    report,
                    s,
                    _id,
                    f"the key was rotated here to key {kid}, which AUDIT_KEY_FILE does not hold: the entries after "
                    "it cannot be checked",
                )
        if seq in wanted:
            report.hashes[seq] = stored
        if contract_id is not None and outcome == "ok":
            _trail(report, contract_id, action, after)
        prev_hash, expected = stored, expected + 1
        report.checked = seq
    report.head_seq, report.head_hash = report.checked, prev_hash
    head_seq, head_hash = get_head(s)
    if head_seq != report.checked or (head_hash or GENESIS) != prev_hash:
        last = s.execute(select(AuditEntry).where(col(AuditEntry.seq) == report.checked)).scalars().first()
        report.broken = last
        report.why = f"the chain ends at entry {report.checked} but {head_seq} were written: the newest entries were deleted"
        return report
    if keys is not None and legacy and report.checked:
        report.why = (
            f"the log is not sealed: its {report.checked} entries are plain SHA-256 (start the bot with "
            "AUDIT_KEY_FILE once to seal them)"
        )
    return report


def _which_key(body: bytes, stored: str, keys: AuditKeys) -> bytes | None:
    for k in reversed(keys.all):  # the oldest first: the log began under it
        if hmac.compare_digest(_digest(body, k), stored):
            return k
    return None


def _broken(report: ChainReport, s: Session, entry_id: int, why: str) -> ChainReport:
    report.broken, report.why = s.get(AuditEntry, entry_id), why
    return report


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _trail(report: ChainReport, contract_id: int, action: str, after: str | None) -> None:
    """Remember what the trail says of a contract: its state after the last milestone, each question's answer."""
    if not after:
        return
    if action == "file":
        report.filed.add(contract_id)
    if '"status"' in after:  # a contract snapshot (bot.services.reviews.contract_snapshot); cheap test first
        snap = _json(after)
        if "status" in snap:
            report.snapshots[contract_id] = snap
    elif action == "answer":
        ans = _json(after)
        if "qid" in ans:
            report.answers[(contract_id, str(ans["qid"]))] = ans.get("answer")


def verify_audit_chain(
    s: Session, keys: AuditKeys | None = None
) -> tuple[int, AuditEntry | None, str | None]:
    """Walk the chain with ``keys`` (default: those of the session's engine, if registered); (checked, broken, why)."""
    sealer = sealer_of(s)
    report = verify_chain(s, keys or (sealer.keys if sealer else None))
    return report.checked, report.broken, report.why
