"""What the bot did in Slack, as terminal text: mrkdwn to plain text, threads indented under their parent,
buttons as numbered choices, forms as their fields.

``activity`` reads it back from the Slack double's recorded calls (the double itself knows nothing of the
console); ``Transcript`` prints it and keeps what the console needs to act on it (the numbered choices, the
open forms, the reminders seen).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from bot.console.slack import Call

EMOJI = {
    ":octagonal_sign:": "[STOP]",
    ":triangular_flag_on_post:": "[flag]",
    ":warning:": "[!]",
    ":large_green_circle:": "[ok]",
    ":red_circle:": "[x]",
    ":no_entry:": "[prohibited]",
    ":no_entry_sign:": "[x]",
    ":rotating_light:": "[!]",
    ":white_check_mark:": "[ok]",
}
_EMOJI_RE = re.compile(r":[a-z][a-z0-9_+-]*:")
_TOKEN_RE = re.compile(r"<([^<>]*)>")
_REMINDER_RE = re.compile(r"^(:[a-z_]+:\s*)?Reminder:")
# Methods whose refusal means someone did not see what the bot meant to show them.
_VISIBLE = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "views.open",
        "views.push",
        "views.update",
        "views.publish",
        "files.completeUploadExternal",
    }
)


def plain(mrkdwn: str, names: dict[str, str] | None = None, channels: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as terminal text: mentions by name, dates by their fallback, no markup or emoji codes."""
    names = names or {}
    channels = channels or {}

    def token(m: re.Match) -> str:
        inner = m.group(1)
        label = inner.split("|", 1)[1] if "|" in inner else None
        if inner.startswith("@"):
            uid = inner[1:].split("|", 1)[0]
            return "@" + (names.get(uid) or label or uid)
        if inner.startswith("#"):
            cid = inner[1:].split("|", 1)[0]
            return "#" + (channels.get(cid) or label or cid)
        if inner.startswith("!date^"):
            return label or inner
        if inner.startswith("!"):
            return "@" + (label or inner[1:])
        if label:
            return f"{label} ({inner.split('|', 1)[0]})"
        return inner

    text = _TOKEN_RE.sub(token, mrkdwn)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"\1", text)
    text = _EMOJI_RE.sub(lambda m: EMOJI.get(m.group(0), ""), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return "\n".join(re.sub(r"  +", " ", line).strip() for line in text.split("\n"))


def text_of(obj: Any) -> str:
    """The text of a text object (or of a plain string)."""
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj or "")


def short(text: str, limit: int = 110) -> str:
    """One line cut to ``limit``, keeping the end after " — " (an edit's new state) when there is one."""
    if len(text) <= limit:
        return text
    head, sep, tail = text.rpartition(" — ")
    if sep and len(tail) < limit // 2:
        return head[: limit - len(tail) - 4] + "… — " + tail
    return text[: limit - 1] + "…"


def describe_input(block: dict) -> str:
    """An input block of a form as one line: its key, label, whether it is required, its options."""
    element = block.get("element") or {}
    label = text_of(block.get("label"))
    options = [o.get("value") for o in element.get("options") or []]
    kind = f" one of: {', '.join(options)}" if options else ""
    initial = element.get("initial_value")
    prefilled = f" [prefilled: {initial[:60]}{'…' if len(initial) > 60 else ''}]" if initial else ""
    required = "" if block.get("optional") else " (required)"
    return f"  {block.get('block_id')}= {label}{required}{kind}{prefilled}"


def buttons(message: dict) -> Iterable[tuple[dict, str]]:
    """Each button of a message's blocks, with its block_id."""
    for b in message.get("blocks") or []:
        if b.get("type") != "actions":
            continue
        for e in b.get("elements") or []:
            if e.get("type") == "button":
                yield e, b.get("block_id") or ""


@dataclass(frozen=True)
class Choice:
    """A button the console shows as a numbered choice. ``only_for``: the one person who sees it (a private
    reply), or None when everyone in the channel does."""

    number: int
    label: str
    action_id: str
    value: str
    block_id: str
    channel: str | None
    ts: str | None
    only_for: str | None = None


@dataclass
class SlackEvent:
    """Something the bot did in Slack, in the order it happened."""

    kind: (
        str  # post | update | delete | ephemeral | respond | view_open | view_update | home | file | refused
    )
    channel: str | None = None
    ts: str | None = None
    user: str | None = None
    body: dict = field(default_factory=dict)


def activity(
    calls: Iterable[Call],
    *,
    trigger_user: Callable[[str], str | None],
    response_url: Callable[[str], tuple[str | None, str | None]],
    file_content: Callable[[str], bytes],
) -> list[SlackEvent]:
    """What the bot did, read from the double's recorded calls (in the order the double answered them).

    A call Slack would have refused becomes a ``refused`` event: the console shows it instead of hiding it.
    ``trigger_user`` and ``response_url`` say who a trigger / response URL was given to (user, channel).
    """
    events: list[SlackEvent] = []
    for call in calls:
        p, r = call.params, call.response if isinstance(call.response, dict) else {}
        if call.method == "response_url":
            user, channel = response_url(call.path)
            if call.status == 200:
                events.append(SlackEvent("respond", channel, user=user, body=p))
            else:
                events.append(SlackEvent("refused", channel, body={"method": call.method, "error": r}))
            continue
        if call.status != 200 or not r.get("ok"):
            # What people would have missed; an unanswered lookup (users.info, a permalink) is not shown.
            if call.method in _VISIBLE:
                events.append(SlackEvent("refused", p.get("channel"), body={"method": call.method, **r}))
            continue
        if call.method == "chat.postMessage":
            events.append(
                SlackEvent("post", r["channel"], r["ts"], body={**r["message"], "channel": r["channel"]})
            )
        elif call.method == "chat.update":
            events.append(
                SlackEvent("update", r["channel"], r["ts"], body={**r["message"], "channel": r["channel"]})
            )
        elif call.method == "chat.delete":
            events.append(SlackEvent("delete", r["channel"], r["ts"]))
        elif call.method == "chat.postEphemeral":
            events.append(SlackEvent("ephemeral", p.get("channel"), user=p.get("user"), body=p))
        elif call.method in ("views.open", "views.push"):
            user = trigger_user(str(p.get("trigger_id")))
            events.append(SlackEvent("view_open", user=user, body=r["view"]))
        elif call.method == "views.update":
            events.append(SlackEvent("view_update", body=r["view"]))
        elif call.method == "views.publish":
            events.append(SlackEvent("home", user=p.get("user_id"), body=r["view"]))
        elif call.method == "files.completeUploadExternal":
            channel = p.get("channel_id") or None
            for f in r.get("files") or []:
                body = {**f, "content": file_content(f["id"]), "initial_comment": p.get("initial_comment")}
                events.append(SlackEvent("file", channel, body=body))
    return events


class Transcript:
    """Prints what happened, and numbers the buttons it shows so the person can press them."""

    def __init__(
        self,
        out: TextIO,
        *,
        names: dict[str, str],
        channels: dict[str, str],
        dms: dict[str, str],
        message: Callable[[str, str], dict | None],
    ) -> None:
        self.out = out
        self.names = names  # user ID -> name
        self.channels = channels  # channel ID -> name
        self.dms = dms  # DM channel ID -> user ID
        self._message = message  # looks up a message (a thread's parent) by (channel, ts)
        self.choices: dict[int, Choice] = {}
        self._choice_keys: dict[tuple, int] = {}
        self._numbers = itertools.count(1)
        self.modals: dict[str, dict] = {}  # user ID -> the form open for them
        self.reminders: list[tuple[datetime, str, str]] = []  # (when, where, first line)
        self._last_thread: tuple[str, str] | None = None

    # -- output
    def say(self, text: str = "") -> None:
        """Print a line of transcript."""
        self.out.write(text + "\n")

    def indent(self, lines: Iterable[str], first: str, rest: str) -> None:
        """Print lines, the first after ``first`` and the others after ``rest``."""
        for i, line in enumerate(lines):
            self.say((first if i == 0 else rest) + line if line else (first if i == 0 else rest).rstrip())

    def private(self, lines: Iterable[str], user: str | None) -> None:
        """A reply only ``user`` sees."""
        self._last_thread = None
        self.indent(lines, f"  (only {self.who(user)} sees this) ", "    ")

    def break_thread(self) -> None:
        """The next thread reply gets its "in the thread of" header again."""
        self._last_thread = None

    def plain(self, mrkdwn: str) -> str:
        """mrkdwn as text, with this session's names."""
        return plain(mrkdwn, self.names, self.channels)

    def who(self, user_id: str | None) -> str:
        """@name for a user ID."""
        return "@" + self.names.get(user_id or "", user_id or "?")

    def where(self, channel: str | None) -> str:
        """#name, or a direct message."""
        if not channel:
            return "?"
        if channel in self.dms:
            return f"DM to {self.who(self.dms[channel])}"
        return "#" + self.channels.get(channel, channel)

    # -- blocks
    def render_blocks(
        self,
        blocks: list[dict],
        fallback: str,
        channel: str | None = None,
        ts: str | None = None,
        only_for: str | None = None,
    ) -> list[str]:
        """A message or view as lines of text; buttons become numbered choices."""
        if not blocks:
            return self.plain(fallback).split("\n")
        lines: list[str] = []
        for b in blocks:
            kind = b.get("type")
            if kind in ("section", "header"):
                text = self.plain(text_of(b.get("text")))
                if kind == "header":
                    text = text.upper()
                lines += text.split("\n")
                for f in b.get("fields") or []:
                    lines += self.plain(text_of(f)).split("\n")
            elif kind == "context":
                joined = "  ".join(text_of(e) for e in b.get("elements") or [])
                lines += ["  " + line for line in self.plain(joined).split("\n")]
            elif kind == "divider":
                lines.append("-" * 40)
            elif kind == "actions":
                shown = []
                for e in b.get("elements") or []:
                    if e.get("type") != "button":
                        continue
                    choice = self.choice(e, b.get("block_id") or "", channel, ts, only_for)
                    shown.append(f"[{choice.number}] {choice.label}")
                if shown:
                    lines.append("  " + "  ".join(shown))
            elif kind == "input":
                lines.append(describe_input(b))
        return lines

    def choice(
        self,
        element: dict,
        block_id: str,
        channel: str | None,
        ts: str | None,
        only_for: str | None = None,
    ) -> Choice:
        """The numbered choice for a button; a button keeps its number when its message is shown again."""
        label = plain(text_of(element.get("text")))
        key = (channel, ts, only_for, element.get("action_id"), element.get("value"))
        number = self._choice_keys.get(key)
        if number is None:
            number = self._choice_keys[key] = next(self._numbers)
        choice = Choice(
            number,
            label,
            element.get("action_id") or "",
            element.get("value") or "",
            block_id,
            channel,
            ts,
            only_for,
        )
        self.choices[number] = choice
        return choice

    # -- events
    def show_events(self, events: list[SlackEvent], now: datetime) -> None:
        """Print what the bot did in Slack."""
        for e in events:
            if e.kind == "post":
                self._show_message(e.body, edited=False, now=now)
            elif e.kind == "update":
                self._show_message(e.body, edited=True, now=now)
            elif e.kind == "delete":
                self.say(f"[{self.where(e.channel)}] (a message was deleted)")
            elif e.kind in ("respond", "ephemeral"):
                if e.body.get("delete_original"):
                    continue
                body = e.body
                lines = self.render_blocks(
                    body.get("blocks") or [], body.get("text") or "", e.channel, only_for=e.user
                )
                self.private(lines, e.user)
            elif e.kind == "view_open":
                self.show_modal(e.body, e.user)
            elif e.kind == "view_update":
                self.show_view(e.body)
            elif e.kind == "home":
                self._last_thread = None
                self.say(f"[App Home of {self.who(e.user)}]")
                self.indent(self.render_blocks(e.body.get("blocks") or [], "", only_for=e.user), "  ", "  ")
            elif e.kind == "file":
                self._last_thread = None
                self.say(
                    f"[{self.where(e.channel)}] file {e.body.get('title') or e.body.get('name')} "
                    f"({len(e.body.get('content') or b'')} bytes): "
                    f"{self.plain(e.body.get('initial_comment') or '')}"
                )
                name = str(e.body.get("name") or e.body.get("title") or "")
                if name.endswith(".md"):  # a drafted notice: its Markdown is what the console shows
                    content = e.body.get("content") or b""
                    self.indent(content.decode("utf-8", "replace").rstrip("\n").split("\n"), "  ", "  ")
            elif e.kind == "refused":
                self._last_thread = None
                detail = "; ".join((e.body.get("response_metadata") or {}).get("messages") or [])
                self.say(
                    f"  (Slack refused the bot's {e.body.get('method')}: {e.body.get('error')}"
                    f"{' - ' + short(detail, 200) if detail else ''})"
                )

    def _show_message(self, msg: dict, *, edited: bool, now: datetime) -> None:
        channel, ts, thread_ts = msg.get("channel"), msg.get("ts"), msg.get("thread_ts")
        if thread_ts == ts:
            thread_ts = None  # a thread's parent is a channel message
        text = msg.get("text") or ""
        if _REMINDER_RE.match(text) and not edited:
            first = self.plain(text).split("\n")[0]
            self.reminders.append((now, self.where(channel) + (" (thread)" if thread_ts else ""), first))
        if edited:
            # An edit shows as one line: the message's own summary text (the full message was shown when posted).
            summary = short(self.plain(text).split("\n")[0])
            if thread_ts:
                self._thread_header(channel, thread_ts)
                self.say(f"    ~ edited: {summary}")
            else:
                self._last_thread = None
                self.say(f"[{self.where(channel)}] ~ edited: {summary}")
            return
        lines = self.render_blocks(msg.get("blocks") or [], text, channel, ts)
        if thread_ts:
            self._thread_header(channel, thread_ts)
            self.indent(lines, "    * ", "      ")
        else:
            self._last_thread = None
            self.indent(lines, f"[{self.where(channel)}] ", "  ")

    def _thread_header(self, channel: str | None, thread_ts: str) -> None:
        if self._last_thread == (channel, thread_ts):
            return
        self._last_thread = (channel or "", thread_ts)
        parent = self._message(channel or "", thread_ts) or {}
        title = self.plain(parent.get("text") or "").split("\n")[0].split(":")[0]
        self.say(f"  in the thread of {title[:40] or thread_ts} ({self.where(channel)}):")

    def show_modal(self, view: dict, user: str | None) -> None:
        """A form opened for ``user``: it stays theirs until they submit or cancel it."""
        self._last_thread = None
        if user:
            self.modals[user] = view
        self.say(f"[modal for {self.who(user)}: {text_of(view.get('title'))}]")
        self.indent(self.render_blocks(view.get("blocks") or [], "", only_for=user), "  ", "  ")
        self.say(
            '  Type `submit key=value …` to submit this form (e.g. submit vendor="Acme" …), or `cancel`.'
        )

    def show_view(self, view: dict) -> None:
        """A form replaced by the bot."""
        self.say(f"[modal: {text_of(view.get('title'))}]")
        self.indent(self.render_blocks(view.get("blocks") or [], ""), "  ", "  ")
