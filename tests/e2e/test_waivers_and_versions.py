"""Issue 15 over real HTTP: a waiver's §2(m) justification (the extraordinary circumstances, why no feasible
alternative exists) in its reply, thread, `show` and audit; and versioned question sets: a contract is asked,
answered and shown under the set it was filed under, whatever the current set is later."""

from __future__ import annotations

import json

from sqlmodel import select

from bot.domain import questions as qs
from bot.services.exports import csv_rows
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Contract
from tests.conftest import ADMIN, OFFICIAL, REVIEWER
from tests.e2e.test_compliance import DHS, FILE, assert_refused, audit_entries, cmd, last_line, show

# ---- waivers: §2(m) asks for the extraordinary circumstances and why no feasible alternative exists ---------


def _prohibited(running) -> None:
    cmd(running, FILE)
    cmd(running, 'determine CR-1 prohibited reason="IU-2 credible"', user=OFFICIAL)


def test_a_waiver_records_its_circumstances_and_alternatives(running):
    _prohibited(running)
    reply = cmd(
        running,
        f'waiver CR-1 {DHS} until=2027-06-01 reason="hostage rescue" '
        'circumstances="a kidnapping <!channel> under way" alternatives="no other tool reaches the device"',
        user=OFFICIAL,
    )
    assert "Extraordinary circumstances (§2(m)): a kidnapping &lt;!channel&gt; under way" in reply
    assert "No feasible alternative (§2(m)): no other tool reaches the device" in reply
    assert "Not recorded" not in reply
    assert "a kidnapping &lt;!channel&gt; under way" in last_line(running)  # escaped in the thread too
    text = show(running)
    assert "*Extraordinary circumstances (§2(m)):* a kidnapping &lt;!channel&gt; under way" in text
    assert "*No feasible alternative (§2(m)):* no other tool reaches the device" in text
    # the audit entry of the waiver holds both (and the reason), and `audit` shows them
    entry = [e for e in audit_entries(running) if e.action == "waiver"][-1]
    after = json.loads(entry.after)
    assert after["waiver_circumstances"] == "a kidnapping <!channel> under way"
    assert after["waiver_alternatives"] == "no other tool reaches the device"
    assert after["waiver_reason"] == "hostage rescue"
    assert "CSV" in cmd(running, "admin export", user=ADMIN)
    running.double.wait_for(lambda d: len(d.files()) == 1)
    (row,) = csv_rows(running.double.files()[0]["content"])[1]
    assert row["waiver_circumstances"] == "a kidnapping @channel under way"  # as plain text, as every export
    assert row["waiver_alternatives"] == "no other tool reaches the device"
    timeline = cmd(running, "audit CR-1")
    assert "no other tool reaches the device" in timeline and "&lt;!channel&gt;" in timeline

    # a new waiver after a revocation is a new decision: the old justification does not carry over
    cmd(running, 'revoke-waiver CR-1 reason="rescued"', user=OFFICIAL)
    cmd(running, "waiver-report CR-1", user=OFFICIAL)
    reply = cmd(running, f'waiver CR-1 {DHS} until=2027-06-01 reason="again"', user=OFFICIAL)
    assert 'Not recorded: `circumstances="…"` and `alternatives="…"`' in reply
    text = show(running)
    assert "*Extraordinary circumstances (§2(m)):* not recorded" in text
    assert "*No feasible alternative (§2(m)):* not recorded" in text


def test_a_waiver_justification_is_checked_like_any_text(running):
    _prohibited(running)
    for text, expect in [
        (f'waiver CR-1 {DHS} until=2027-06-01 reason="x" circumstances="SECRET//NOFORN memo 7"', ""),
        (f'waiver CR-1 {DHS} until=2027-06-01 reason="x" alternatives="{"y" * 5000}"', "alternatives"),
        (f'waiver CR-1 {DHS} until=2027-06-01 reason="x" alternative="none"', "alternative"),
    ]:
        assert_refused(running, text, OFFICIAL, expect)
    assert "memo 7" not in audit_entries(running)[-3].detail
    assert "Waiver (§2(m))" not in show(running)
    assert "circumstances=" in cmd(running, "help waiver")


# ---- question sets: each contract keeps the version it was filed under ------------------------------------

NEW_VERSION = "2027-06"


def _new_set(monkeypatch) -> qs.QuestionSet:
    """A later version of the questions becomes current: SCOPE-6 added, CI-1 reworded, MIT-4 dropped."""
    old = qs.current_set()
    questions = [
        qs.Question(q.qid, q.section, q.citation, "Reworded: " + q.text, q.red_flag_on)
        if q.qid == "CI-1"
        else q
        for q in old.questions
        if q.qid != "MIT-4"
    ]
    at = max(i for i, q in enumerate(questions) if q.section == "SCOPE") + 1
    questions.insert(at, qs.Question("SCOPE-6", "SCOPE", "§5(b)", "Is it furnished by a new kind of vendor?"))
    new = qs.QuestionSet(NEW_VERSION, old.sections, tuple(questions))
    monkeypatch.setitem(qs.QUESTION_SETS, NEW_VERSION, new)
    monkeypatch.setattr(qs, "QUESTION_SET_VERSION", NEW_VERSION)
    return new


def _stored_set(running, ref: int) -> str | None:
    with unit_of_work(running.bot.session_factory) as s:
        return repo.get_contract(s, ref).question_set


def test_a_contract_keeps_its_question_set_when_the_current_set_changes(running, monkeypatch):
    cmd(running, FILE)
    assert _stored_set(running, 1) == qs.QUESTION_SET_VERSION == "2026-12"
    assert "(question set 2026-12)" in show(running)
    # the questions change after CR-1 was filed
    new = _new_set(monkeypatch)
    cmd(running, FILE + " anyway=yes")
    assert _stored_set(running, 2) == NEW_VERSION
    assert "(question set 2027-06)" in show(running, 2)
    assert "(question set 2026-12)" in show(running, 1)

    # CR-2 is asked SCOPE-6; CR-1 is not, and may not be answered it
    for ref in (1, 2):
        for q in ("SCOPE-1", "SCOPE-2", "SCOPE-3", "SCOPE-4", "SCOPE-5"):
            assert "Recorded" in cmd(running, f"answer CR-{ref} {q} yes", user=REVIEWER)
    assert "Recorded CR-2 SCOPE-6" in cmd(running, "answer CR-2 SCOPE-6 yes", user=REVIEWER)
    refused = cmd(running, "answer CR-1 SCOPE-6 yes", user=REVIEWER)
    assert "not a question of CR-1 (question set 2026-12)" in refused
    # CR-1 went on to PROC with SCOPE complete under its own set; CR-2 only once SCOPE-6 was answered
    texts1 = " ".join(m["text"] for m in running.thread(1))
    texts2 = " ".join(m["text"] for m in running.thread(2))
    assert "SCOPE-6" not in texts1 and "PROC-1" in texts1
    assert "SCOPE-6" in texts2 and "PROC-1" in texts2

    # progress counts each contract's own questions: 20 for CR-1, 20 (one added, one dropped) for CR-2
    text1, text2 = show(running, 1), show(running, 2)
    assert "5 of 20" in text1 and "6 of 20" in text2
    # the reworded CI-1 is CR-2's; CR-1 keeps the words it was asked
    view1, view2 = running.bot.service.show(1), running.bot.service.show(2)
    assert not view1.question("CI-1").text.startswith("Reworded")
    assert view2.question("CI-1").text.startswith("Reworded")
    assert view1.question("MIT-4") is not None and view2.question("MIT-4") is None
    assert new.version == NEW_VERSION

    # the CSV export holds both: each row names its set, and has the answer columns of its own set
    assert "CSV" in cmd(running, "admin export", user=ADMIN)
    running.double.wait_for(lambda d: len(d.files()) == 1)
    _, rows = csv_rows(running.double.files()[0]["content"])
    assert [(r["reference"], r["question_set"]) for r in rows] == [("CR-1", "2026-12"), ("CR-2", NEW_VERSION)]
    assert rows[0]["answer_SCOPE-6"] == "" and rows[1]["answer_SCOPE-6"] == "yes"
    assert rows[0]["answer_SCOPE-5"] == rows[1]["answer_SCOPE-5"] == "yes"


def test_a_contract_filed_before_versions_is_under_the_first_set(running):
    cmd(running, FILE)
    with unit_of_work(running.bot.session_factory) as s:
        for c in s.execute(select(Contract)).scalars():
            c.question_set = None  # as migration 0013 leaves the contracts filed before it
    assert "(question set 2026-12)" in show(running)
    assert "Recorded" in cmd(running, "answer CR-1 SCOPE-1 yes", user=REVIEWER)
