"""`report annual` (EO 14093 §4(d)) and `timeline CR-n` as a manager and a member meet them: the Word file arrives in
their direct messages and is read back with python-docx (the library that wrote it) and docx2python (an independent
reader); the PNG is a picture Slack previews. The selection's combinatorics are in tests/bot/domain/test_annual.py."""

from __future__ import annotations

import io
from datetime import date

from docx import Document
from docx2python import docx2python
from PIL import Image

from bot.domain.questions import QUESTIONS
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, OFFICIAL2, REVIEWER
from tests.support.replies import flat

D = date.fromisoformat
BANNER = "CUI"  # the default CUI_BANNER


def say(running, text: str, user: str = MANAGER) -> str:
    r = running.command(text, user=user)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def answer_all(running, ref: int, flags: tuple[str, ...] = ()) -> None:
    for q in QUESTIONS:
        value = "yes" if q.section in ("SCOPE", "PROC", "MIT") or q.qid in flags else "no"
        running.bot.service.answer(REVIEWER, ref, q.qid, value)


def in_use(running, ref: int, determined: str, certified: str, notice: str, reason: str) -> None:
    service = running.bot.service
    answer_all(running, ref)
    service.determine(OFFICIAL, ref, "not-risky", reason, D(determined))
    service.certify(OFFICIAL2, ref, "Secretary of Homeland Security", D(certified))
    service.notify(MANAGER, ref, D(notice))


def a_year_of_contracts(running) -> None:
    """The reporting year 2026 (2025-03-28 to 2026-03-27): a use, an ended use, a closed purchase, an old contract."""
    service = running.bot.service
    say(
        running,
        'file vendor="Alpha Cyber" product=Probe agency=FBI awarded=2025-05-01 purpose=operational',
        MEMBER,
    )
    say(
        running,
        'file vendor="Beta Intel" product=Lens agency=DEA awarded=2024-01-10 purpose=operational',
        MEMBER,
    )
    say(
        running,
        # a vendor written with markup: shown as typed in Word, escaped in Markdown
        'file vendor="Gamma *Labs* | <!here>" product=Sandbox agency=CBP awarded=2025-07-01 purpose=excluded',
        MEMBER,
    )
    say(
        running,
        'file vendor="Delta Old" product=Relic agency=ICE awarded=2023-06-01 purpose=operational',
        MEMBER,
    )
    for ref in (1, 2, 3, 4):
        service.assign(MANAGER, ref, [REVIEWER])
    in_use(running, 1, "2025-06-01", "2025-06-02", "2025-06-03", "vendor and tool vetted: no CI or IU risk")
    in_use(running, 2, "2024-02-01", "2024-02-02", "2024-02-03", "vetted in 2024")
    service.redetermine(OFFICIAL, 2, "new reports of misuse", D("2025-09-01"))
    service.answer(REVIEWER, 2, "IU-1", "yes")
    service.determine(
        OFFICIAL, 2, "prohibited", "IU-1: misuse by a foreign government reported", D("2025-09-15")
    )
    service.stopwork(MANAGER, 2, "use ended after the prohibition", D("2025-09-16"))
    service.close(MANAGER, 3, "research finished", D("2025-12-01"))


def report(running, text: str, user: str, n: int) -> tuple[dict, Document, str]:
    """The report's Word file (the ``n``-th report sent), read back by both readers; its Markdown came with it."""
    reply = say(running, text, user)
    assert "annual report" in reply and "direct message" in reply, reply
    running.double.wait_for(lambda d: len(d.files()) == 2 * n)
    docx_file, md_file = running.double.files()[-2:]
    assert md_file["name"] == docx_file["name"].replace(".docx", ".md")
    assert md_file["content"].decode().startswith("**CUI**")
    content = docx_file["content"]
    return docx_file, Document(io.BytesIO(content)), docx2python(io.BytesIO(content)).text


def rows(table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows[1:]]


def test_the_annual_report_has_the_right_contracts_in_each_section(running):
    a_year_of_contracts(running)
    f, doc, text = report(running, "report annual year=2026", MANAGER, 1)
    assert f["name"] == "eo14093-4d-annual-report-2026.docx" and f["channel_id"].startswith("D")
    assert "2025-03-28 to 2026-03-27" in f["initial_comment"]
    section = doc.sections[0]
    for part in (section.header, section.footer):
        assert [p.text for p in part.paragraphs] == [BANNER, "DRAFT — references only, no classified content"]
    uses, ended, purchases = doc.tables
    assert [r[0] for r in rows(uses)] == ["CR-1"]
    (use,) = rows(uses)
    assert "vendor and tool vetted: no CI or IU risk" in use[4] and use[3] == "2025-06-10"
    assert "Secretary of Homeland Security" in use[5] and "APNSA notice 2025-06-03" in use[5]
    (end,) = rows(ended)
    assert end[0] == "CR-2" and end[2] == "2025-09-15" and end[3] == "prohibited"
    assert "IU-1: misuse by a foreign government reported" in end[4] and "§2(j)" in end[4]
    assert "stop-work order in effect since 2025-09-16" in end[5] and "not-risky" in end[6]
    assert [(r[0], r[5].split(" ")[0], r[6]) for r in rows(purchases)] == [
        ("CR-1", "Yes", "open"),
        ("CR-3", "No", "closed 2025-12-01"),  # closed contracts included
    ]
    assert "CR-4" not in text  # bought in 2023, never in use in the year
    # an independent reader sees the same: the sections, the banner, the legal basis, a picture per contract
    for words in (
        "(i) Current operational uses and why each is not risky",
        "(ii) Operational uses ended in the past year as risky",
        "(iii) Purchases in the past year",
        "Executive Order 14093",
        "88 FR 18957",
        "DRAFT — references only, no classified content",
    ):
        assert words in text, words
    assert [p.text for p in doc.paragraphs if p.style.name == "Heading 2"] == [
        "CR-1: Alpha Cyber, Probe (FBI)",
        "CR-2: Beta Intel, Lens (DEA)",
        "CR-3: Gamma *Labs* | <!here>, Sandbox (CBP)",
    ]
    assert len(doc.inline_shapes) == 3


def test_a_year_with_no_data_says_so_and_bad_input_changes_nothing(running):
    say(running, 'file vendor="Alpha Cyber" product=Probe agency=FBI awarded=2025-05-01', MEMBER)
    f, doc, text = report(running, "report annual year=2024", ADMIN, 1)  # admins too
    assert "No data" in text and "2023-03-28 to 2024-03-27" in text
    assert "no data for this year" in f["initial_comment"]
    assert all(len(t.rows) == 1 for t in doc.tables) or not doc.tables
    assert text.count("None in this reporting year.") == 3
    for bad, words in (
        ("report annual year=abc", "must be a year, four digits"),
        ("report annual year=2023", "must be 2024 or later"),
        ("report annual year=2031", "has not begun"),
    ):
        assert words in say(running, bad)
    assert "needs the *manager* or *admin* role" in say(
        running, "report annual", MEMBER
    )  # a member with no role
    assert len(running.double.files()) == 2  # none of them sent a file (the first report: Word and Markdown)


def test_the_timeline_picture_is_sent_privately_to_whoever_may_read_the_contract(running):
    say(
        running,
        'file vendor="Paragon Solutions" product=Graphite agency=ICE awarded=2024-09-27 term="1 year"',
        MEMBER,
    )
    running.bot.service.stopwork(MANAGER, 1, "verify EO 14093 compliance", D("2024-10-08"))
    running.bot.service.resume(MANAGER, 1, "lifted by modification", D("2025-08-29"))
    reply = say(running, "timeline CR-1", MEMBER)  # the filer may read it
    assert "CR-1" in reply and "direct messages" in reply
    running.double.wait_for(lambda d: len(d.files()) == 1)
    f = running.double.files()[0]
    assert f["name"] == "CR-1-timeline.png" and f["channel_id"].startswith("D")
    image = Image.open(io.BytesIO(f["content"]))
    assert (
        image.format == "PNG" and image.width == 1000
    )  # 5 inches at 200 dpi: sharp in print, legible at 360 px
    say(running, "restrict CR-1")
    other = "UOTHER1"
    assert "You may not see CR-1, or it does not exist" in say(running, "timeline CR-1", other)
    assert "You may not see CR-9, or it does not exist" in say(running, "timeline CR-9", other)
    assert "CR-n" in say(running, "timeline", other)
    assert len(running.double.files()) == 1


def test_the_command_line_report_is_markdown_from_the_existing_database(running, cli):
    a_year_of_contracts(running)
    code, out, err = cli("report", "annual", "--year", "2026")
    assert code == 0, err
    assert "# EO 14093 §4(d) annual report, 2025-03-28 to 2026-03-27" in out
    i, ii, iii = (out.index(h) for h in ("## (i)", "## (ii)", "## (iii)"))
    assert "CR-1" in out[i:ii] and "CR-2" not in out[i:ii]
    assert "CR-2" in out[ii:iii] and "CR-1" not in out[ii:iii]
    assert "CR-3" in out[iii:] and "CR-4" not in out
    assert "| CR-3 | Gamma \\*Labs\\* \\| \\<!here\\>, Sandbox |" in out
    assert "eo14093-4d-annual-report-2026.md" in err
    code, out, err = cli("report", "annual", "--year", "2031")
    assert code == 1 and "has not begun" in err
