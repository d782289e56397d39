"""Roles and who may do what (SPEC "Who uses it"); admin alone never allows deciding (separation of duties)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.errors import PermissionDenied

ANYONE, REVIEWER, MANAGER, OFFICIAL, ADMIN = "anyone", "reviewer", "manager", "official", "admin"
ROLES = (REVIEWER, MANAGER, OFFICIAL, ADMIN)

ROLE_DESCRIPTIONS = {
    REVIEWER: "answer due-diligence questions, add notes",
    MANAGER: "stop-work, resume, assign, APNSA notice and clearance, close; receives reminders",
    OFFICIAL: "determine, certify, issue and revoke waivers",
    ADMIN: "grant and revoke roles, settings, export (not deciding)",
}


def has_role(actor_roles: Iterable[str], needed: str) -> bool:
    """True when the actor holds the needed role; every member is ``anyone``; roles do not imply each other."""
    return needed == ANYONE or needed in set(actor_roles)


def require_role(actor_roles: Iterable[str], needed: str, action: str) -> None:
    """Raises PermissionDenied naming the role ``action`` needs."""
    if not has_role(actor_roles, needed):
        raise PermissionDenied(
            f"`{action}` needs the *{needed}* role, which you do not have. An admin can grant it with "
            f"`/contract admin grant @you {needed}`.",
            role=needed,
        )
