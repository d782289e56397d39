"""Thin Slack listeners, grouped by surface; ``register`` wires them all."""

from __future__ import annotations

from slack_bolt import App

from handlers.context import HandlerContext


def register(app: App, ctx: HandlerContext) -> None:
    """Register every listener, the error handler and the global middleware on the Bolt app."""
    from handlers import actions, commands, errors, events, modals

    errors.register(app, ctx)
    commands.register(app, ctx)
    actions.register(app, ctx)
    modals.register(app, ctx)
    events.register(app, ctx)
