"""The order's paperwork from the database: record facts of a contract, and its notice as Markdown or Word (.docx).

The content is bot.domain.paperwork (pure); this module reads the record into its facts and renders a Document.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo

from sqlmodel import Session

from bot.domain import paperwork
from bot.domain import questions as qs
from bot.domain.paperwork import AnswerFact, Document, RecordFacts, Table
from bot.services.vendors import screening_facts
from bot.services.views import ref_of
from storage import repositories as repo
from storage.models import Contract

log = logging.getLogger(__name__)

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class RenderedDraft:
    """One drafted notice: its document, Markdown, Word bytes and their SHA-256."""

    document: Document
    markdown: str
    docx: bytes
    sha256: str

    @property
    def filename(self) -> str:
        """The Word file's name, e.g. ``CR-1-apnsa-draft.docx``."""
        return f"{self.document.filename_stem}.docx"


# ---- record -> facts ------------------------------------------------------------------------------------------


def _question_set(c: Contract) -> str:
    """The name of the set the contract was filed (and answered) under, not today's."""
    return f"EO 14093 due diligence questions, {qs.question_set(c.question_set).version}"


def _last_redetermination(s: Session, contract_id: int) -> tuple[dict, str | None, str | None]:
    """The last §2(j) re-determination from the trail (its fields, who opened it, the determination it revisited):
    `determine` clears the contract's redetermination fields, the audit log keeps them."""
    opened: dict = {}
    by: str | None = None
    before: str | None = None
    for e in repo.list_audit(s, contract_id=contract_id):
        if e.outcome != "ok":
            continue
        if e.action == "redetermine" and e.after:
            opened, by, before = json.loads(e.after), e.actor, None
        elif e.action == "re-determine" and e.before and opened:
            before = json.loads(e.before).get("determination")
    return opened, by, before


def _day(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def record_facts(s: Session, c: Contract, names: Callable[[str], str] | None = None) -> RecordFacts:
    """What the record holds about one contract, for bot.domain.paperwork; ``names`` turns a Slack user ID into
    the person's name (a notice is read outside Slack, where an ID names nobody)."""
    assert c.id is not None  # a stored contract has its number
    person = names or str

    def who(user_id: str | None) -> str | None:
        return person(user_id) if user_id else user_id

    rows = {q.qid: q for q in repo.list_questions(s, c.id)}
    answers = tuple(
        AnswerFact(
            qid=q.qid,
            section=q.section,
            citation=q.citation,
            text=q.text,
            answer=row.answer if row else None,
            note=row.note if row else None,
            answered_by=who(row.answered_by) if row else None,
            answered_at=row.answered_at if row else None,
        )
        for q in qs.question_set(c.question_set).questions  # its own set: a later change rewrites no draft
        for row in [rows.get(q.qid)]
    )
    redet_on: date | None
    if c.redetermination_on is not None:
        redet_on, redet_reason, redet_by, previous = (
            c.redetermination_on,
            c.redetermination_reason,
            c.redetermination_by,
            c.determination,
        )
    else:
        opened, redet_by, previous = _last_redetermination(s, c.id)
        redet_on, redet_reason = _day(opened.get("redetermination_on")), opened.get("redetermination_reason")
    return RecordFacts(
        ref=ref_of(c.id),
        vendor=c.vendor,
        product=c.product,
        agency=c.agency,
        filed_by=who(c.filed_by) or c.filed_by,
        filed_at=c.filed_at,
        component=c.component,
        value_cents=c.value_cents,
        awarded_on=c.awarded_on,
        term=c.term,
        purpose=c.purpose,
        third_party=c.third_party,
        parent=c.parent,
        contract_no=c.contract_no,
        scope=c.scope,
        question_set=_question_set(c),
        answers=answers,
        stopwork_since=c.stopwork_since,
        stopwork_reason=c.stopwork_reason,
        stopwork_lifted_on=c.stopwork_lifted_on,
        determination=c.determination,
        determined_on=c.determined_on,
        determined_by=who(c.determined_by),
        determination_reason=c.determination_reason,
        certified_on=c.certified_on,
        certified_by=c.certified_by,
        notice_on=c.notice_on,
        cleared_on=c.cleared_on,
        waiver_official=c.waiver_official,
        waiver_issued_on=c.waiver_issued_on,
        waiver_issued_at=c.waiver_issued_at,
        waiver_until=c.waiver_until,
        waiver_reason=c.waiver_reason,
        waiver_circumstances=getattr(c, "waiver_circumstances", None),
        waiver_alternatives=getattr(c, "waiver_alternatives", None),
        waiver_revoked_on=c.waiver_revoked_on,
        waiver_revoked_at=c.waiver_revoked_at,
        waiver_reported_on=c.waiver_reported_on,
        revocation_reported_on=c.revocation_reported_on,
        redetermination_on=redet_on,
        redetermination_reason=redet_reason,
        redetermination_by=who(redet_by),
        redetermination_open=c.redetermination_on is not None,
        previous_determination=previous,
        closed_on=c.closed_on,
        close_reason=c.close_reason,
    )


def clocks_png(s: Session, contract_id: int, *, today: date, zone: tzinfo) -> bytes | None:
    """The contract's timeline picture, when bot.services.clocks can draw it (None if not)."""
    try:
        from bot.services import clocks  # noqa: PLC0415 - matplotlib is loaded only when a picture is drawn
    except ImportError:
        return None
    draw = getattr(clocks, "contract_clocks_png", None)
    if draw is None:
        return None
    png = draw(s, contract_id, today=today, zone=zone)
    return png if isinstance(png, bytes) else None


def build_draft(
    s: Session,
    c: Contract,
    kind: str,
    *,
    today: date,
    zone: tzinfo,
    banner: str,
    picture: bool = True,
    names: Callable[[str], str] | None = None,
) -> RenderedDraft:
    """The notice of ``kind`` for a contract, rendered; raises InvalidState for a kind it cannot have."""
    assert c.id is not None  # a stored contract has its number
    facts = record_facts(s, c, names)
    screening, open_matches = screening_facts(s, c)
    facts = replace(facts, screening=screening, open_screening_matches=open_matches)
    document = paperwork.build_document(facts, kind, today=today, zone=zone, banner=banner)
    png = clocks_png(s, c.id, today=today, zone=zone) if picture else None
    content = to_docx(document, png, today=today)
    return RenderedDraft(document, to_markdown(document), content, hashlib.sha256(content).hexdigest())


# ---- Markdown -------------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\*_\[\]<>#|~])")


def md_escape(text: str) -> str:
    """User text as literal Markdown: its markup characters escaped, line breaks kept as breaks."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", "").replace("\n", "  \n")


def _md_cell(text: str) -> str:
    return md_escape(text).replace("  \n", "<br>")


def to_markdown(doc: Document) -> str:
    """The document as Markdown (the console and `contract-bot draft`)."""
    out = [f"**{md_escape(doc.banner)}**", "", f"# {md_escape(doc.title)}", ""]
    out += [f"*{md_escape(line)}*  " for line in doc.headings] + [""]
    if doc.missing:
        out.append(f"**{paperwork.MISSING_HEADING}**")
        out += [f"- {md_escape(m)}" for m in doc.missing] + [""]
    for sec in doc.sections:
        out += [f"## {md_escape(sec.heading)}", ""]
        for block in sec.blocks:
            if isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                out.append("|" + "---|" * len(block.headers))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            else:
                out.append(md_escape(block))
            out.append("")
    out += ["Timeline picture: in the Word file (`/contract draft`, `--format docx`).", ""]
    out.append(f"**{md_escape(doc.banner)}**")
    return "\n".join(out) + "\n"


# ---- Word -----------------------------------------------------------------------------------------------------


def to_docx(doc: Document, png: bytes | None = None, *, today: date) -> bytes:
    """The document as an editable Word file: banner in header and footer, headings, tables, the timeline."""
    from docx import Document as Docx  # noqa: PLC0415 - loaded on first draft, not at start-up
    from docx.enum.text import WD_ALIGN_PARAGRAPH  # noqa: PLC0415
    from docx.shared import Inches, Pt  # noqa: PLC0415

    d = Docx()
    # same record, same day, same bytes' meaning: fixed properties rather than the moment of rendering
    props = d.core_properties
    props.title, props.author, props.comments = doc.title, "contract-bot", paperwork.DRAFT_LINE
    stamp = datetime.combine(today, time(), tzinfo=UTC).replace(tzinfo=None)
    props.created = props.modified = stamp
    props.last_modified_by = "contract-bot"
    d.styles["Table Grid"].font.size = Pt(8)  # once for every table, rather than per run (the slow part)
    section = d.sections[0]
    for part in (section.header, section.footer):
        p = part.paragraphs[0]
        p.text = f"{doc.banner} — {paperwork.DRAFT_LINE}"
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    banner = d.add_paragraph()
    banner.alignment = WD_ALIGN_PARAGRAPH.CENTER
    banner.add_run(doc.banner).bold = True
    d.add_heading(doc.title, level=0)
    for line in doc.headings:
        d.add_paragraph().add_run(line).italic = True
    if doc.missing:
        d.add_heading(paperwork.MISSING_HEADING, level=1)
        for m in doc.missing:
            d.add_paragraph(m, style="List Bullet")
    for sec in doc.sections:
        d.add_heading(sec.heading, level=1)
        for block in sec.blocks:
            if isinstance(block, Table):
                table = d.add_table(rows=1, cols=len(block.headers))
                table.style = "Table Grid"
                for cells, texts, bold in [
                    (table.rows[0].cells, block.headers, True),
                    *((table.add_row().cells, row, False) for row in block.rows),
                ]:
                    for cell, text in zip(cells, texts, strict=True):
                        run = cell.paragraphs[0].add_run(text)
                        if bold:
                            run.bold = True
            else:
                d.add_paragraph(block)
    d.add_heading("Timeline", level=1)
    if png:
        d.add_picture(io.BytesIO(png), width=Inches(6.5))
    else:
        d.add_paragraph("The timeline picture is not available in this version (`/contract timeline`).")
    closing = d.add_paragraph()
    closing.alignment = WD_ALIGN_PARAGRAPH.CENTER
    closing.add_run(doc.banner).bold = True
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()
