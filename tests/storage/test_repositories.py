"""storage.repositories: what a transaction reads once (roles, assignments) follows its own writes (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from storage import repositories as repo
from storage.db import make_engine, migrate, session_factory, unit_of_work
from storage.models import Assignment, Contract, RoleGrant

NOW = datetime(2024, 9, 27, 14, 0, tzinfo=UTC)


def factory_for(database):  # noqa: ANN001, ANN201
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    return engine, session_factory(engine)


def filed(s):  # noqa: ANN001, ANN201
    return repo.add_contract(
        s,
        Contract(
            vendor="Paragon Solutions",
            product="Graphite",
            agency="ICE",
            filed_by="UM",
            filed_at=NOW,
            status="intake",
        ),
    )


def test_roles_read_in_a_transaction_follow_its_grants_and_revocations(database):
    engine, factory = factory_for(database)
    with unit_of_work(factory) as s:
        assert repo.get_roles(s, "U1") == set()
        assert repo.add_role(s, RoleGrant(user_id="U1", role="reviewer", granted_by="UA", granted_at=NOW))
        assert repo.get_roles(s, "U1") == {"reviewer"}
        assert not repo.add_role(s, RoleGrant(user_id="U1", role="reviewer", granted_by="UA", granted_at=NOW))
        assert repo.remove_role(s, "U1", "reviewer")
        assert repo.get_roles(s, "U1") == set()
    with unit_of_work(factory) as s:
        assert repo.get_roles(s, "U1") == set()
    engine.dispose()


def test_assignments_read_in_a_transaction_follow_its_assignments(database):
    engine, factory = factory_for(database)
    with unit_of_work(factory) as s:
        contract = filed(s)
        assert contract.id is not None
        assert repo.list_assignments(s, contract.id) == []
        assignment = Assignment(contract_id=contract.id, user_id="UR", assigned_by="UM", assigned_at=NOW)
        assert repo.add_assignment(s, assignment)
        assert repo.list_assignments(s, contract.id) == ["UR"]
    engine.dispose()


def test_roles_and_assignments_read_together_are_what_each_read_alone_gives_and_follow_writes(database):
    engine, factory = factory_for(database)
    with unit_of_work(factory) as s:
        contract = filed(s)
        assert contract.id is not None
        for user in ("UZ", "UA"):  # assigned in this order, not the alphabet's
            repo.add_assignment(
                s, Assignment(contract_id=contract.id, user_id=user, assigned_by="UM", assigned_at=NOW)
            )
        for role in ("reviewer", "manager"):
            repo.add_role(s, RoleGrant(user_id="UZ", role=role, granted_by="UA", granted_at=NOW))
        contract_id = contract.id
    statements: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *a: statements.append(a[2]) if "role_grant" in a[2] or "assignment" in a[2] else None,
    )
    with unit_of_work(factory) as s:
        repo.read_access(s, "UZ", contract_id)
        assert len(statements) == 1
        assert repo.get_roles(s, "UZ") == {"reviewer", "manager"}
        assert repo.list_assignments(s, contract_id) == ["UZ", "UA"]
        assert len(statements) == 1  # both answered from the one read
        repo.remove_role(s, "UZ", "manager")
        assert repo.get_roles(s, "UZ") == {"reviewer"}
        repo.read_access(s, "UN", 999_999)  # nobody's roles, a contract that does not exist
        assert repo.get_roles(s, "UN") == set() and repo.list_assignments(s, 999_999) == []
    engine.dispose()
