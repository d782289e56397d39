"""Question sets by version (bot.domain.questions): a contract's set is the one it was filed under."""

from __future__ import annotations

import pytest

from bot.domain import questions as qs


def test_the_current_set_is_the_first_and_holds_the_orders_twenty_questions():
    current = qs.current_set()
    assert current.version == qs.QUESTION_SET_VERSION == qs.FIRST_QUESTION_SET
    assert qs.question_set(None) is current  # contracts filed before versions existed
    assert current.ids[0] == "SCOPE-1" and len(current.ids) == 20
    assert current.risk_ids() == ["CI-1", "CI-2", "CI-3", "CI-4", "IU-1", "IU-2", "IU-3"]
    assert qs.known_ids() == frozenset(current.ids)


def test_a_later_set_changes_nothing_of_an_earlier_one(monkeypatch):
    first = qs.current_set()
    later = qs.QuestionSet(
        "2099-01",
        first.sections,
        (
            *first.questions_in("SCOPE"),
            qs.Question("SCOPE-6", "SCOPE", "§5(b)", "New?"),
            *first.questions[5:-1],
        ),
    )
    monkeypatch.setitem(qs.QUESTION_SETS, "2099-01", later)
    monkeypatch.setattr(qs, "QUESTION_SET_VERSION", "2099-01")
    assert qs.current_set() is later and qs.question_set(None) is first
    assert "SCOPE-6" in qs.known_ids() and "MIT-4" in qs.known_ids()
    scope = {q: "yes" for q in first.ids[:5]}
    # SCOPE is complete under the first set, not under the later one (SCOPE-6 is open)
    assert first.sections_to_ask(scope)[-1] == "PROC" and later.sections_to_ask(scope) == ("SCOPE",)
    assert [q.qid for q in later.questions_to_ask(scope, set(scope))] == ["SCOPE-6"]
    assert first.progress(scope) == (5, 20) and later.progress(scope) == (5, 20)
    assert later.red_flags({"CI-1": "yes", "MIT-4": "yes"}) == ["CI-1"]
    with pytest.raises(KeyError):
        first.get("SCOPE-6")
    with pytest.raises(KeyError):
        qs.question_set("1999-01")
