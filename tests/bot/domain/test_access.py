"""Need-to-know (SPEC "Access"), table-driven: every relation to a contract and every role, restricted or not."""

from __future__ import annotations

import pytest

from bot.domain.access import (
    ContractFacts,
    NotVisible,
    Reader,
    hidden,
    may_export,
    may_read,
    read_is_audited,
    scope_of,
)
from bot.domain.errors import NotFound
from bot.domain.roles import ADMIN, MANAGER, OFFICIAL, REVIEWER

ME = "UME1"
RELATIONS = ("filer", "assigned", "stranger")
ROLE_SETS = ((), (REVIEWER,), (MANAGER,), (OFFICIAL,), (ADMIN,), (REVIEWER, MANAGER))


def contract(relation: str, restricted: bool) -> ContractFacts:
    return ContractFacts(
        filed_by=ME if relation == "filer" else "UOTHER1",
        restricted=restricted,
        reviewers=frozenset({ME} if relation == "assigned" else {"UREVIEW9"}),
    )


def expected(relation: str, held: tuple[str, ...], restricted: bool) -> bool:
    if relation in ("filer", "assigned"):
        return True
    if restricted:
        return bool({MANAGER, OFFICIAL, ADMIN} & set(held))
    return bool(held)


@pytest.mark.parametrize("restricted", (False, True))
@pytest.mark.parametrize("held", ROLE_SETS)
@pytest.mark.parametrize("relation", RELATIONS)
def test_who_may_read_a_contract(relation, held, restricted):
    reader = Reader.of(ME, held)
    assert may_read(contract(relation, restricted), reader) is expected(relation, held, restricted)
    # the query form of the rule says the same (storage builds its WHERE clause from it)
    scope = scope_of(reader)
    facts = contract(relation, restricted)
    own = ME == facts.filed_by or ME in facts.reviewers
    by_scope = scope.everything or own or (scope.unrestricted and not facts.restricted)
    assert by_scope is may_read(facts, reader)


def test_an_unknown_person_reads_nothing_by_an_empty_id():
    assert not may_read(ContractFacts(filed_by=""), Reader(""))


def test_only_a_restricted_contracts_reads_are_audited():
    assert read_is_audited(ContractFacts("U1", restricted=True))
    assert not read_is_audited(ContractFacts("U1"))


@pytest.mark.parametrize(
    "held,ok",
    [((), False), ((REVIEWER,), False), ((OFFICIAL,), False), ((MANAGER,), True), ((ADMIN,), True)],
)
def test_managers_and_admins_export(held, ok):
    assert may_export(held) is ok


def test_a_hidden_contract_is_refused_in_the_words_of_a_missing_one():
    exc = NotVisible("CR-3", "UME1")
    assert isinstance(exc, NotFound)
    assert exc.user_text() == hidden("CR-3") == "You may not see CR-3, or it does not exist."
    assert "need-to-know" in exc.audited().message  # the log says why; the person is not told
