"""SQLModel tables. Only Alembic changes the schema (storage/migrations)."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import cast

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, false, inspect
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def utc_column(nullable: bool = True, index: bool = False) -> Column:
    """An aware-UTC timestamp column."""
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Contract(SQLModel, table=True):
    """One contract under review; ``id`` is the number of its reference CR-<id>."""

    __tablename__ = "contract"
    id: int | None = Field(default=None, primary_key=True)
    vendor: str
    product: str
    agency: str
    component: str | None = None
    value_cents: int | None = None
    awarded_on: date | None = None
    term: str | None = None
    purpose: str | None = None
    third_party: bool | None = None
    parent: str | None = None
    contract_no: str | None = None
    scope: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    filed_by: str
    filed_at: datetime = Field(sa_column=utc_column(nullable=False))
    source_key: str | None = Field(default=None, unique=True)  # modal view.id: a double submit files once
    # review.filing_fingerprint of vendor, product and agency: a look-alike filing is one index probe
    filing_key: str | None = Field(default=None, index=True)
    # the vendor the filing was linked to (storage/vendors.py): matched on a normalised name or alias, or created
    vendor_id: int | None = Field(default=None, foreign_key="vendor.id", index=True)
    status: str = Field(default="intake", index=True)
    channel_id: str | None = None
    parent_ts: str | None = None
    permalink: str | None = None  # the parent message's link (chat.getPermalink), for thread links
    stopwork_since: date | None = None
    stopwork_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stopwork_lifted_on: date | None = None  # the last `resume`: a new stop-work may not be dated before it
    determination: str | None = None
    determined_on: date | None = None
    determination_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    determined_by: str | None = None
    # a §2(j) re-determination under way: answers are open again until the next `determine`
    redetermination_on: date | None = None
    redetermination_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    redetermination_by: str | None = None
    # FAR clocks (bot.domain.clocks_far): the stop-work order's last day when extended, the period of performance's
    # last day (`term=` as a duration, or `ends=`), and a §2(j) review a vendor event opened (until redetermined)
    stopwork_extended_until: date | None = None
    term_ends: date | None = None
    review_due_since: date | None = None
    review_event_id: int | None = None  # the vendor_event that opened it (its own migration; no foreign key)
    certified_on: date | None = None
    certified_by: str | None = None
    notice_on: date | None = None
    cleared_on: date | None = None
    waiver_official: str | None = None
    waiver_issued_on: date | None = None
    waiver_issued_at: datetime | None = Field(default=None, sa_column=utc_column())
    waiver_until: date | None = None
    waiver_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    waiver_revoked_on: date | None = None
    waiver_revoked_at: datetime | None = Field(default=None, sa_column=utc_column())
    waiver_reported_on: date | None = None
    revocation_reported_on: date | None = None
    closed_on: date | None = None
    close_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # need-to-know (`restrict CR-n`): only its filer, its assigned reviewers, managers, officials and admins read it
    restricted: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # §2(m): the extraordinary circumstances, and why no feasible alternative exists (none on older waivers)
    waiver_circumstances: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    waiver_alternatives: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # the question set (bot.domain.questions) the contract was filed under; None: the first set
    question_set: str | None = None


class Notice(SQLModel, table=True):
    """A notice of the order's paperwork drafted or recorded as sent: the SHA-256 of what was drafted, who, when."""

    __tablename__ = "notice"
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    kind: str  # apnsa | waiver | excluded | … (the `draft` kinds)
    event: str  # "drafted" | "sent"
    sha256: str | None = None  # of the draft (drafted), or of the last draft of that kind (sent)
    actor: str
    at: datetime = Field(sa_column=utc_column(nullable=False))
    on_date: date | None = None  # the day it was sent (`sent … on=`)
    ref: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # `sent … ref=`


class Question(SQLModel, table=True):
    """A due-diligence question asked in a contract's thread, with its current answer."""

    __tablename__ = "question"
    __table_args__ = (UniqueConstraint("contract_id", "qid"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    qid: str
    asked_at: datetime = Field(sa_column=utc_column(nullable=False))
    message_ts: str | None = None
    answer: str | None = None
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_by: str | None = None
    answered_at: datetime | None = Field(default=None, sa_column=utc_column())


class Assignment(SQLModel, table=True):
    """A reviewer assigned to a contract."""

    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("contract_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="contract.id", index=True)
    user_id: str
    assigned_by: str
    assigned_at: datetime = Field(sa_column=utc_column(nullable=False))


class RoleGrant(SQLModel, table=True):
    """A role held by a Slack user (bootstrap admins come from settings, not from this table)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(index=True)
    role: str
    granted_by: str
    granted_at: datetime = Field(sa_column=utc_column(nullable=False))


class Setting(SQLModel, table=True):
    """A runtime setting changed with `/contract admin set`."""

    __tablename__ = "setting"
    key: str = Field(primary_key=True)
    value: str
    updated_by: str
    updated_at: datetime = Field(sa_column=utc_column(nullable=False))


class AuditHead(SQLModel, table=True):
    """The single row holding the chain's last sequence number and hash; locking it serialises appends."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = ""


class AuditEntry(SQLModel, table=True):
    """One append-only, hash-chained audit record: who did what, when, with the values before and after."""

    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime = Field(sa_column=utc_column(nullable=False))
    actor: str
    action: str = Field(index=True)
    outcome: str  # "ok" or "refused"
    contract_id: int | None = Field(default=None, index=True)
    before: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    prev_hash: str
    hash: str


class OutboxMessage(SQLModel, table=True):
    """A message the bot must send to Slack, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    # status+id: the claim takes the oldest pending rows without walking the backlog; contract+status+id:
    # the "no earlier pending message for this contract" check is one index probe.
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_contract_pending", "contract_id", "status", "id"),
        Index("ix_outbox_message", "contract_id", "message_key", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    contract_id: int | None = Field(default=None, index=True)
    op: str  # post | update | dm | permalink (chat.getPermalink of a posted parent, into Contract.permalink)
    target: str  # channel ID, "thread" (the contract's thread), or a user ID
    message_key: str | None = None  # names the Slack message: "parent", "q:CI-4"
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON: what to render
    status: str = Field(default="pending")  # pending | sent | skipped (superseded, unchanged…) | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column(nullable=False))
    claimed_by: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=utc_column())
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    result_ts: str | None = None
    content_hash: str | None = None  # what was sent: an edit that would change nothing is not sent
    depends_on: int | None = Field(default=None, index=True)  # dead with this message (its thread's parent)


class Reminder(SQLModel, table=True):
    """A reminder due at a time; claimed atomically by the sweep so it is sent once."""

    __tablename__ = "reminder"
    # contract+status+due_at: a contract's next reminders (every `show` and delivery) without a scan
    __table_args__ = (
        Index("ix_reminder_due", "status", "due_at"),
        Index("ix_reminder_contract_pending", "contract_id", "status", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    contract_id: int | None = Field(default=None, index=True)
    kind: str
    key: str = Field(unique=True)  # one row per (contract, kind, occurrence): nothing scheduled twice
    due_at: datetime = Field(sa_column=utc_column(nullable=False))
    status: str = Field(default="pending")  # pending | sent | cancelled | skipped | held (contract closed)
    claimed_by: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column())
    data: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SeenRequest(SQLModel, table=True):
    """A delivery already handled (Events API event_id, a submitted view.id): Slack's retries take effect once."""

    __tablename__ = "seen_request"
    key: str = Field(primary_key=True)
    at: datetime = Field(sa_column=utc_column(nullable=False))


class SlackChannel(SQLModel, table=True):
    """What the bot last learned about a channel it must post in: is it a member, and if not, why."""

    __tablename__ = "slack_channel"
    channel_id: str = Field(primary_key=True)
    is_member: bool
    problem: str | None = None  # Slack's error (not_in_channel, channel_not_found, is_archived, …)
    checked_at: datetime = Field(sa_column=utc_column(nullable=False))


class SlackRate(SQLModel, table=True):
    """A Slack rate-limit bucket shared by every process (storage/rates.py): when it is empty again, and a 429's end.

    Times are seconds since the epoch on the database's clock.
    """

    __tablename__ = "slack_rate"
    key: str = Field(primary_key=True)  # "chat.postMessage C123", "chat.postMessage *", "chat.update"
    tat: float = 0.0  # the bucket's theoretical arrival time (GCRA): the next call at the sustained rate
    blocked_until: float = 0.0  # Slack answered 429: nothing goes before this


class SlackDM(SQLModel, table=True):
    """The direct-message channel of a user (conversations.open once per user, shared by every process)."""

    __tablename__ = "slack_dm"
    user_id: str = Field(primary_key=True)
    channel_id: str
    opened_at: datetime = Field(sa_column=utc_column(nullable=False))


class SignedRequest(SQLModel, table=True):
    """A signed Slack request already carried out, by a digest of its timestamp and signature (storage/replays.py):
    kept while Slack's signature window could still accept it, so that a replay of it changes nothing."""

    __tablename__ = "signed_request"
    digest: str = Field(primary_key=True)
    expires_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))


class Vendor(SQLModel, table=True):
    """A vendor every filing is linked to; ``normalised`` is bot.domain.names.normalise_name of its name."""

    __tablename__ = "vendor"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    normalised: str = Field(unique=True)
    parent_id: int | None = Field(default=None, foreign_key="vendor.id", index=True)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class VendorAlias(SQLModel, table=True):
    """Another name a vendor goes by (a filing under it links to the vendor, and it is screened too)."""

    __tablename__ = "vendor_alias"
    __table_args__ = (UniqueConstraint("vendor_id", "normalised"),)
    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendor.id", index=True)
    alias: str
    normalised: str = Field(index=True)


class VendorAffiliate(SQLModel, table=True):
    """A vendor that furnishes another's spyware (§5(h) "furnish": reseller, broker, rebrand, affiliate)."""

    __tablename__ = "vendor_affiliate"
    __table_args__ = (UniqueConstraint("vendor_id", "affiliate_vendor_id"),)
    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendor.id", index=True)
    affiliate_vendor_id: int = Field(foreign_key="vendor.id", index=True)
    relation: str  # reseller | broker | rebrand | affiliate


class VendorEvent(SQLModel, table=True):
    """Dated new information about a vendor (§2(j)): a screening-list change, ownership, a report, a DNI finding."""

    __tablename__ = "vendor_event"
    id: int | None = Field(default=None, primary_key=True)
    vendor_id: int = Field(foreign_key="vendor.id", index=True)
    kind: str  # list | ownership | report | dni
    on_date: date
    note: str = Field(sa_column=Column(Text, nullable=False))
    source: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class ScreeningSnapshot(SQLModel, table=True):
    """One screening list as loaded by `contract-bot lists load`: which list, its date, the file's SHA-256."""

    __tablename__ = "screening_snapshot"
    id: int | None = Field(default=None, primary_key=True)
    list_name: str = Field(index=True)  # csl | sdn
    on_date: date
    sha256: str
    entry_count: int
    loaded_at: datetime = Field(sa_column=utc_column(nullable=False))


class ScreeningEntry(SQLModel, table=True):
    """An entry of a snapshot; ``names`` holds its name and aliases normalised, one a line."""

    __tablename__ = "screening_entry"
    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="screening_snapshot.id", index=True)
    entry_key: str  # stable across snapshots of one list (the list's own id): the diff compares these
    name: str = Field(sa_column=Column(Text, nullable=False))
    # the list within the list, e.g. "Entity List (EL) - Bureau of Industry and Security"
    source: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    names: str = Field(sa_column=Column(Text, nullable=False))


class ScreeningMatch(SQLModel, table=True):
    """A possible match of a vendor's name with a list entry, for a manager to dispose of (`screen`)."""

    __tablename__ = "screening_match"
    # one match per vendor and entry of a list: a later snapshot does not reopen what a manager disposed of
    __table_args__ = (UniqueConstraint("vendor_id", "list_name", "entry_key"),)
    id: int | None = Field(default=None, primary_key=True)
    snapshot_id: int = Field(foreign_key="screening_snapshot.id", index=True)
    vendor_id: int = Field(foreign_key="vendor.id", index=True)
    list_name: str
    entry_key: str
    entry_name: str = Field(sa_column=Column(Text, nullable=False))
    source: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # the vendor's name or alias that matched
    matched_name: str = Field(sa_column=Column(Text, nullable=False))
    score: float
    status: str = Field(default="open", index=True)  # open | match | no-match
    disposed_by: str | None = None
    disposed_at: datetime | None = Field(default=None, sa_column=utc_column())
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


@functools.cache
def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table, for statements that need no ORM (several times cheaper per row)."""
    return cast(Table, inspect(model).local_table)
