"""The order's notices from plain record facts (bot.domain.paperwork): content, what is missing, refused kinds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain import paperwork as pw
from bot.domain import questions as qs
from bot.domain.errors import InvalidState

ZONE = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 24)
AT = datetime(2025, 8, 1, 14, 0, tzinfo=UTC)

ANSWERS = {q.qid: "no" for q in qs.QUESTIONS} | {
    "SCOPE-1": "yes",
    "IU-1": "yes",
    "MIT-2": "yes",
    "PROC-1": "unknown",
}


def facts(**changes) -> pw.RecordFacts:
    answers = tuple(
        pw.AnswerFact(
            q.qid,
            q.section,
            q.citation,
            q.text,
            ANSWERS.get(q.qid),
            "evidence memo 12" if q.qid == "IU-1" else None,
            "U0REVIEW",
            AT,
        )
        for q in qs.QUESTIONS
    )
    base = pw.RecordFacts(
        ref="CR-1",
        vendor="Paragon Solutions",
        product="Graphite",
        agency="ICE",
        filed_by="U0MEMBER",
        filed_at=AT,
        awarded_on=date(2024, 9, 27),
        purpose="operational",
        answers=answers,
        determination="not-risky",
        determined_on=date(2025, 8, 11),
        determined_by="U0OFFICIAL",
        determination_reason="IU-1 addressed: contracts ended (MIT-2)",
        certified_on=date(2025, 8, 13),
        certified_by="Secretary of Homeland Security",
    )
    return replace(base, **changes)


def build(kind: str, **changes) -> pw.Document:
    return pw.build_document(facts(**changes), kind, today=TODAY, zone=ZONE, banner="CUI//PROCURE")


def test_every_document_has_banner_draft_line_legal_basis_and_question_set():
    for kind, changes in [
        ("apnsa", {}),
        ("dni", {}),
        ("waiver", {"waiver_issued_on": date(2025, 1, 2), "waiver_official": "Attorney General"}),
        ("redetermination", {"redetermination_on": date(2025, 9, 1), "redetermination_reason": "new report"}),
        ("excluded", {"purpose": "excluded", "scope": "countermeasure testing"}),
    ]:
        doc = build(kind, **changes)
        text = doc.text()
        assert text.startswith("CUI//PROCURE") and text.endswith("CUI//PROCURE"), kind
        assert pw.DRAFT_LINE in doc.headings, kind
        assert "Executive Order 14093" in text and "88 FR 18957" in text and pw.SECTION_OF[kind] in text
        assert "Question set: EO 14093 due diligence questions" in text, kind


def test_apnsa_holds_every_answer_red_flags_mitigation_determination_and_certification():
    doc = build("apnsa")
    text = doc.text()
    for q in qs.QUESTIONS:
        assert q.qid in text
    table = next(
        b for s in doc.sections for b in s.blocks if isinstance(b, pw.Table) and b.headers[0] == "ID"
    )
    rows = {r[0]: r for r in table.rows}
    assert rows["IU-1"][2] == "yes (red flag)" and rows["IU-1"][3] == "evidence memo 12"
    assert rows["IU-1"][4] == "U0REVIEW" and rows["IU-1"][5] == "2025-08-01 10:00 EDT"
    assert "Red flags (§2(a)(i) and (ii) answered Yes): IU-1" in text
    assert "Mitigating considerations (§2(a)(iii)):" in text
    assert "IU-1 addressed: contracts ended (MIT-2)" in text
    assert "Certified not-risky by the Secretary of Homeland Security on 2025-08-13" in text
    assert doc.missing == ()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"certified_on": None, "certified_by": None}, "the §2(f) certification by a relevant official"),
        ({"determination": None, "certified_on": None}, "the §2(a) determination"),
        ({"answers": ()}, None),
        ({"redetermination_on": date(2025, 9, 1), "redetermination_open": True}, "re-determination is open"),
    ],
)
def test_apnsa_before_it_is_complete_says_what_is_missing_at_the_top(changes, says):
    doc = build("apnsa", **changes)
    assert doc.missing, changes
    if says:
        assert any(says in m for m in doc.missing), doc.missing


def test_unanswered_and_unknown_risk_answers_are_missing():
    answers = tuple(
        replace(a, answer=None) if a.qid == "CI-2" else replace(a, answer="unknown") if a.qid == "CI-3" else a
        for a in facts().answers
    )
    missing = build("dni", answers=answers).missing
    assert "answers to CI-2" in missing and "CI/IU questions answered Unknown: CI-3" in missing


@pytest.mark.parametrize(
    ("kind", "changes", "says"),
    [
        ("waiver", {}, "has no waiver"),
        ("excluded", {}, "not bought for an excluded purpose"),
        ("redetermination", {}, "has no re-determination"),
        ("apnsa", {"purpose": "excluded"}, "excluded purpose"),
        ("apnsa", {"determination": "prohibited"}, "determined *prohibited*"),
        ("apnsa", {"determination": "out-of-scope"}, "out-of-scope"),
    ],
)
def test_a_kind_the_contract_cannot_have_is_refused(kind, changes, says):
    with pytest.raises(InvalidState) as err:
        build(kind, **changes)
    assert says in err.value.message


def test_waiver_names_what_was_waived_its_term_and_the_72_hour_deadline_and_old_waivers_lack_justification():
    issued = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    old = build(
        "waiver",
        determination="prohibited",
        waiver_official="Attorney General",
        waiver_issued_on=date(2025, 3, 3),
        waiver_issued_at=issued,
        waiver_until=date(2026, 3, 2),
        waiver_reason="hostage case",
    )
    text = old.text()
    assert "determination of 2025-08-11 (prohibited)" in text
    assert "Issued 2025-03-03, in force through 2026-03-02" in text
    assert "due by 2025-03-06 10:00 EST" in text  # 72 hours after issue, in the bot's zone
    assert any("extraordinary circumstances" in m for m in old.missing)
    assert any("no feasible alternative" in m for m in old.missing)
    new = build(
        "waiver",
        waiver_official="Attorney General",
        waiver_issued_on=date(2025, 3, 3),
        waiver_issued_at=issued,
        waiver_circumstances="imminent threat to life",
        waiver_alternatives="no other tool reaches the device",
        waiver_reported_on=date(2025, 3, 4),
    )
    assert new.missing == () and "Report sent on 2025-03-04" in new.text()


def test_redetermination_states_the_new_information_the_new_determination_and_the_steps():
    doc = build(
        "redetermination",
        redetermination_on=date(2025, 9, 1),
        redetermination_reason="vendor sold to a foreign intelligence service",
        redetermination_by="U0OFFICIAL",
        previous_determination="not-risky",
        determination="prohibited",
        determined_on=date(2025, 9, 10),
    )
    text = doc.text()
    assert "Recorded 2025-09-01 by U0OFFICIAL: vendor sold to a foreign intelligence service" in text
    assert "prohibited, recorded 2025-09-10" in text and "(before: not-risky)" in text
    assert any("steps taken to end operational use" in m for m in doc.missing)
    stopped = build(
        "redetermination",
        redetermination_on=date(2025, 9, 1),
        determination="prohibited",
        stopwork_since=date(2025, 9, 11),
        stopwork_reason="end use now",
    )
    assert (
        stopped.missing == () and "Stop-work order in effect since 2025-09-11: end use now" in stopped.text()
    )
    still_open = build("redetermination", redetermination_on=date(2025, 9, 1), redetermination_open=True)
    assert any("new determination" in m for m in still_open.missing)


def test_excluded_names_purpose_uses_and_the_45_day_deadline():
    doc = build("excluded", purpose="excluded", scope="countermeasure research in a lab")
    text = doc.text()
    assert "Authorized uses: countermeasure research in a lab" in text
    assert "by 2024-11-11 (§4(b))" in text and doc.missing == ()
    bare = build("excluded", purpose="excluded", awarded_on=None)
    assert len(bare.missing) == 2 and "not recorded" in bare.text()


def test_question_set_defaults_to_the_current_one():
    assert build("dni").headings[2] == f"Question set: {pw.current_question_set()}."
    assert "2019" in build("dni", question_set="EO 14093 due diligence questions, 2019").headings[2]
