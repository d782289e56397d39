"""The strict Slack Web API double now lives in ``bot.console.slack`` (the console runs the bot against it too);
this module keeps the tests' and benchmarks' old import path working."""

from bot.console.slack import *  # noqa: F403 - the same names, from their one home
from bot.console.slack import __all__ as __all__
from bot.console.slack import _Reply as _Reply  # bench/_common.py answers with it
