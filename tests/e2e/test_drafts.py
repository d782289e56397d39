"""`draft CR-n KIND` and `sent CR-n KIND` over real HTTP (issue 15, SPEC "The order's paperwork"): the Word file a
manager or official receives in a direct message, read back with python-docx (which wrote it) and docx2python (an
independent reader); the fingerprint `sent` records; and the bad input a person meets."""

from __future__ import annotations

import hashlib
import io
import logging
import re

import docx
import pytest
from docx2python import docx2python

from bot.cli import main
from bot.domain import questions as qs
from tests.conftest import MANAGER, MEMBER, OFFICIAL, OFFICIAL2, REVIEWER
from tests.e2e.test_ice_timeline import ANSWERS, FILE_ICE, say

# the ICE / Paragon replay of tests/e2e/test_ice_timeline.py ([supposed] answers and decisions, public dates)
REASON = (
    "[supposed] IU-1: vendor ended the Italian contracts (MIT-2) and now operates under U.S. ownership with "
    "verifiable end-use controls"
)


def drafted(running, text: str, user: str) -> tuple[dict, bytes, str]:
    """Draft as ``user``; returns (the .docx file record, its bytes, the Markdown sent with it)."""
    before = len(running.double.files())
    reply = say(running, text, user=user)
    assert "will arrive as a Word file in a direct message" in reply, reply
    # built after the answer; the first draft of a process also loads python-docx and matplotlib
    running.double.wait_for(lambda d: len(d.files()) >= before + 2, timeout=60)
    files = running.double.files()[before:]
    word = next(f for f in files if f["name"].endswith(".docx"))
    md = next(f for f in files if f["name"].endswith(".md"))
    assert (
        word["channel_id"] == md["channel_id"] == running.double.dm_channel(user)
    )  # privately, to who asked
    return word, word["content"], md["content"].decode("utf-8")


def read_docx(content: bytes) -> tuple[str, str, list[list[str]], str]:
    """(body text, header and footer text, the question table's rows, docx2python's whole text)."""
    d = docx.Document(io.BytesIO(content))
    body = "\n".join(p.text for p in d.paragraphs)
    edges = "\n".join(p.text for s in d.sections for part in (s.header, s.footer) for p in part.paragraphs)
    table = next((t for t in d.tables if t.rows[0].cells[0].text == "ID"), None)
    rows = [[c.text for c in r.cells] for r in table.rows[1:]] if table is not None else []
    with docx2python(io.BytesIO(content)) as other:
        independent = other.text
    return body, edges, rows, independent


def replay_ice_until_determined(running) -> None:
    assert "Filed *CR-1*" in say(running, FILE_ICE)
    say(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    say(running, 'stopwork CR-1 reason="verify EO 14093 compliance" on=2024-10-08', user=MANAGER)
    for qid, value in ANSWERS.items():
        note = ' note="WhatsApp report, Jan 2025"' if qid == "IU-1" else ""
        assert "Recorded" in say(running, f"answer CR-1 {qid} {value}{note}", user=REVIEWER), qid
    say(running, f'determine CR-1 not-risky reason="{REASON}" on=2025-08-11', user=OFFICIAL)


def test_the_ice_paragon_apnsa_notice_is_drafted_from_the_record_and_its_sending_recorded(running):
    running.double.set_user(REVIEWER, real_name="Renée Reviewer")  # a notice names people, not Slack IDs
    running.double.set_user(OFFICIAL, real_name="Olu Official")
    replay_ice_until_determined(running)

    # before certification the §2(g) draft says so at the top
    _, early, early_md = drafted(running, "draft CR-1 apnsa", OFFICIAL)
    body, _, _, _ = read_docx(early)
    assert body.index("Not yet complete:") < body.index("The purchase")
    assert "the §2(f) certification by a relevant official" in body
    assert early_md.index("**Not yet complete:**") < early_md.index("## The purchase")

    say(running, 'certify CR-1 official="Secretary of Homeland Security" on=2025-08-13', user=OFFICIAL2)
    word, content, md = drafted(running, "draft CR-1 apnsa", MANAGER)
    assert word["name"] == "CR-1-apnsa-draft.docx"
    body, edges, rows, independent = read_docx(content)
    for text in (body, independent):
        assert "Not yet complete:" not in text
        assert "DRAFT — references only, no classified content" in text
        assert "88 FR 18957" in text and "Question set: EO 14093 due diligence questions" in text
        assert "Red flags (§2(a)(i) and (ii) answered Yes): IU-1" in text
        assert REASON in text
        assert "Certified not-risky by the Secretary of Homeland Security on 2025-08-13" in text
        assert "not-risky, recorded 2025-08-11 by Olu Official" in text
    assert "CUI" in edges and "DRAFT — references only" in edges  # header and footer
    assert body.splitlines()[0] == "CUI" and body.splitlines()[-1] == "CUI"  # top and bottom
    answers = {r[0]: r for r in rows}
    assert set(answers) == set(ANSWERS)
    for qid, value in ANSWERS.items():
        assert answers[qid][2].startswith(value), (qid, answers[qid])
        assert answers[qid][4] == "Renée Reviewer" and re.match(r"2026-11-24 \d\d:\d\d EST", answers[qid][5])
        assert f"| {qid} |" in md
    assert answers["IU-1"][2] == "yes (red flag)" and answers["IU-1"][3] == "WhatsApp report, Jan 2025"
    for qid in ANSWERS:  # docx2python reads the same table
        assert qid in independent

    # `sent … apnsa` is `notify`, with the fingerprint of the last draft
    sha = hashlib.sha256(content).hexdigest()
    reply = say(running, 'sent CR-1 apnsa on=2025-08-14 ref="DHS-2025-0814"', user=MANAGER)
    assert "APNSA notified (§2(g)) for CR-1 on 2025-08-14" in reply
    assert "No operational use before 2025-08-21" in reply
    assert f"SHA-256 `{sha}`" in reply and "DHS-2025-0814" in reply
    entries = {e.action: e for e in running.bot.service.timeline(1).entries}  # the last entry of each action
    assert entries["notify"].detail == f"on 2025-08-14: sent apnsa (§2(g)), sha256 {sha}, ref DHS-2025-0814"
    assert entries["draft"].detail == f"apnsa (§2(g)), sha256 {sha}" and entries["draft"].actor == MANAGER
    assert "waiting period ends 2025-08-21" in say(running, "show CR-1")
    # the same rules as `notify`: an official is refused (managers send the §2(g) notice)
    assert "*manager* role" in say(running, "sent CR-1 apnsa", user=OFFICIAL)


def test_bad_input_is_refused_privately_and_changes_nothing(running):
    assert "Filed *CR-1*" in say(running, "file vendor=Acme product=Eye agency=FBI purpose=excluded")
    assert "Did you mean `apnsa`?" in say(running, "draft CR-1 apnza", user=MANAGER)
    assert "has no waiver" in say(running, "draft CR-1 waiver", user=MANAGER)
    assert "excluded purpose" in say(running, "draft CR-1 apnsa", user=OFFICIAL)
    # a member with no role is refused for the role, whether or not the contract exists: naming one tells nothing
    no_role = say(running, "draft CR-1 dni", user=MEMBER)
    assert "needs the *manager* or *official* role" in no_role
    assert say(running, "draft CR-99 dni", user=MEMBER) == no_role.replace("CR-1", "CR-99")
    assert "You may not see CR-99, or it does not exist." in say(running, "draft CR-99 dni", user=MANAGER)
    assert "draft it first" in say(running, "sent CR-1 excluded", user=MANAGER)
    assert "no waiver was issued" in say(running, "sent CR-1 waiver", user=OFFICIAL)  # as `waiver-report`
    # text carrying a classification marking is refused at entry, so it can never reach a draft
    say(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    refused = say(running, 'answer CR-1 SCOPE-1 yes note="TOP SECRET//SI source report"', user=REVIEWER)
    assert "classification marking" in refused
    assert "classification marking" in say(running, 'sent CR-1 dni ref="SECRET//NOFORN cable"', user=MANAGER)
    _, content, md = drafted(running, "draft CR-1 excluded", MANAGER)
    body, _, _, independent = read_docx(content)
    for text in (body, independent, md):
        assert "SECRET" not in text and "NOFORN" not in text
    trail = say(running, "audit CR-1")
    assert "refused *draft*" in trail and "refused *sent*" in trail


def test_sent_excluded_records_the_4b_notice_and_ends_its_reminders(running):
    say(
        running,
        'file vendor=Acme product=Eye agency=FBI purpose=excluded awarded=2026-11-01 scope="lab countermeasures"',
    )
    assert "§4(b) notice" in say(running, "show CR-1")
    _, content, md = drafted(running, "draft CR-1 excluded", OFFICIAL)
    assert "by 2026-12-16 (§4(b))" in md and "Authorized uses: lab countermeasures" in md
    reply = say(running, 'sent CR-1 excluded ref="FBI-4b-1"', user=OFFICIAL)
    assert "The §4(b) `excluded` notice for CR-1 was sent on 2026-11-24" in reply
    assert hashlib.sha256(content).hexdigest() in reply and "changed after that draft" not in reply
    # a record that changed after its draft: the sending is recorded, and the person is told
    say(running, 'stopwork CR-1 reason="lab closed"', user=MANAGER)
    reply = say(running, "sent CR-1 excluded", user=MANAGER)
    assert "The record changed after that draft (stopwork)" in reply
    assert "§4(b) notice" not in say(running, "show CR-1")  # no reminder of it is left


@pytest.fixture
def cli(monkeypatch, capsys):
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "ADMIN_USER_IDS", "BOT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)

    def run(url: str, *argv: str) -> tuple[int, bytes, str]:
        monkeypatch.setenv("DATABASE_URL", url)
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out.encode("utf-8"), err

    handlers, level = logging.root.handlers[:], logging.root.level
    yield run
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


def test_the_command_line_drafts_markdown_or_word_without_changing_the_database(
    running, database, cli, tmp_path
):
    url, schema = database
    if schema is not None:
        pytest.skip("the command line reads the bot's own database URL (SQLite here)")
    replay_ice_until_determined(running)
    code, out, err = cli(url, "draft", "CR-1", "apnsa")
    assert code == 0, err
    text = out.decode("utf-8")
    assert (
        text.startswith("**CUI**")
        and "**Not yet complete:**" in text
        and REASON.replace("[", "\\[").replace("]", "\\]") in text
    )
    target = tmp_path / "apnsa.docx"
    code, _, err = cli(url, "draft", "CR-1", "apnsa", "--format", "docx", "--out", str(target))
    assert code == 0 and "sha256" in err
    body, _, rows, _ = read_docx(target.read_bytes())
    assert len(rows) == len(ANSWERS) and "IU-1" in body
    code, _, err = cli(url, "draft", "CR-1", "waiver")
    assert code == 1 and "has no waiver" in err
    # read-only: the command line recorded no draft, so `sent` has nothing to fingerprint
    assert "draft it first" in say(running, "sent CR-1 dni", user=MANAGER)


def test_the_redetermination_notice_names_the_new_information_from_the_trail(running):
    running.double.set_user(OFFICIAL, real_name="Olu Official")
    """`determine` clears the re-determination's fields; the §2(j) draft reads them back from the audit trail."""
    say(running, "file vendor=Acme product=Eye agency=FBI purpose=operational awarded=2026-01-05")
    say(
        running,
        'determine CR-1 prohibited reason="IU-2: used against U.S. persons" on=2026-03-02',
        user=OFFICIAL,
    )
    assert "has no re-determination" in say(running, "draft CR-1 redetermination", user=OFFICIAL)
    say(running, 'redetermine CR-1 reason="vendor sold to a state-owned buyer" on=2026-06-01', user=OFFICIAL)
    say(running, 'determine CR-1 prohibited reason="CI-4: foreign control" on=2026-06-10', user=OFFICIAL2)
    _, content, md = drafted(running, "draft CR-1 redetermination", MANAGER)
    body, _, _, independent = read_docx(content)
    for text in (body, independent):
        assert "Recorded 2026-06-01 by Olu Official: vendor sold to a state-owned buyer" in text
        assert (
            "prohibited, recorded 2026-06-10" in text and "CI-4: foreign control (before: prohibited)" in text
        )
    assert body.index("Not yet complete:") < body.index("The purchase")  # no step to end use is on record
    say(running, 'stopwork CR-1 reason="end operational use" on=2026-06-11', user=MANAGER)
    _, _, md = drafted(running, "draft CR-1 redetermination", MANAGER)
    assert (
        "Not yet complete" not in md
        and "Stop-work order in effect since 2026-06-11: end operational use" in md
    )


def test_the_waiver_notice_and_its_72_hour_report(running):
    say(running, "file vendor=Acme product=Eye agency=FBI purpose=operational awarded=2026-01-05")
    say(running, 'determine CR-1 prohibited reason="IU-2: used against U.S. persons"', user=OFFICIAL)
    say(
        running,
        'waiver CR-1 official="Attorney General" until=2027-05-01 reason="kidnapping case" '
        'circumstances="a child\'s life at imminent risk"',
        user=OFFICIAL,
    )
    _, content, md = drafted(running, "draft CR-1 waiver", OFFICIAL)
    body, _, _, independent = read_docx(content)
    for text in (body, independent):
        assert "IU-2: used against U.S. persons" in text and "Attorney General" in text
        assert "a child's life at imminent risk" in text
        assert "Issued 2026-11-24, in force through 2027-05-01" in text
        assert "due by 2026-11-27 10:00 EST" in text  # 72 hours after the waiver was recorded
    # recorded without alternatives=: the draft says so at the top
    assert body.index("why no feasible alternative exists") < body.index("The purchase")
    reply = say(running, 'sent CR-1 waiver ref="AG-2026-11"', user=OFFICIAL)
    assert "The 72-hour waiver report for CR-1 was sent on 2026-11-24" in reply
    assert hashlib.sha256(content).hexdigest() in reply


def test_a_draft_cites_and_lists_the_question_set_the_contract_was_filed_under(running, monkeypatch):
    """A later version of the questions becomes current: each contract's drafts keep the set it was filed under."""
    from tests.e2e.test_waivers_and_versions import NEW_VERSION, _new_set

    say(running, FILE_ICE)  # CR-1, under today's set
    filed_under = qs.current_set()
    _new_set(monkeypatch)  # SCOPE-6 added, MIT-4 dropped
    say(running, FILE_ICE.replace("Graphite", "Graphite 2"))  # CR-2, under the new set
    _, content, md = drafted(running, "draft CR-1 apnsa", MANAGER)
    assert f"EO 14093 due diligence questions, {filed_under.version}" in md and NEW_VERSION not in md
    assert "MIT-4" in md and "SCOPE-6" not in md
    _, content, md = drafted(running, "draft CR-2 apnsa", MANAGER)
    assert f"EO 14093 due diligence questions, {NEW_VERSION}" in md
    assert "SCOPE-6" in md and "MIT-4" not in md
    text, *_ = read_docx(content)
    assert "SCOPE-6" in text and "MIT-4" not in text


def test_the_apnsa_draft_lists_the_screening_results_and_waits_for_open_matches(running):
    """§2(g): a possible screening-list match goes into the draft; while it is open the draft says it is missing."""
    from tests.support.lists import load_fixture_list

    load_fixture_list(running)
    say(running, 'file vendor="Nimbus Intercept S.A." product=Implant agency=ICE purpose=operational')
    _, content, md = drafted(running, "draft CR-1 apnsa", MANAGER)
    text, *_ = read_docx(content)
    for doc in (text, md):
        assert "Screening lists" in doc and "M-1" in doc and "open: not yet decided" in doc
        assert "possible screening-list match" in doc  # in "Not yet complete"
    say(running, 'screen CR-1 M-1 no-match reason="another company of the same name"', user=MANAGER)
    _, content, md = drafted(running, "draft CR-1 apnsa", MANAGER)
    assert "decided: no match (another company of the same name)" in md
    assert "possible screening-list match" not in md
