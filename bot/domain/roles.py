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


def a_role(role: str) -> str:
    """The role with its article: "a reviewer", "an official", "an admin"."""
    return f"{'an' if role[:1].lower() in 'aeiou' else 'a'} {role}"


def grant_command(user_id: str | None, role: str) -> str:
    """The command an admin types to grant ``role`` (to the user's real mention when known)."""
    who = f"<@{user_id}>" if user_id else "@user"
    return f"`/contract admin grant {who} {role}`"


def require_role(actor_roles: Iterable[str], needed: str, action: str, actor: str | None = None) -> None:
    """Raises PermissionDenied naming the role ``action`` needs and the grant that gives it to ``actor``."""
    if not has_role(actor_roles, needed):
        raise PermissionDenied(
            f"`{action}` needs the *{needed}* role, which you do not have. An admin can grant it with "
            f"{grant_command(actor, needed)}.",
            role=needed,
        )
