"""The sealed record: the audit key, checkpoints posted outside the database, and `audit verify`.

The chain itself is storage.audit's; this module opens the key (AUDIT_KEY_FILE, or ``<db file>.audit-key`` on
SQLite), seals a log written before keys on the first start with one, posts a checkpoint (sequence number, head,
time, HMAC) every day (and storage.audit every 100 entries), reads the checkpoints back from Slack's message
metadata, and verifies: the chain with the key, the chain against the checkpoints, and each contract's stored state
against the state its audit trail records. The daily job tells the admins by direct message when that fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, col

from bot.clock import Clock
from bot.config import Settings
from bot.services.reviews import contract_snapshot
from storage import audit
from storage import repositories as repo
from storage.audit import AuditKeyError, AuditKeys, Checkpoint, Sealer
from storage.db import READ_ONLY, SessionFactory, unit_of_work
from storage.models import AuditEntry, Contract, Question

log = logging.getLogger(__name__)

# The fields of a contract that only an audited action changes (each such action records the contract's snapshot):
# the decision, its certification and notice, stop-work, waiver and close. ``status`` is derived from these, the
# answers and the date, so it is checked through them.
AUDITED_FIELDS = (
    "determination",
    "determined_on",
    "certified_on",
    "certified_by",
    "notice_on",
    "cleared_on",
    "stopwork_since",
    "stopwork_lifted_on",
    "closed_on",
    "waiver_issued_on",
    "waiver_until",
    "waiver_revoked_on",
    "restricted",  # need-to-know: a row quietly unrestricted would let every role holder read it
)


# ---- the key ----------------------------------------------------------------------------------------------------


def default_key_path(database_url: str) -> Path | None:
    """``<db file>.audit-key`` for a SQLite file; None for PostgreSQL or an in-memory database."""
    url = make_url(database_url)
    if (
        url.get_backend_name() != "sqlite"
        or url.database in (None, "", ":memory:")
        or "mode=memory" in database_url
    ):
        return None
    return Path(str(url.database)).resolve().with_name(Path(str(url.database)).name + ".audit-key")


def key_path(settings: Settings) -> Path | None:
    """Where the key is read from: AUDIT_KEY_FILE, else the SQLite default; None when there is no such place."""
    return (
        Path(settings.audit_key_file) if settings.audit_key_file else default_key_path(settings.database_url)
    )


def open_keys(settings: Settings, *, create: bool) -> AuditKeys:
    """The audit keys; ``create`` makes the SQLite default key file (0600) when it is missing, with a warning.

    Raises AuditKeyError (one line naming AUDIT_KEY_FILE) when there is no key to use.
    """
    path = key_path(settings)
    if path is None:
        if make_url(settings.database_url).get_backend_name() == "postgresql":
            raise AuditKeyError(
                "AUDIT_KEY_FILE is required on PostgreSQL: the file holding the secret key that seals the audit log "
                "(create one with `contract-bot audit new-key --out FILE`, keep it apart from the database and "
                "its backups)"
            )
        if not create:
            raise AuditKeyError(
                "AUDIT_KEY_FILE is not set and an in-memory database has no key file beside it"
            )
        log.warning(
            "an in-memory database: its audit log is sealed with a key that lives only in this process"
        )
        return AuditKeys(audit.new_key())
    if not path.exists() and create and not settings.audit_key_file:
        try:
            audit.write_key_file(path, [audit.new_key()])
            log.warning(
                "created the audit key %s (AUDIT_KEY_FILE was not set): keep it apart from the database's backups, "
                "or whoever holds both can rewrite the audit log; set AUDIT_KEY_FILE to a copy kept elsewhere",
                path,
            )
        except FileExistsError:  # another process created it first
            pass
        except OSError as exc:
            raise AuditKeyError(f"AUDIT_KEY_FILE is not set and {path} cannot be created: {exc}") from None
    if not path.exists() and not settings.audit_key_file:
        raise AuditKeyError(
            f"AUDIT_KEY_FILE is not set and there is no key at {path} (the bot creates it on its first start)"
        )
    return audit.read_key_file(path)


# ---- checking ---------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What `audit verify` found: entries checked, checkpoints matched, and the problems, the first first."""

    checked: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    contracts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


@contextlib.contextmanager
def snapshot(factory: SessionFactory) -> Iterator[Session]:
    """A read-only transaction that sees one moment of the database (the chain, its head and the contracts agree)."""
    s = factory()
    try:
        conn = s.connection(execution_options={READ_ONLY: True})
        if conn.dialect.name == "postgresql":
            # NOTE: under READ COMMITTED each statement sees a newer database: an append committed between the
            # chain's walk and the head's read would look like deleted entries.
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        yield s
    finally:
        s.close()


def verify(
    s: Session, keys: AuditKeys | None, checkpoints: list[Checkpoint] | None, *, source: str = ""
) -> Verdict:
    """Check the chain with ``keys``, against ``checkpoints`` (None: not checked), and the contracts against it."""
    cps = checkpoints or []
    report = audit.verify_chain(s, keys, want=[c.seq for c in cps])
    verdict = Verdict(checked=report.checked, unsealed=report.unsealed)
    if report.why:
        if report.broken is not None:
            b = report.broken
            verdict.problems.append(
                f"BROKEN at entry #{b.seq} (id {b.id}, {b.action} by {b.actor} at {b.at.isoformat()}): {report.why}; "
                f"{max(b.seq - 1, 0)} entries before it verified"
            )
        else:
            verdict.problems.append(f"BROKEN: {report.why}")
    if checkpoints is not None:
        verdict.problems.extend(_check_checkpoints(report, keys, cps, source, verdict))
    verdict.problems.extend(_check_contracts(s, report, verdict))
    return verdict


def _check_checkpoints(
    report: audit.ChainReport, keys: AuditKeys | None, cps: list[Checkpoint], source: str, verdict: Verdict
) -> list[str]:
    problems: list[tuple[int, str]] = []
    for cp in sorted(cps, key=lambda c: (c.seq, c.at)):
        if keys is not None and not cp.signed_by(keys):
            problems.append(
                (
                    cp.seq,
                    f"the checkpoint of {cp.at} in {source} (entry {cp.seq}) is not signed with the audit key: "
                    "it was forged or edited",
                )
            )
        elif cp.seq > report.head_seq:
            problems.append(
                (
                    cp.seq,
                    f"the checkpoint of {cp.at} records entry {cp.seq} but the log ends at entry "
                    f"{report.head_seq}: the newest entries were deleted, or an older copy of the database was "
                    "restored",
                )
            )
        elif cp.seq > 0 and cp.seq <= report.checked and report.hashes.get(cp.seq) != cp.head:
            problems.append(
                (
                    cp.seq,
                    f"entry {cp.seq} does not match the checkpoint of {cp.at}: the log was rewritten from there "
                    "(or an older copy restored and written on)",
                )
            )
        else:
            verdict.checkpoints += 1
    if not cps and report.head_seq >= audit.CHECKPOINT_EVERY:
        problems.append(
            (
                0,
                f"no checkpoint found in {source}, though the log has {report.head_seq} entries (one is posted "
                f"every {audit.CHECKPOINT_EVERY} entries and every day): the checkpoints were deleted, or this "
                "is not the channel they go to",
            )
        )
    return [p for _, p in sorted(problems, key=lambda p: p[0])]


def _norm(value: Any) -> Any:
    # the trail stores values as JSON with str() for dates (storage.audit._dump); compare in that form
    return json.loads(json.dumps(value, default=str))


def _check_contracts(s: Session, report: audit.ChainReport, verdict: Verdict) -> list[str]:
    """Each contract's stored decision fields and answers against what its audit trail last recorded."""
    if report.broken is not None:
        return []  # the trail itself cannot be trusted past the break; the break is the problem to report
    problems: list[str] = []
    answers: dict[tuple[int, str], str | None] = {}
    for q in s.execute(select(Question).where(col(Question.answer).is_not(None))).scalars():
        answers[(q.contract_id, q.qid)] = q.answer
    for c in s.execute(select(Contract).order_by(col(Contract.id))).scalars():
        verdict.contracts += 1
        ref = f"CR-{c.id}"
        trail = report.snapshots.get(c.id or 0)
        if trail is None:
            problems.append(
                f"{ref} has no filing in the audit log: the contract row was added behind the bot's back"
            )
            continue
        stored = _norm(contract_snapshot(c))
        for name in AUDITED_FIELDS:
            if name in trail and stored.get(name) != trail.get(name):
                problems.append(
                    f"{ref}: its stored {name} is {stored.get(name)!r} but its audit trail says "
                    f"{trail.get(name)!r}: the contract row was changed without an audit entry"
                )
                break
    for (cid, qid), value in sorted(answers.items()):
        said = report.answers.get((cid, qid))
        if said != value:
            problems.append(
                f"CR-{cid} {qid}: the stored answer is {value!r} but its audit trail says {said!r}: the answer "
                "was changed without an audit entry"
            )
    return problems


# ---- checkpoints in Slack -----------------------------------------------------------------------------------------


def read_checkpoints(client: Any, channel: str, *, limit: int = 100_000) -> list[Checkpoint]:
    """Every checkpoint posted in ``channel``, read back from the messages' metadata (conversations.history)."""
    found: list[Checkpoint] = []
    cursor, seen = None, 0
    while seen < limit:
        kwargs: dict[str, Any] = {"channel": channel, "limit": 200, "include_all_metadata": True}
        if cursor:
            kwargs["cursor"] = cursor
        response = client.conversations_history(**kwargs)
        messages = response.get("messages", [])
        seen += len(messages)
        for message in messages:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if isinstance(payload, dict) and payload.get("kind") == audit.CHECKPOINT_KIND:
                with contextlib.suppress(ValueError):
                    found.append(Checkpoint.from_dict(payload))
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not messages:
            break
    return found


def read_checkpoint_file(path: Path) -> list[Checkpoint]:
    """A saved copy (JSON lines: seq, head, at, mac); raises ValueError naming the bad line."""
    out: list[Checkpoint] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Checkpoint.from_dict(json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{path}, line {n}: {exc}") from None
    return out


def checkpoint_lines(cps: Iterable[Checkpoint]) -> str:
    """The JSON-lines form of checkpoints, oldest first."""
    return "".join(
        json.dumps(c.as_dict(), sort_keys=True) + "\n" for c in sorted(cps, key=lambda c: (c.seq, c.at))
    )


# ---- the service --------------------------------------------------------------------------------------------------


class SealService:
    """Seals the bot's appends, posts checkpoints and runs the daily verification."""

    def __init__(
        self,
        session_factory: SessionFactory,
        engine: Engine,
        keys: AuditKeys,
        clock: Clock,
        settings: Settings,
        *,
        client: Any = None,
        admin_user_ids: Iterable[str] = (),
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_factory = session_factory
        self.engine = engine
        self.keys = keys
        self.clock = clock
        self.settings = settings
        self.client = client
        self.admin_user_ids = tuple(admin_user_ids)
        self.on_commit = on_commit
        self.sealer = Sealer(keys, self.checkpoint_channel)

    def checkpoint_channel(self, s: Session) -> str | None:
        """AUDIT_CHANNEL, else the manager channel (as `admin set` left it)."""
        if self.settings.audit_channel:
            return self.settings.audit_channel
        return repo.get_settings(s).get("manager_channel") or self.settings.manager_channel

    def start(self) -> None:
        """Seal the engine's appends; seal a log written before keys; refuse a key that is not the log's.

        Raises AuditKeyError when AUDIT_KEY_FILE does not hold the key the log's newest entry was sealed with (a
        wrong key file, or an edited newest entry: `audit verify` tells them apart); nothing is registered then.
        """
        with unit_of_work(self.session_factory) as s:
            last = audit.last_entry(s)
            unsealed = last is not None and self._unsealed(s, last)
            audit.seal_engine(self.engine, self.sealer)
            if last is None or not unsealed:
                return
            # a log from before keys: seal its head (docs/security.md says what that proves)
            audit.record_audit(
                s,
                at=self.clock.now(),
                actor="contract-bot",
                action=audit.SEAL_ACTION,
                detail=json.dumps(
                    {"sealed_seq": last.seq, "sealed_head": last.hash, "key": audit.key_id(self.keys.current)}
                ),
            )
        log.warning("sealed the audit log's %s entries written before AUDIT_KEY_FILE with the key", last.seq)
        self.checkpoint(force=True)

    def _unsealed(self, s: Session, last: AuditEntry) -> bool:
        """True for a log from before keys; raises AuditKeyError when the newest entry is not sealed with ours."""
        if audit.audit_hash(last, self.keys.current) == last.hash:
            return False
        if last.action == audit.ROTATE_ACTION and audit._json(last.detail).get("new_key") == audit.key_id(
            self.keys.current
        ):
            return False  # the rotation entry is sealed with the old key; ours follows it
        if audit.audit_hash(last) == last.hash and not self._sealed_before(s):
            return True
        if any(audit.audit_hash(last, k) == last.hash for k in self.keys.retired):
            return False
        raise AuditKeyError(
            f"AUDIT_KEY_FILE ({self.keys.path or 'in memory'}) does not hold the key that sealed the audit log's "
            f"newest entry (#{last.seq}): point it at the bot's key file (or run `contract-bot audit verify` to "
            "see whether the log was altered)"
        )

    @staticmethod
    def _sealed_before(s: Session) -> bool:
        stmt = select(col(AuditEntry.id)).where(
            col(AuditEntry.action).in_([audit.SEAL_ACTION, audit.ROTATE_ACTION])
        )
        return s.execute(stmt.limit(1)).first() is not None

    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Queue a checkpoint of the head (once a day across processes unless ``force``); None when none was queued."""
        now = self.clock.now()
        with unit_of_work(self.session_factory) as s:
            if not force and not repo.record_seen(s, f"audit.checkpoint:{now.date().isoformat()}", now):
                return None
            head = audit.lock_head(s)
            cp = audit.make_checkpoint(self.keys.current, head.seq, head.hash or audit.GENESIS, now)
            if not audit.queue_checkpoint(s, self.sealer, cp):
                log.warning(
                    "no AUDIT_CHANNEL or manager channel: the audit checkpoint of %s was not posted", now
                )
                return None
        self.on_commit()
        return cp

    def checkpoint_source(self) -> str:
        """Where the checkpoints are read from, for messages."""
        with unit_of_work(self.session_factory) as s:
            return self.checkpoint_channel(s) or ""

    def verify_now(self) -> Verdict:
        """Verify against the checkpoints in Slack (the bot's own client)."""
        channel = self.checkpoint_source()
        cps = read_checkpoints(self.client, channel) if channel and self.client is not None else None
        with snapshot(self.session_factory) as s:
            return verify(s, self.keys, cps, source=f"channel {channel}")

    def daily_job(self) -> Verdict | None:
        """Post today's checkpoint and verify (once a day across processes); DM the admins when it fails."""
        now = self.clock.now()
        verdict: Verdict | None = None
        with unit_of_work(self.session_factory) as s:
            if not repo.record_seen(s, f"audit.verify:{now.date().isoformat()}", now):
                return None
        try:
            verdict = self.verify_now()
        except Exception as exc:  # noqa: BLE001 - Slack unreachable, say so rather than stay silent
            log.exception("the daily audit verification could not run")
            verdict = Verdict(problems=[f"the daily audit verification could not run: {type(exc).__name__}"])
        if not verdict.ok:
            self.alert(verdict.problems)
        self.checkpoint()
        return verdict

    def alert(self, problems: list[str]) -> None:
        """Tell every admin by direct message (through the outbox) that the audit log failed verification."""
        now = self.clock.now()
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = (
            f":rotating_light: The audit log failed verification: {problems[0]}{more}. Run `contract-bot audit "
            "verify` on the server and compare the database with its backups."
        )
        with unit_of_work(self.session_factory) as s:
            admins = list(dict.fromkeys([*self.admin_user_ids, *repo.list_users_with_role(s, "admin")]))
            for admin in admins:
                repo.add_outbox(s, at=now, op="dm", target=admin, payload={"render": "text", "text": message})
            audit.record_audit(
                s, at=now, actor="contract-bot", action="audit verify", outcome="failed", detail=problems[0]
            )
        log.error("audit verification failed: %s", problems[0])
        self.on_commit()


def started_at(value: str) -> datetime:
    """A checkpoint's time as a datetime (for messages)."""
    return datetime.fromisoformat(value)
