"""Need-to-know (SPEC "Access"): who may read a contract, and who may export them all. Pure: no Slack, no SQL.

Contract records are CUI. A person may read a contract when they hold any role, filed it, or are assigned to it;
a restricted contract only its filer, its assigned reviewers, managers, officials and admins. A refusal never says
whether the contract exists (`hidden`), so that nobody can probe for references.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.errors import DomainError, NotFound
from bot.domain.roles import ADMIN, MANAGER, OFFICIAL, ROLES

# Roles that may read every contract, restricted ones included.
SEES_RESTRICTED = frozenset({MANAGER, OFFICIAL, ADMIN})
# Roles that may export every contract (SPEC: `export` and `report` are for managers and admins).
EXPORTERS = frozenset({MANAGER, ADMIN})


@dataclass(frozen=True)
class Reader:
    """The person reading: their Slack user ID and the roles they hold."""

    user_id: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def of(cls, user_id: str, roles: Iterable[str]) -> Reader:
        """A reader from any iterable of role names."""
        return cls(user_id, frozenset(roles))


@dataclass(frozen=True)
class ContractFacts:
    """What the rule needs to know about a contract: who filed it, whether it is restricted, who is assigned."""

    filed_by: str
    restricted: bool = False
    reviewers: frozenset[str] = frozenset()


def may_read(contract: ContractFacts, reader: Reader) -> bool:
    """True when ``reader`` may read ``contract`` (`show`, `audit`, its line in `list`, App Home, drafts)."""
    if reader.user_id and (reader.user_id == contract.filed_by or reader.user_id in contract.reviewers):
        return True
    if contract.restricted:
        return bool(reader.roles & SEES_RESTRICTED)
    return bool(reader.roles & frozenset(ROLES))


def read_is_audited(contract: ContractFacts) -> bool:
    """Every read of a restricted contract is written to the audit log (who read it, when, through what)."""
    return contract.restricted


def may_export(roles: Iterable[str]) -> bool:
    """True when a person holding ``roles`` may export every contract (managers and admins)."""
    return bool(EXPORTERS & set(roles))


@dataclass(frozen=True)
class Scope:
    """Which contracts one reader may read, in the form a query needs: every contract, or every unrestricted one,
    and always those they filed or are assigned to. ``may_read`` is the rule; this is the same rule for a list."""

    user_id: str
    everything: bool
    unrestricted: bool


def scope_of(reader: Reader) -> Scope:
    """The contracts ``reader`` may read, as a Scope (see ``may_read``)."""
    return Scope(
        reader.user_id,
        everything=bool(reader.roles & SEES_RESTRICTED),
        unrestricted=bool(reader.roles & frozenset(ROLES)),
    )


def hidden(ref: str) -> str:
    """The one refusal for a contract someone may not read and for one that does not exist (same words)."""
    return f"You may not see {ref}, or it does not exist."


class NotVisible(NotFound):
    """The contract exists but the person may not read it; shown with exactly the words of a missing one."""

    def __init__(self, ref: str, reader: str) -> None:
        super().__init__(hidden(ref))
        self.ref = ref
        self.reader = reader

    def audited(self) -> DomainError:
        """What the audit log keeps of the refusal (the log may say what the person was not told)."""
        return DomainError(
            f"need-to-know: {self.ref} is not theirs to read (they were told it may not exist)"
        )
