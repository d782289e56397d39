"""Domain errors: each one becomes a single friendly ephemeral reply and writes nothing but a refusal audit."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a user can cause; ``message`` is shown to them as is (already safe mrkdwn)."""

    # a refused role or state is recorded in the audit log; False for what no person caused
    audit_refusal = True

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def user_text(self) -> str:
        """The reply shown to the user: the problem, then the correct form when we know it."""
        if self.usage:
            return f"{self.message}\nUsage: `{self.usage}`"
        return self.message


class InputError(DomainError):
    """The input is malformed: unknown subcommand or key, bad value, bad date, unbalanced quotes, too long."""


class NotFound(DomainError):
    """The named thing (a contract reference, a question ID) does not exist."""


class PermissionDenied(DomainError):
    """The actor lacks the role the action needs; ``role`` names it."""

    def __init__(self, message: str, *, role: str, usage: str | None = None) -> None:
        super().__init__(message, usage=usage)
        self.role = role


class InvalidState(DomainError):
    """The contract's state does not allow the action (notify before certify, answer after determination, ...)."""
