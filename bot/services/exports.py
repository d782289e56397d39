"""Exports: every contract with its answers, milestones and determination, as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from bot.clock import Clock
from bot.domain import questions as qs
from bot.domain.calendar import BusinessCalendar
from bot.services.views import build_contract_view
from storage import repositories as repo
from storage.db import SessionFactory, read_only

FORMULA_STARTS = "=+-@\t\r"
MILESTONES = (
    "stopwork_since",
    "determination",
    "determined_on",
    "certified_on",
    "certified_by",
    "notice_on",
    "cleared_on",
    "waiver_issued_on",
    "waiver_until",
    "waiver_revoked_on",
    "closed_on",
)


def export_rows(session_factory: SessionFactory, clock: Clock, calendar: BusinessCalendar) -> list[dict]:
    """One dict per contract, oldest first."""
    rows = []
    with read_only(session_factory) as s:
        today = calendar.local_date(clock.now())
        offset = 0
        while True:
            batch = repo.list_contracts(s, limit=500, offset=offset)
            if not batch:
                break
            for c in batch:
                v = build_contract_view(s, c, today, with_reminders=False)
                row: dict[str, Any] = {  # one export cell per key: text, numbers, dates, flags
                    "reference": v.ref,
                    "vendor": v.vendor,
                    "product": v.product,
                    "agency": v.agency,
                    "component": v.component,
                    "value_usd": None if v.value_cents is None else v.value_cents / 100,
                    "awarded_on": v.awarded_on,
                    "purpose": v.purpose,
                    "status": v.status,
                    "answered": v.answered,
                    "total_questions": v.total,
                    "red_flags": ",".join(v.red_flags),
                    "operational_use_permitted": v.verdict.permitted,
                    "still_missing": "; ".join(v.verdict.missing),
                    "earliest_operational_use": v.verdict.earliest_on,
                    "waiting_period_end": v.waiting_end,
                    "stopwork_reason": v.stopwork_reason,
                    "determination_reason": v.determination_reason,
                    "determined_by": v.determined_by,
                    "waiver_official": v.waiver_official,
                    "waiver_report_due": v.waiver_report_due,
                    "close_reason": v.close_reason,
                }
                for m in MILESTONES:
                    row[m] = getattr(v.state, m)
                for q in qs.QUESTIONS:
                    qv = v.question(q.qid)
                    row[f"answer_{q.qid}"] = qv.answer if qv else None
                rows.append(row)
            offset += len(batch)
    rows.sort(key=lambda r: int(r["reference"][3:]))
    return rows


def build_export(
    session_factory: SessionFactory, clock: Clock, calendar: BusinessCalendar, fmt: str
) -> tuple[str, bytes]:
    """(filename, bytes) of the export in ``fmt`` (csv or json)."""
    rows = export_rows(session_factory, clock, calendar)
    stamp = calendar.local_date(clock.now()).isoformat()
    if fmt == "json":
        return f"contract-bot-export-{stamp}.json", json.dumps(rows, default=str, indent=2).encode()
    buf = io.StringIO()
    fields = list(rows[0].keys()) if rows else ["reference"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        # NOTE: a cell starting with = + - @ (or a tab / CR) would run as a formula in a spreadsheet; prefix it.
        writer.writerow(
            {
                k: ("'" + v) if isinstance(v, str) and v[:1] and v[:1] in FORMULA_STARTS else v
                for k, v in row.items()
            }
        )
    return f"contract-bot-export-{stamp}.csv", buf.getvalue().encode()
