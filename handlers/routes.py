"""The three kinds of request that carry the load, routed by their own IDs: `/contract`, our buttons, our forms.

NOTE: Bolt tries its listeners in registration order and, for each one, builds every argument any listener could
ask for just to call its matcher; a form submission paid for four such builds, more than the rest of its
acknowledgement. ``Routes`` is a Bolt global middleware registered after Bolt's own (authorization, SSL check,
URL verification, the bot's own events), so everything they do still happens first. It looks the listener up by
command, action_id or callback_id and calls it with Bolt's own ``Ack``, ``Respond`` and client; any other request
(events, shortcuts, someone else's IDs) goes on to Bolt's listeners as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from handlers.context import error_reply, log

__all__ = ["Routes"]


class Routes(Middleware):
    """Listeners by ID: ``command(name, fn)``, ``actions(ids, fn)``, ``views(ids, fn)``.

    Listeners are called with Bolt's argument names: a command listener with ``ack, command, respond, client,
    context``; a button listener with ``ack, body, action, context, client, respond``; a form listener with
    ``ack, body, view, context``."""

    def __init__(self) -> None:
        self._commands: dict[str, Callable] = {}
        self._actions: dict[str, Callable] = {}
        self._views: dict[str, Callable] = {}

    def command(self, name: str, fn: Callable) -> None:
        """Route this slash command to ``fn``."""
        self._commands[name] = fn

    def actions(self, action_ids: Iterable[str], fn: Callable) -> None:
        """Route block actions with these action_ids to ``fn``."""
        for action_id in action_ids:
            self._actions[action_id] = fn

    def views(self, callback_ids: Iterable[str], fn: Callable) -> None:
        """Route view submissions with these callback_ids to ``fn``."""
        for callback_id in callback_ids:
            self._views[callback_id] = fn

    @property
    def name(self) -> str:
        return "Routes(contract-bot)"

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:  # noqa: A002
        body = req.body
        context = req.context
        call = self._route(body, context)
        if call is None:
            return next()
        fn, kwargs = call
        ack = context.ack
        try:
            fn(ack=ack, context=context, **kwargs)
        except Exception:  # noqa: BLE001 - listeners answer their own errors; this is the last resort
            text = error_reply(log)
            if ack.response is None and "command" in kwargs:
                ack(response_type="ephemeral", text=text)
        return ack.response if ack.response is not None else BoltResponse(status=200, body="")

    def _route(self, body: dict, context) -> tuple[Callable, dict] | None:  # noqa: ANN001
        if not isinstance(body, dict):
            return None
        command = body.get("command")
        if command is not None:
            fn = self._commands.get(command) if isinstance(command, str) else None
            return (
                None
                if fn is None
                else (fn, {"command": body, "respond": context.respond, "client": context.client})
            )
        kind = body.get("type")
        if kind == "block_actions":
            actions = body.get("actions")
            action = actions[0] if isinstance(actions, list) and actions else None
            action_id = action.get("action_id") if isinstance(action, dict) else None
            fn = self._actions.get(action_id) if isinstance(action_id, str) else None
            return (
                None
                if fn is None
                else (
                    fn,
                    {"body": body, "action": action, "client": context.client, "respond": context.respond},
                )
            )
        if kind == "view_submission":
            view = body.get("view")
            callback_id = view.get("callback_id") if isinstance(view, dict) else None
            fn = self._views.get(callback_id) if isinstance(callback_id, str) else None
            return None if fn is None else (fn, {"body": body, "view": view})
        return None
