"""Exports: every contract with its answers, milestones and determination, as CSV or JSON.

What people open in a spreadsheet: UTF-8 with a byte-order mark (Excel reads it as UTF-8), people by name, times in
``BOT_TIMEZONE`` without microseconds, money exact (a decimal string, never a float), plain text without Slack's
markup, and no cell that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.calendar import BusinessCalendar
from bot.services.views import ContractView, build_contract_view
from storage import repositories as repo
from storage.db import SessionFactory, read_only

log = logging.getLogger(__name__)

# A cell starting with one of these runs as a formula in Excel, LibreOffice and Google Sheets (OWASP "CSV
# injection"); a leading apostrophe makes it text.
FORMULA_STARTS = "=+-@\t\r"
Names = Callable[[str], str]


class SlackNames:
    """People's names from Slack's ``users.info``, cached; the user ID itself when Slack cannot say.

    ``client`` None (the command line without SLACK_BOT_TOKEN) looks nothing up. Once Slack cannot be reached, the
    rest of that export uses IDs too rather than waiting on every person in turn.
    """

    def __init__(self, client: Any | None, *, ttl_seconds: float = 3600.0) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.unresolved: set[str] = set()  # IDs shown as IDs in the last exports: the caller may say so
        self._unreachable_until = 0.0

    def __call__(self, user_id: str) -> str:
        """The person's name (their full name in Slack, else their display name), else ``user_id``."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user_id)
            if hit and hit[0] > now:
                return hit[1]
        name = self._look_up(user_id, now)
        if name is None:
            self.unresolved.add(user_id)
            return user_id
        with self._lock:
            self._cache[user_id] = (now + self.ttl, name)
        return name

    def _look_up(self, user_id: str, now: float) -> str | None:
        if self.client is None or now < self._unreachable_until:
            return None
        try:
            user = self.client.users_info(user=user_id).get("user") or {}
        except Exception as exc:  # noqa: BLE001 - a name is a nicety: the export goes on with the ID
            from slack_sdk.errors import SlackApiError

            if not isinstance(exc, SlackApiError):  # no answer at all: do not wait on each person in turn
                self._unreachable_until = now + 60
            log.warning(
                "users.info %s failed (%s): the export shows the user ID", user_id, type(exc).__name__
            )
            return None
        profile = user.get("profile") or {}
        name = (
            user.get("real_name")
            or profile.get("real_name")
            or profile.get("display_name")
            or user.get("name")
        )
        return str(name).strip() or None if isinstance(name, str) else None


def _ids(user_id: str) -> str:
    return user_id


# Slack's markup in text that came from Slack: <@U1|name>, <#C1|name>, <!here>, <!subteam^S1|@team>, <url|label>.
# Only Slack's own forms are taken: a "<draft>" someone typed stays as typed.
_TOKEN = re.compile(
    r"<(@[UW][A-Z0-9]+|#[CG][A-Z0-9]+|![A-Za-z0-9^_.:-]+|[A-Za-z][A-Za-z0-9+.-]*:[^\s<>|]+)(?:\|([^<>]*))?>"
)


def plain(text: str | None, names: Names = _ids) -> str | None:
    """``text`` without Slack's markup: mentions become names, links "label (url)" or the URL, no backticks."""
    if text is None:
        return None

    def token(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return names(target[1:])
        if target.startswith("#"):
            return f"#{label}" if label else target
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:].split("^")[0]
        address = target.removeprefix("mailto:")
        if label and label not in (target, address):
            return f"{label} ({address})"
        return address

    return _TOKEN.sub(token, text)


def _ours(text: str) -> str:
    """Our own mrkdwn (`commands` in backticks) as plain text."""
    return text.replace("`", "")


def _when(value: datetime | None, zone: ZoneInfo) -> str | None:
    """A moment in the bot's zone, ISO 8601 to the second: 2026-11-24T10:00:00-05:00."""
    return None if value is None else value.astimezone(zone).replace(microsecond=0).isoformat()


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _money(cents: int | None) -> str | None:
    """Exact dollars and cents as text: 2000000.00 (a float would round large sums)."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def contract_record(v: ContractView, zone: ZoneInfo, names: Names) -> dict[str, Any]:
    """One contract as plain data: JSON keeps the answers nested; CSV flattens them (``flatten``)."""
    state = v.state
    answers = {}
    for q in v.questions:
        answers[q.qid] = {
            "answer": q.answer,
            "note": plain(q.note, names),
            "answered_by": names(q.answered_by) if q.answered_by else None,
            "answered_at": _when(q.answered_at, zone),
        }
    return {
        "reference": v.ref,
        "contract_no": plain(v.contract_no, names),
        "vendor": plain(v.vendor, names),
        "parent": plain(v.parent, names),
        "product": plain(v.product, names),
        "agency": plain(v.agency, names),
        "component": plain(v.component, names),
        "value_usd": _money(v.value_cents),
        "awarded_on": _day(v.awarded_on),
        "term": plain(v.term, names),
        "purpose": v.purpose,
        "third_party": _yes_no(v.third_party),
        "scope": plain(v.scope, names),
        "filed_by": names(v.filed_by),
        "filed_at": _when(v.filed_at, zone),
        "reviewers": [names(r) for r in v.reviewers],
        "status": v.status,
        "answered": v.answered,
        "total_questions": v.total,
        "question_set": v.question_set,  # the version of the questions it was filed under: its answer columns
        "red_flags": list(v.red_flags),
        "operational_use_permitted": v.verdict.permitted,
        "still_missing": [_ours(m) for m in v.verdict.missing],
        "earliest_operational_use": _day(v.verdict.earliest_on),
        "stopwork_since": _day(state.stopwork_since),
        "stopwork_reason": plain(v.stopwork_reason, names),
        "stopwork_lifted_on": _day(state.stopwork_lifted_on),
        "determination": state.determination,
        "determined_on": _day(state.determined_on),
        "determined_by": names(v.determined_by) if v.determined_by else None,
        "determination_reason": plain(v.determination_reason, names),
        "redetermination_on": _day(getattr(state, "redetermination_on", None)),
        "certified_on": _day(state.certified_on),
        "certified_by": plain(state.certified_by, names),  # the relevant official, as recorded
        "notice_on": _day(state.notice_on),
        "waiting_period_end": _day(v.waiting_end),
        "cleared_on": _day(state.cleared_on),
        "waiver_official": plain(v.waiver_official, names),
        "waiver_issued_on": _day(state.waiver_issued_on),
        "waiver_until": _day(state.waiver_until),
        "waiver_reason": plain(v.waiver_reason, names),
        "waiver_circumstances": plain(v.waiver_circumstances, names),
        "waiver_alternatives": plain(v.waiver_alternatives, names),
        "waiver_revoked_on": _day(state.waiver_revoked_on),
        "waiver_report_due": _when(v.waiver_report_due, zone),
        "waiver_reported_on": _day(state.waiver_reported_on),
        "revocation_reported_on": _day(state.revocation_reported_on),
        "closed_on": _day(state.closed_on),
        "close_reason": plain(v.close_reason, names),
        "answers": answers,
    }


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """A record as one spreadsheet row: lists joined with "; ", each answer in four columns, yes/no for flags."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "answers":
            continue
        if isinstance(value, list):
            value = "; ".join(value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        row[key] = value
    for qid, answer in record["answers"].items():
        row[f"answer_{qid}"] = answer["answer"]
        row[f"note_{qid}"] = answer["note"]
        row[f"answered_by_{qid}"] = answer["answered_by"]
        row[f"answered_at_{qid}"] = answer["answered_at"]
    return row


def export_records(
    session_factory: SessionFactory, clock: Clock, calendar: BusinessCalendar, names: Names = _ids
) -> list[dict[str, Any]]:
    """One record per contract, oldest first."""
    records = []
    with read_only(session_factory) as s:
        today = calendar.local_date(clock.now())
        offset = 0
        while True:
            batch = repo.list_contracts(s, limit=500, offset=offset)
            if not batch:
                break
            for c in batch:
                view = build_contract_view(s, c, today, with_reminders=False)
                records.append(contract_record(view, calendar.zone, names))
            offset += len(batch)
    records.sort(key=lambda r: int(r["reference"][3:]))
    return records


def _cell(value: Any) -> Any:
    # NOTE: a cell starting with = + - @ (or a tab / CR) would run as a formula in a spreadsheet; prefix it.
    if isinstance(value, str) and value[:1] and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def build_export(
    session_factory: SessionFactory,
    clock: Clock,
    calendar: BusinessCalendar,
    fmt: str,
    *,
    names: Names | None = None,
    banner: str = "CUI",
) -> tuple[str, bytes]:
    """(filename, bytes) of the export in ``fmt`` (csv or json); ``names`` turns a Slack user ID into a name.

    Contract records are CUI: the banner (CUI_BANNER) is the CSV's first and last line, and the JSON's
    ``banner`` beside its ``contracts`` (``csv_rows`` reads the CSV back)."""
    records = export_records(session_factory, clock, calendar, names or _ids)
    stamp = calendar.local_date(clock.now()).isoformat()
    if fmt == "json":
        document = {"banner": banner, "contracts": records}
        return f"contract-bot-export-{stamp}.json", json.dumps(
            document, indent=2, ensure_ascii=False
        ).encode()
    rows = [flatten(r) for r in records]
    buf = io.StringIO()
    # every row's columns, in order of first appearance: contracts filed under different question sets have
    # different answer columns (a row without one leaves it empty)
    fields = list(dict.fromkeys(k for row in rows for k in row)) or ["reference"]
    banner_row = csv.writer(buf)
    banner_row.writerow([banner])
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    banner_row.writerow([banner])
    # NOTE: the byte-order mark is what makes Excel read the file as UTF-8 (without it, "Société" is garbled).
    return f"contract-bot-export-{stamp}.csv", buf.getvalue().encode("utf-8-sig")


def csv_rows(content: bytes | str) -> tuple[str, list[dict[str, str]]]:
    """(banner, rows) of a CSV export: the banner lines at the top and bottom around the header and the rows."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.removeprefix("\ufeff")
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if len(lines) < 3 or lines[0] != lines[-1] or len(lines[0]) != 1:
        raise ValueError("not a contract-bot CSV export (its first and last lines are the banner)")
    header, body = lines[1], lines[2:-1]
    return lines[0][0], [dict(zip(header, row, strict=True)) for row in body]
