"""`contract-bot console` and `contract-bot demo`: the whole bot in a terminal, with no Slack workspace.

The console builds the real app with ``create_app`` and sends what a person types through the real Bolt app
(``App.dispatch`` with a request signed exactly as Slack signs it), so commands, buttons, forms and App Home run
the same listeners, services and database code as ``serve``. Slack is the strict double the tests use.

* ``slack``: the Slack Web API double (Block Kit and size checks, channels, triggers, optional rate limits);
* ``payloads``: the requests Slack sends for a command, a button, a form, a shortcut, a Home tab opened;
* ``render``: what the bot did in Slack, as terminal text, with buttons as numbered choices;
* ``repl``: the session (who is typing, the clock) and ``run_console``;
* ``demo``: the ICE / Paragon timeline as a console script, and ``run_demo``.

Time is a ``ManualClock``: ``time +3d`` moves it and runs the reminder sweep and the outbox, so the reminders
can be seen firing.
"""

from bot.console.demo import DEMO_SCRIPT, DEMO_START, run_demo
from bot.console.render import plain
from bot.console.repl import USERS, Console, ConsoleUser, parse_when, run_console, to_slack_text

__all__ = [
    "DEMO_SCRIPT",
    "DEMO_START",
    "USERS",
    "Console",
    "ConsoleUser",
    "parse_when",
    "plain",
    "run_console",
    "run_demo",
    "to_slack_text",
]
