"""Thin Slack listeners, grouped by surface; ``register`` wires them all."""

from __future__ import annotations

from slack_bolt import App

from handlers.context import HandlerContext


def register(app: App, ctx: HandlerContext) -> None:
    """Register every listener on the Bolt app."""
    from handlers import actions, commands, events, modals
    from handlers.routes import Routes

    # The command, buttons and forms are routed by ID in one middleware (handlers/routes.py says why); Bolt's
    # listeners get the rest (shortcuts, events).
    routes = Routes()
    commands.register(routes, ctx)
    actions.register(routes, ctx)
    modals.register(app, routes, ctx)
    events.register(app, ctx)
    app.use(routes)
