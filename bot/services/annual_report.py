"""The §4(d) annual report from the database: every contract's record read into ``bot.domain.annual``'s facts, and
the report written as Word (.docx, python-docx) or Markdown.

What goes in each section is decided by the pure ``bot.domain.annual``; this module reads the record (the contracts,
and the snapshots the audit trail keeps after every change) and writes the document, with each contract's clocks
(``bot.services.clocks``) drawn on the reporting year's axis.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.domain import annual, clocks, review
from bot.domain.annual import AnnualFacts, AnnualReport, Snapshot
from bot.domain.review import ReviewState
from bot.services.clocks import StripPainter, clock_facts_of
from storage import repositories as repo
from storage.db import SessionFactory, read_only
from storage.models import AuditEntry, Contract, Question

__all__ = [
    "DRAFT_LINE",
    "AnnualReportRequest",
    "annual_facts_of",
    "annual_report_files",
    "build_annual_report",
    "load_report",
    "report_due",
    "resolve_year",
    "to_docx",
    "to_markdown",
]

DRAFT_LINE = "DRAFT — references only, no classified content"
LEGAL_BASIS = "Executive Order 14093 of 27 March 2023, §4(d) (88 FR 18957)"
DUE_SETTING = "annual_report_due"
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class AnnualReportRequest:
    """`report annual` was allowed: the handler builds the report after the answer and sends it to whoever asked."""

    year: int
    start: date
    end: date

    @property
    def text(self) -> str:
        """The private reply."""
        return (
            f":bar_chart: Preparing the §4(d) annual report for the reporting year {self.start.isoformat()} to "
            f"{self.end.isoformat()} (`year={self.year}`): it will arrive as a Word file (and the same in Markdown) in a "
            "direct message."
        )

    def __str__(self) -> str:
        return self.text


# ---- the record -> facts ------------------------------------------------------------------------------------


def report_due(s: Session) -> tuple[int, int]:
    """The (month, day) the report is due: the runtime setting `annual_report_due` (MM-DD), else 27 March."""
    return annual.parse_due(repo.get_settings(s).get(DUE_SETTING))


def resolve_year(session_factory: SessionFactory, year: int | None, today: date) -> AnnualReportRequest:
    """The reporting year asked for (default: the report due next); raises InputError for one refused."""
    with read_only(session_factory) as s:
        due = report_due(s)
    chosen = year if year is not None else annual.default_year(today, due)
    annual.check_year(chosen, today, due)
    start, end = annual.reporting_year(chosen, due)
    return AnnualReportRequest(chosen, start, end)


def _day(value: Any) -> date | None:
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


_ON = re.compile(r"^on (\d{4}-\d{2}-\d{2})")
_STATE_FIELDS = frozenset(ReviewState.__dataclass_fields__)


def _state(d: dict[str, Any], ref: str, answers: dict[str, str]) -> ReviewState:
    """The review state a snapshot of the contract (reviews.contract_snapshot) records."""
    values: dict[str, Any] = {
        "ref": ref,
        "purpose": d.get("purpose"),
        "answers": answers,
        "determination": d.get("determination"),
        "certified_by": d.get("certified_by"),
        "waiver_reported": d.get("waiver_reported_on") is not None,
        "revocation_reported": d.get("revocation_reported_on") is not None,
    }
    for name in (
        "awarded_on",
        "stopwork_since",
        "stopwork_lifted_on",
        "stopwork_extended_until",
        "determined_on",
        "redetermination_on",
        "certified_on",
        "notice_on",
        "cleared_on",
        "waiver_issued_on",
        "waiver_until",
        "waiver_revoked_on",
        "waiver_reported_on",
        "revocation_reported_on",
        "closed_on",
    ):
        if name in _STATE_FIELDS:  # a field the rules of this version know
            values[name] = _day(d.get(name))
    return ReviewState(**values)


def _snapshot(
    e: AuditEntry, d: dict[str, Any], ref: str, answers: dict[str, str], zone: ZoneInfo
) -> Snapshot:
    at = e.at.astimezone(zone).date()
    match = _ON.match(e.detail or "")
    on = date.fromisoformat(match.group(1)) if match else at
    awarded = _day(d.get("awarded_on"))
    if e.action == "file" and awarded is not None:
        on = min(on, awarded)  # a contract filed after its award was bought on the award's day
    return Snapshot(
        on=on,
        action=e.action,
        state=_state(d, ref, answers),
        determination_reason=d.get("determination_reason"),
        determined_by=d.get("determined_by"),
        waiver_official=d.get("waiver_official"),
        waiver_reason=d.get("waiver_reason"),
        close_reason=d.get("close_reason"),
        stopwork_reason=d.get("stopwork_reason"),
    )


def _current(c: Contract) -> dict[str, Any]:
    """The contract row as a snapshot's dict (a contract whose trail holds none)."""
    out: dict[str, Any] = {}
    for name in Contract.model_fields:
        value = getattr(c, name, None)
        out[name] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


def annual_facts_of(s: Session, contracts: Sequence[Contract], zone: ZoneInfo) -> list[AnnualFacts]:
    """The annual report's facts of the contracts: each one's snapshots from its audit trail, in a few queries."""
    ids = [c.id for c in contracts if c.id is not None]
    trail: dict[int, list[AuditEntry]] = {i: [] for i in ids}
    answers: dict[int, dict[str, str]] = {i: {} for i in ids}
    for at in range(0, len(ids), 500):
        part = ids[at : at + 500]
        entries = select(AuditEntry).where(
            col(AuditEntry.contract_id).in_(part),
            AuditEntry.outcome == "ok",
            col(AuditEntry.after).is_not(None),
        )
        for e in s.execute(entries.order_by(col(AuditEntry.seq))).scalars():
            assert e.contract_id is not None  # selected by contract
            trail[e.contract_id].append(e)
        # SCOPE-2 says whether the use is operational when the filing gave no purpose
        scope = select(Question).where(col(Question.contract_id).in_(part), Question.qid == "SCOPE-2")
        for q in s.execute(scope).scalars():
            if q.answer:
                answers[q.contract_id][q.qid] = q.answer
    out = []
    for c in contracts:
        assert c.id is not None  # a stored contract has its number
        ref = f"CR-{c.id}"
        snaps = []
        for e in trail[c.id]:
            d = json.loads(e.after or "{}")
            if isinstance(d, dict) and "determination" in d:  # a snapshot of the whole contract
                snaps.append(_snapshot(e, d, ref, answers[c.id], zone))
        filed_on = c.filed_at.astimezone(zone).date()
        if not snaps:  # no trail: the row as it stands, from its purchase
            e = AuditEntry(seq=0, at=c.filed_at, actor="", action="file", outcome="ok", prev_hash="", hash="")
            snaps.append(_snapshot(e, _current(c), ref, answers[c.id], zone))
        out.append(
            AnnualFacts(
                ref=ref,
                vendor=c.vendor,
                product=c.product,
                agency=c.agency,
                component=c.component,
                value_cents=c.value_cents,
                awarded_on=c.awarded_on,
                filed_on=filed_on,
                purpose=c.purpose,
                answers=answers[c.id],
                snapshots=tuple(snaps),
            )
        )
    return out


def load_report(s: Session, *, year: int | None, today: date, zone: ZoneInfo) -> AnnualReport:
    """The report's selection for ``year`` (default: the report due next); raises InputError for a year refused."""
    due = report_due(s)
    chosen = year if year is not None else annual.default_year(today, due)
    annual.check_year(chosen, today, due)
    contracts: list[Contract] = []
    offset = 0
    while True:
        batch = repo.list_contracts(s, limit=500, offset=offset)
        if not batch:
            break
        contracts.extend(batch)
        offset += len(batch)
    return annual.select(annual_facts_of(s, contracts, zone), chosen, today, due)


# ---- facts -> words -----------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain(text: str | None) -> str:
    """Stored text as one plain line (Word refuses control characters; a table cell holds one line)."""
    return " ".join(_CONTROL.sub("", text or "").split())


def _money(cents: int | None) -> str:
    return "—" if cents is None else f"${cents // 100:,}.{cents % 100:02d}"


def _what(f: AnnualFacts) -> str:
    return f"{f.vendor}, {f.product}"


def _permitted_since(u: annual.Use) -> str:
    s = u.state
    if u.via_waiver:
        return f"waiver of {s.waiver_issued_on.isoformat() if s.waiver_issued_on else '—'}"
    start = review.waiting_period_end(s)  # notice + 7 days, or the APNSA clearance
    return start.isoformat() if start else "—"


def _why(u: annual.Use) -> str:
    s = u.state
    if u.via_waiver:
        until = s.waiver_until.isoformat() if s.waiver_until else "—"
        return (
            f"not a finding of no risk: operated under a §2(m) waiver by the {u.waiver_official or 'relevant official'} "
            f"through {until}: {_plain(u.reason) or '(no reason recorded)'}"
        )
    decided = s.determined_on.isoformat() if s.determined_on else "—"
    return f"determined not-risky (§2(a)) on {decided}: {_plain(u.reason) or '(no reason recorded)'}"


def _certified(u: annual.Use) -> str:
    s = u.state
    if u.via_waiver:
        return "—"
    on = s.certified_on.isoformat() if s.certified_on else "—"
    notice = s.notice_on.isoformat() if s.notice_on else "—"
    return f"{u.certified_by or '—'}, {on}; APNSA notice {notice}"


def _operational(p: annual.Purchase) -> str:
    answer = {True: "Yes", False: "No", None: "Not recorded"}[p.operational]
    return f"{answer} ({p.why})"


def _status(p: annual.Purchase) -> str:
    return f"closed {p.closed_on.isoformat()}" if p.closed_on else "open"


def _sections(report: AnnualReport) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """The three sections: (heading, what it holds, table header, rows)."""
    uses = [
        [u.facts.ref, _what(u.facts), u.facts.agency, _permitted_since(u), _why(u), _certified(u)]
        for u in report.uses
    ]
    ended = [
        [e.facts.ref, _what(e.facts), e.on.isoformat(), _plain(e.how), _plain(e.decided), _plain(e.ended)]
        + [_plain(e.previous) if e.previous else "—"]
        for e in report.ended
    ]
    purchases = [
        [
            p.facts.ref,
            _what(p.facts),
            p.facts.agency + (f" ({p.facts.component})" if p.facts.component else ""),
            p.on.isoformat() + ("" if p.facts.awarded_on else " (filed; no award date)"),
            _money(p.facts.value_cents),
            _operational(p),
            _status(p),
        ]
        for p in report.purchases
    ]
    return [
        (
            "(i) Current operational uses and why each is not risky",
            f"Contracts whose operational use was permitted on {report.as_of.isoformat()}, with the determination "
            "that found the use not risky (or the waiver it runs under).",
            [
                "Contract",
                "Vendor, product",
                "Agency",
                "Use permitted from",
                "Why it is not risky",
                "Certified (§2(f))",
            ],
            uses,
        ),
        (
            "(ii) Operational uses ended in the past year as risky",
            "Uses ended in the reporting year: by a prohibition (a determination, or a §2(j) re-determination), a "
            "waiver revoked or expired, or a close; how that was decided and how use was ended.",
            [
                "Contract",
                "Vendor, product",
                "Ended on",
                "What ended it",
                "How it was decided",
                "How use was ended",
                "Before",
            ],
            ended,
        ),
        (
            "(iii) Purchases in the past year",
            "Every contract awarded in the reporting year (closed ones included), and whether it was for operational "
            "use.",
            ["Contract", "Vendor, product", "Agency", "Purchased", "Value", "For operational use", "Status"],
            purchases,
        ),
    ]


def _title(report: AnnualReport) -> str:
    return f"EO 14093 §4(d) annual report, {report.start.isoformat()} to {report.end.isoformat()}"


def _preamble(report: AnnualReport, today: date) -> list[str]:
    lines = [
        f"Legal basis: {LEGAL_BASIS}. Reporting year {report.year}: {report.start.isoformat()} to "
        f"{report.end.isoformat()}; the record as of {report.as_of.isoformat()} (prepared {today.isoformat()} by "
        "contract-bot from its record; review before sending).",
    ]
    if report.as_of < report.end:
        lines.append(
            f"The reporting year is still running: this is the record so far, to {report.as_of.isoformat()}."
        )
    if report.empty:
        lines.append(
            f"No data: no contract on record was in operational use, had a use ended, or was purchased in the "
            f"reporting year {report.start.isoformat()} to {report.end.isoformat()}. There is nothing to report "
            "under §4(d)(i)–(iii) for this year."
        )
    return lines


def _clock_lines(facts: clocks.ClockFacts, as_of: date) -> list[str]:
    out = []
    for span in clocks.clock_spans(facts, as_of):
        when = span.start.isoformat() + (
            f" to {span.end.isoformat()}" if span.end and span.end != span.start else ""
        )
        out.append(f"{span.lane}: {span.label} ({when})")
    return out


def md_escape(text: str) -> str:
    """Text that Markdown shows as typed: its markup characters escaped, on one line."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", _plain(text))


def to_markdown(
    report: AnnualReport, *, banner: str, today: date, clock_facts: dict[str, clocks.ClockFacts] | None = None
) -> str:
    """The report as Markdown (the console and `contract-bot report annual --format md`)."""
    out = [f"**{md_escape(banner)}**", "", f"# {_title(report)}", "", f"*{DRAFT_LINE}*", ""]
    out += [md_escape(line) for line in _preamble(report, today)]
    for heading, what, header, rows in _sections(report):
        out += ["", f"## {heading}", "", md_escape(what), ""]
        if not rows:
            out.append("None in this reporting year.")
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]
    if clock_facts:
        out += ["", "## The contracts' clocks", ""]
        for f in report.contracts:
            facts = clock_facts.get(f.ref)
            if facts is None:
                continue
            out += [f"### {f.ref}: {md_escape(_what(f))}", ""]
            out += [f"- {md_escape(line)}" for line in _clock_lines(facts, report.as_of)] or [
                "- no dates on record"
            ]
            out.append("")
    out += ["", f"*{DRAFT_LINE}*", "", f"**{md_escape(banner)}**", ""]
    return "\n".join(out)


# NOTE: python-docx's conveniences are quadratic in a long document: each paragraph is inserted after a search of the
# body for its last element, each picture looks up every image part and relationship (to share identical ones) and
# every id in the document (for its own), each cell is filled through several lookups. With a picture per contract
# they took a 1,000-contract report past a minute. The long parts are built here as XML, escaped, and appended in
# one pass (bench/annual_report.py).


def _xml_text(text: str) -> str:
    return xml_escape(_plain(text))


def _p_xml(text: str, *, style: str | None = None, bold: bool = False) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    rpr = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:p {_W}>{ppr}<w:r>{rpr}<w:t xml:space="preserve">{_xml_text(text)}</w:t></w:r></w:p>'


class _Body:
    """Appends paragraphs, tables' rows and pictures to a document's body, before its section properties."""

    def __init__(self, document: Any) -> None:
        from docx.oxml.parser import parse_xml

        self.parse = parse_xml
        self.document = document
        self.part = document.part
        self.end = document.element.body.sectPr
        self.count = 0
        # the ids the document holds already (its other drawings): ours start above them
        ids = (int(x) for x in self.part.element.xpath("//@id") if str(x).isdigit())
        self.next_id = max(ids, default=0) + 1

    def paragraph(self, text: str, *, style: str | None = None, bold: bool = False) -> None:
        """A paragraph of plain text (``style`` an id: Heading1, Heading2)."""
        self.end.addprevious(self.parse(_p_xml(text, style=style, bold=bold)))

    def rows(self, table: Any, rows: list[list[str]]) -> None:
        """Rows of plain text at the end of ``table`` (widths come from its grid)."""
        cells = (
            "<w:tr>"
            + "".join(f"<w:tc>{_p_xml(text).replace(f' {_W}', '')}</w:tc>" for text in row)
            + "</w:tr>"
            for row in rows
        )
        parsed = self.parse(f"<w:tbl {_W}>{''.join(cells)}</w:tbl>")
        for tr in list(parsed):
            table._tbl.append(tr)

    def picture(self, png: bytes, width: Any) -> None:
        """A PNG in a paragraph of its own, ``width`` wide: its own image part, relationship and shape id."""
        from docx.image.image import Image
        from docx.opc.constants import RELATIONSHIP_TYPE as RT
        from docx.opc.packuri import PackURI
        from docx.oxml.shape import CT_Inline
        from docx.parts.image import ImagePart

        self.count += 1
        image = Image.from_blob(png)
        part = ImagePart.from_image(image, PackURI(f"/word/media/clocks{self.count}.png"))
        rid = f"rIdClocks{self.count}"
        self.part.rels.add_relationship(RT.IMAGE, part, rid)
        cx, cy = image.scaled_dimensions(width, None)
        inline = CT_Inline.new_pic_inline(self.next_id, rid, f"clocks{self.count}.png", cx, cy)
        self.next_id += 1
        p = self.parse(f"<w:p {_W}><w:r/></w:p>")
        p.r_lst[0].add_drawing(inline)
        self.end.addprevious(p)


def _header_footer(document: Any, banner: str) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    for section in document.sections:
        for part in (section.header, section.footer):
            paragraph = part.paragraphs[0]
            paragraph.text = ""
            run = paragraph.add_run(banner)
            run.bold = True
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            line = part.add_paragraph(DRAFT_LINE)
            line.alignment = WD_ALIGN_PARAGRAPH.CENTER


def to_docx(
    report: AnnualReport,
    *,
    banner: str,
    today: date,
    clock_facts: dict[str, clocks.ClockFacts] | None = None,
    dpi: int = 100,
) -> bytes:
    """The report as an editable Word document: the banner and the DRAFT line at the top and bottom of every page,
    the three sections as tables, then each contract's clocks on the reporting year's axis."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Inches, Pt

    document = Document()
    section = document.sections[0]
    # landscape: the tables have six and seven columns
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Inches(0.8))
    document.styles["Normal"].font.size = Pt(10)
    _header_footer(document, banner)
    document.core_properties.title = _title(report)
    document.add_heading(_title(report), level=0)
    body = _Body(document)
    document.add_paragraph().add_run(DRAFT_LINE).bold = True
    for line in _preamble(report, today):
        document.add_paragraph(line)
    for heading, what, header, rows in _sections(report):
        body.paragraph(heading, style="Heading1")
        body.paragraph(what)
        if not rows:
            document.add_paragraph("None in this reporting year.")
            continue
        table = document.add_table(rows=1, cols=len(header))
        table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, header, strict=True):
            cell.text = ""
            cell.paragraphs[0].add_run(text).bold = True
        body.rows(table, rows)
    if clock_facts and report.contracts:
        body.paragraph("The contracts' clocks", style="Heading1")
        document.add_paragraph(
            f"Each contract's clocks over the reporting year ({report.start.isoformat()} to {report.end.isoformat()}; "
            f"the dashed line is {report.as_of.isoformat()}): award and period of performance, stop-work orders, "
            "determination and certification, the APNSA notice and its waiting period, waivers and their 72-hour "
            "reports, the §4(b) notice. Dates before or after the year are listed under the picture."
        )
        painter = StripPainter(report.start, report.end, report.as_of, dpi=dpi, banner=banner)
        for f in report.contracts:
            facts = clock_facts.get(f.ref)
            if facts is None:
                continue
            body.paragraph(f"{f.ref}: {_what(f)} ({f.agency})", style="Heading2")
            body.picture(painter.png(facts, report.as_of), Inches(6.2))
            lines = _clock_lines(facts, report.as_of)
            body.paragraph("; ".join(lines) if lines else "No dates on record.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def _read(
    session_factory: SessionFactory, *, today: date, zone: ZoneInfo, year: int | None
) -> tuple[AnnualReport, dict[str, clocks.ClockFacts]]:
    """The selection and the clocks of its contracts, from one read-only snapshot; InputError for a year refused."""
    with read_only(session_factory) as s:
        report = load_report(s, year=year, today=today, zone=zone)
        by_id = {int(f.ref[3:]): f.ref for f in report.contracts}
        contracts = list(repo.get_contracts(s, list(by_id)).values()) if by_id else []
        # the clocks as the record stood at the year's end (or today): what came later is not this year's
        facts = {
            f"CR-{cid}": clocks.as_of(cf, report.as_of) for cid, cf in clock_facts_of(s, contracts).items()
        }
    return report, facts


def _stem(report: AnnualReport) -> str:
    return f"eo14093-4d-annual-report-{report.year}"


def build_annual_report(
    session_factory: SessionFactory,
    *,
    today: date,
    zone: ZoneInfo,
    banner: str,
    year: int | None = None,
    fmt: str = "docx",
) -> tuple[str, bytes, AnnualReport]:
    """(filename, bytes, selection) of the §4(d) report in ``fmt`` (docx or md), from a read-only snapshot;
    raises InputError for a year refused."""
    report, facts = _read(session_factory, today=today, zone=zone, year=year)
    if fmt == "md":
        return (
            f"{_stem(report)}.md",
            to_markdown(report, banner=banner, today=today, clock_facts=facts).encode(),
            report,
        )
    return f"{_stem(report)}.docx", to_docx(report, banner=banner, today=today, clock_facts=facts), report


def annual_report_files(
    session_factory: SessionFactory, *, today: date, zone: ZoneInfo, banner: str, year: int | None = None
) -> tuple[AnnualReport, list[tuple[str, bytes]]]:
    """The report as Word and as Markdown (what `/contract report annual` sends: the Word file to edit, the
    Markdown that Slack previews and the console prints), from one read."""
    report, facts = _read(session_factory, today=today, zone=zone, year=year)
    return report, [
        (f"{_stem(report)}.docx", to_docx(report, banner=banner, today=today, clock_facts=facts)),
        (f"{_stem(report)}.md", to_markdown(report, banner=banner, today=today, clock_facts=facts).encode()),
    ]
