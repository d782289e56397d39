"""`contract-bot console` and `contract-bot demo`: the whole bot in a terminal, with no Slack workspace.

The console builds the real app with ``create_app`` and sends every typed line through the real Bolt app
in-process (``bot.bolt.dispatch`` with a request signed exactly as Slack signs it), so commands, buttons,
modals and App Home run the same listeners, services and database code as ``serve``. Slack itself is
replaced by ``LoopbackSlack``: a tiny Slack Web API (and ``response_url``) server on 127.0.0.1 that
records what the bot posts; the console prints it as text, threads indented under their parent and
buttons as numbered choices (type the number to press it, as the current user).

Time is a ``ManualClock``: ``time +3d`` moves it and runs the reminder sweep and the outbox, so the
reminders can be seen firing. ``demo`` replays the ICE / Paragon timeline (EO14093.md §5) as a console
script.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import re
import secrets
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import ArgumentError, OperationalError

from bot.clock import ManualClock
from bot.config import Settings

log = logging.getLogger("contract_bot.console")

BOT_USER, BOT_ID, TEAM = "UCONTRACTBOT", "BCONTRACTBOT", "TCONSOLE"
REVIEW_CHANNEL, MANAGER_CHANNEL = "CCONSOLEREVIEW", "CCONSOLEMGRS"
CHANNEL_NAMES = {REVIEW_CHANNEL: "contract-reviews", MANAGER_CHANNEL: "compliance-managers"}
# NOTE: the console's answers never leave the process, so it can wait far longer than Slack's 3 s.


@dataclass(frozen=True)
class ConsoleUser:
    """A seeded person: Slack-style ID, a short name to type, and the role they hold."""

    id: str
    name: str
    role: str


USERS: tuple[ConsoleUser, ...] = (
    ConsoleUser("UCADMIN01", "ada", "admin"),
    ConsoleUser("UCREVIEW01", "rae", "reviewer"),
    ConsoleUser("UCMANAGE01", "max", "manager"),
    ConsoleUser("UCOFFICIAL01", "olu", "official"),
    ConsoleUser("UCMEMBER01", "mel", "member"),
)

HELP = """Console commands (anything else starting with /contract goes to the bot):
  /contract …           run a bot command as the current user (`/contract help` lists them)
  <n> or press <n>      press button choice n as the current user
  press <text> <label>  press the button labelled <label> on the latest message mentioning <text>
                        (e.g. `press SCOPE-1 Yes`)
  as <user>             switch user: ada (admin), rae (reviewer), max (manager), olu (official),
                        mel (member); a role name works too (`as manager`)
  users                 who is who
  time [+3d|+2h|+30m|+1w|YYYY-MM-DD|YYYY-MM-DDTHH:MM]
                        show or move the clock, then run the reminder sweep and send what is due
  home                  open the App Home tab (the dashboard) as the current user
  say <text>            post a message in #contract-reviews as the current user
  shortcut              "File as contract" on the last message you posted with `say`
  submit key=value …    submit the open modal (field names as shown); `cancel` closes it
  reminders             the reminders the bot has sent in this session
  # …                   a comment (printed in the transcript)
  help, quit
Mentions: type @rae or @max; they are sent as Slack mentions."""


# ---- the loopback Slack ----------------------------------------------------------------------------------


@dataclass
class SlackEvent:
    """Something the bot did in Slack, in the order it happened."""

    kind: str  # post | update | delete | ephemeral | respond | view_open | view_update | home | file
    channel: str | None = None
    ts: str | None = None
    user: str | None = None
    body: dict = field(default_factory=dict)


class LoopbackSlack:
    """A minimal Slack Web API plus ``response_url`` endpoint on 127.0.0.1 that records what the bot sends.

    It answers the methods contract-bot uses (chat.*, conversations.open/history/replies, views.*,
    users.info, auth.test, the files upload flow) the way Slack does, enough for slack_sdk's WebClient.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self.messages: dict[tuple[str, str], dict] = {}
        self.views: dict[str, dict] = {}
        self.homes: dict[str, dict] = {}
        self.triggers: dict[str, str] = {}  # trigger_id -> user
        self.files: dict[str, dict] = {}
        self._events: list[SlackEvent] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _LoopbackHandler)
        self._server.daemon_threads = True
        self._server.slack = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="console-slack", daemon=True)

    # -- lifecycle
    def start(self) -> LoopbackSlack:
        """Start serving on an ephemeral port."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL would be."""
        return self.base_url + "/api/"

    # -- what the console needs
    def new_trigger(self, user: str) -> str:
        """A trigger_id for one interaction by ``user``."""
        trigger = f"{next(self._ids)}.{secrets.token_hex(8)}"
        with self._lock:
            self.triggers[trigger] = user
        return trigger

    def new_response_url(self, user: str, channel: str | None) -> str:
        """A response_url that records what is sent to it."""
        query = urlencode({"user": user, "channel": channel or ""})
        return f"{self.base_url}/respond/{next(self._ids)}?{query}"

    def drain(self) -> list[SlackEvent]:
        """Everything recorded since the last call."""
        with self._lock:
            events, self._events = self._events, []
        return events

    def add_user_message(self, channel: str, user: str, text: str) -> dict:
        """A message a person posted (for the message shortcut)."""
        with self._lock:
            msg = {"type": "message", "channel": channel, "ts": self._next_ts(), "user": user, "text": text}
            self.messages[(channel, msg["ts"])] = msg
            return dict(msg)

    # -- HTTP plumbing
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        """Answer one HTTP request."""
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if split.path.startswith("/respond/"):
            body = _json_or_form(raw, h.headers.get("Content-Type", ""))
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            with self._lock:
                self._events.append(
                    SlackEvent("respond", query.get("channel") or None, user=query.get("user"), body=body)
                )
            _send(h, 200, b"ok", "text/plain")
            return
        if split.path.startswith("/upload/"):
            fid = split.path.rsplit("/", 1)[-1]
            with self._lock:
                self.files.setdefault(fid, {})["content"] = raw
            _send(h, 200, b"OK - " + str(len(raw)).encode(), "text/plain")
            return
        if not split.path.startswith("/api/"):
            _send(h, 404, b"not found", "text/plain")
            return
        method = split.path[len("/api/") :]
        params = {k: v[0] for k, v in parse_qs(split.query).items()}
        params.update(_json_or_form(raw, h.headers.get("Content-Type", "")))
        for key in ("blocks", "view", "metadata", "files", "attachments"):
            if isinstance(params.get(key), str) and params[key][:1] in ("[", "{"):
                params[key] = json.loads(params[key])
        with self._lock:
            fn = getattr(self, "_m_" + method.replace(".", "_"), None)
            result = fn(params) if fn else {"ok": True}
        _send(h, 200, json.dumps(result).encode(), "application/json; charset=utf-8")

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1700000000 + n}.{n:06d}"

    def _channel(self, channel: str) -> str:
        return "D" + channel[1:] if channel.startswith(("U", "W")) else channel

    # -- Web API methods
    def _m_auth_test(self, p: dict) -> dict:
        return {
            "ok": True,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "team_id": TEAM,
            "user": "contract-bot",
            "team": "console",
            "url": "https://console.invalid/",
        }

    def _m_chat_postMessage(self, p: dict) -> dict:
        channel = self._channel(p.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        msg: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": self._next_ts(),
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "text": p.get("text") or "",
            "blocks": p.get("blocks") or [],
            "metadata": p.get("metadata"),
        }
        if p.get("thread_ts"):
            msg["thread_ts"] = p["thread_ts"]
        self.messages[(channel, msg["ts"])] = msg
        self._events.append(SlackEvent("post", channel, msg["ts"], body=dict(msg)))
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": msg}

    def _m_chat_update(self, p: dict) -> dict:
        channel = self._channel(p.get("channel") or "")
        msg = self.messages.get((channel, p.get("ts") or ""))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msg["text"] = p.get("text") or msg.get("text", "")
        if "blocks" in p:
            msg["blocks"] = p.get("blocks") or []
        self._events.append(SlackEvent("update", channel, msg["ts"], body=dict(msg)))
        return {"ok": True, "channel": channel, "ts": msg["ts"], "text": msg["text"]}

    def _m_chat_delete(self, p: dict) -> dict:
        channel = self._channel(p.get("channel") or "")
        msg = self.messages.pop((channel, p.get("ts") or ""), None)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        self._events.append(SlackEvent("delete", channel, msg["ts"], body=msg))
        return {"ok": True, "channel": channel, "ts": msg["ts"]}

    def _m_chat_postEphemeral(self, p: dict) -> dict:
        self._events.append(SlackEvent("ephemeral", p.get("channel"), user=p.get("user"), body=dict(p)))
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_getPermalink(self, p: dict) -> dict:
        return {
            "ok": True,
            "channel": p.get("channel"),
            "permalink": f"https://console.invalid/archives/{p.get('channel')}/p{str(p.get('message_ts')).replace('.', '')}",
        }

    def _m_conversations_open(self, p: dict) -> dict:
        users = str(p.get("users") or "").split(",")[0]
        return {"ok": True, "channel": {"id": self._channel(users)}}

    def _m_conversations_history(self, p: dict) -> dict:
        channel = p.get("channel")
        found = [m for (c, _), m in self.messages.items() if c == channel and not m.get("thread_ts")]
        return {"ok": True, "messages": list(reversed(found)), "has_more": False}

    def _m_conversations_replies(self, p: dict) -> dict:
        channel, ts = p.get("channel"), p.get("ts")
        found = [
            m for (c, t), m in self.messages.items() if c == channel and (t == ts or m.get("thread_ts") == ts)
        ]
        return {"ok": True, "messages": found, "has_more": False}

    def _m_users_info(self, p: dict) -> dict:
        user = next((u for u in USERS if u.id == p.get("user")), None)
        name = user.name if user else str(p.get("user"))
        return {
            "ok": True,
            "user": {"id": p.get("user"), "name": name, "real_name": name, "tz": "America/New_York"},
        }

    def _open_view(self, p: dict) -> dict:
        trigger = p.get("trigger_id")
        if trigger not in self.triggers:
            return {"ok": False, "error": "invalid_trigger_id"}
        view = dict(p.get("view") or {})
        view["id"] = f"VCONSOLE{next(self._ids)}"
        self.views[view["id"]] = view
        self._events.append(SlackEvent("view_open", user=self.triggers[trigger], body=view))
        return {"ok": True, "view": view}

    _m_views_open = _open_view
    _m_views_push = _open_view

    def _m_views_update(self, p: dict) -> dict:
        view = dict(p.get("view") or {})
        view["id"] = p.get("view_id") or view.get("id") or f"VCONSOLE{next(self._ids)}"
        self.views[view["id"]] = view
        self._events.append(SlackEvent("view_update", body=view))
        return {"ok": True, "view": view}

    def _m_views_publish(self, p: dict) -> dict:
        view = dict(p.get("view") or {})
        self.homes[str(p.get("user_id"))] = view
        self._events.append(SlackEvent("home", user=p.get("user_id"), body=view))
        return {"ok": True, "view": {**view, "id": f"VHOME{p.get('user_id')}"}}

    def _m_files_getUploadURLExternal(self, p: dict) -> dict:
        fid = f"FCONSOLE{next(self._ids)}"
        self.files[fid] = {"id": fid, "name": p.get("filename")}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{fid}", "file_id": fid}

    def _m_files_completeUploadExternal(self, p: dict) -> dict:
        done = []
        for f in p.get("files") or []:
            record = self.files.setdefault(f.get("id"), {"id": f.get("id")})
            record["title"] = f.get("title")
            done.append({"id": f.get("id"), "title": f.get("title"), "name": record.get("name")})
            self._events.append(
                SlackEvent(
                    "file", p.get("channel_id"), body={**record, "initial_comment": p.get("initial_comment")}
                )
            )
        return {"ok": True, "files": done}

    def _m_files_info(self, p: dict) -> dict:
        record = self.files.get(p.get("file") or "", {})
        return {"ok": True, "file": {k: v for k, v in record.items() if k != "content"}}


class _LoopbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the console stays quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.slack.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _json_or_form(raw: bytes, content_type: str) -> dict:
    if not raw:
        return {}
    text = raw.decode("utf-8", "replace")
    if "json" in content_type or text[:1] == "{":
        try:
            data = json.loads(text)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


# ---- turning Slack messages into terminal text -----------------------------------------------------------

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


def plain(mrkdwn: str, names: dict[str, str] | None = None) -> str:
    """Slack mrkdwn as terminal text: mentions by name, dates by their fallback, no markup or emoji codes."""
    names = names or {}

    def token(m: re.Match) -> str:
        inner = m.group(1)
        label = inner.split("|", 1)[1] if "|" in inner else None
        if inner.startswith("@"):
            uid = inner[1:].split("|", 1)[0]
            return "@" + (names.get(uid) or label or uid)
        if inner.startswith("#"):
            cid = inner[1:].split("|", 1)[0]
            return "#" + (CHANNEL_NAMES.get(cid) or label or cid)
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


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj or "")


@dataclass(frozen=True)
class Choice:
    """A button the console shows as a numbered choice."""

    number: int
    label: str
    action_id: str
    value: str
    block_id: str
    channel: str | None
    ts: str | None


# ---- the console -----------------------------------------------------------------------------------------


class Console:
    """One console session: the real bot, the loopback Slack, who is typing, and the numbered choices."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: str | None = None,
        out: TextIO | None = None,
        start: datetime | None = None,
        echo: bool = False,
    ) -> None:
        from bot.app import create_app

        self.out = out or sys.stdout
        self.echo = echo
        self._tmpdir = None if database else tempfile.mkdtemp(prefix="contract-bot-console-")
        url = database or f"sqlite:///{self._tmpdir}/console.db"
        self.slack = LoopbackSlack().start()
        self.secret = secrets.token_hex(16)
        self.settings = dataclasses.replace(
            settings,
            slack_bot_token="xoxb-console-not-a-real-token",
            slack_signing_secret=self.secret,
            slack_app_token=None,
            slack_api_url=self.slack.api_url,
            database_url=url,
            review_channel=REVIEW_CHANNEL,
            manager_channel=MANAGER_CHANNEL,
            admin_user_ids=(USERS[0].id,),
        )
        self.clock = ManualClock(start or datetime.now(UTC))
        # One listener thread and one worker: the console waits for both to be idle after each line, so
        # the transcript is in order. The ack budget is long: replies come back with the acknowledgement.
        try:
            # the loopback Slack has no rate limits: the outbox need not pace itself to Slack's
            self.bot = create_app(
                self.settings,
                clock=self.clock,
                listener_threads=1,
                followup_threads=1,
                slack_rate_scale=math.inf,
            )
        except Exception:
            self.slack.stop()
            if self._tmpdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self.verifier = SignatureVerifier(self.secret)
        self.names = {u.id: u.name for u in USERS}
        self.user = next(u for u in USERS if u.role == "member")
        self.choices: dict[int, Choice] = {}
        self._choice_keys: dict[tuple, int] = {}
        self._numbers = itertools.count(1)
        self.modal: dict | None = None
        self.modal_user: str | None = None
        self.reminders: list[tuple[datetime, str, str]] = []  # (when, where, first line)
        self.said: dict | None = None
        self._last_thread: tuple[str, str] | None = None
        self._event_ids = itertools.count(1)
        for u in USERS:
            if u.role not in ("admin", "member"):
                self.bot.service.grant(USERS[0].id, u.id, u.role)
        self.settle(quiet=True)

    def close(self) -> None:
        """Stop everything the session started and remove its temporary database."""
        self.bot.stop()
        self.slack.stop()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # -- output
    def say(self, text: str = "") -> None:
        """Print a line of transcript."""
        self.out.write(text + "\n")

    def _indent(self, lines: Iterable[str], first: str, rest: str) -> None:
        for i, line in enumerate(lines):
            self.say((first if i == 0 else rest) + line if line else (first if i == 0 else rest).rstrip())

    def who(self, user_id: str | None) -> str:
        """@name for a user ID."""
        return "@" + self.names.get(user_id or "", user_id or "?")

    def where(self, channel: str | None) -> str:
        """#name, or a direct message."""
        if not channel:
            return "?"
        if channel.startswith("D"):
            return f"DM to @{self.names.get('U' + channel[1:], channel)}"
        return "#" + CHANNEL_NAMES.get(channel, channel)

    def render_blocks(
        self, blocks: list[dict], fallback: str, channel: str | None = None, ts: str | None = None
    ) -> list[str]:
        """A message or view as lines of text; buttons become numbered choices."""
        if not blocks:
            return plain(fallback, self.names).split("\n")
        lines: list[str] = []
        for b in blocks:
            kind = b.get("type")
            if kind in ("section", "header"):
                text = plain(_text_of(b.get("text")), self.names)
                if kind == "header":
                    text = text.upper()
                lines += text.split("\n")
                for f in b.get("fields") or []:
                    lines += plain(_text_of(f), self.names).split("\n")
            elif kind == "context":
                lines += [
                    "  " + line
                    for line in plain(
                        "  ".join(_text_of(e) for e in b.get("elements") or []), self.names
                    ).split("\n")
                ]
            elif kind == "divider":
                lines.append("-" * 40)
            elif kind == "actions":
                shown = []
                for e in b.get("elements") or []:
                    if e.get("type") != "button":
                        continue
                    choice = self._choice(e, b.get("block_id") or "", channel, ts)
                    shown.append(f"[{choice.number}] {choice.label}")
                if shown:
                    lines.append("  " + "  ".join(shown))
            elif kind == "input":
                lines.append(self._describe_input(b))
        return lines

    def _choice(self, element: dict, block_id: str, channel: str | None, ts: str | None) -> Choice:
        label = plain(_text_of(element.get("text")))
        key = (channel, ts, element.get("action_id"), element.get("value"))
        number = self._choice_keys.get(key)
        if number is None:
            number = self._choice_keys[key] = next(self._numbers)
        choice = Choice(
            number, label, element.get("action_id") or "", element.get("value") or "", block_id, channel, ts
        )
        self.choices[number] = choice
        return choice

    @staticmethod
    def _describe_input(block: dict) -> str:
        element = block.get("element") or {}
        label = _text_of(block.get("label"))
        options = [o.get("value") for o in element.get("options") or []]
        kind = f" one of: {', '.join(options)}" if options else ""
        initial = element.get("initial_value")
        prefilled = f" [prefilled: {initial[:60]}{'…' if len(initial) > 60 else ''}]" if initial else ""
        required = "" if block.get("optional") else " (required)"
        return f"  {block.get('block_id')}= {label}{required}{kind}{prefilled}"

    def show_events(self, events: list[SlackEvent]) -> None:
        """Print what the bot did in Slack."""
        for e in events:
            if e.kind == "post":
                self._show_message(e.body, edited=False)
            elif e.kind == "update":
                self._show_message(e.body, edited=True)
            elif e.kind == "delete":
                self.say(f"[{self.where(e.channel)}] (a message was deleted)")
            elif e.kind in ("respond", "ephemeral"):
                body = e.body
                if body.get("delete_original"):
                    continue
                lines = self.render_blocks(body.get("blocks") or [], body.get("text") or "", e.channel)
                self._last_thread = None
                self._indent(lines, f"  (only {self.who(e.user)} sees this) ", "    ")
            elif e.kind == "view_open":
                self._show_modal(e.body, e.user)
            elif e.kind == "view_update":
                self._show_view(e.body)
            elif e.kind == "home":
                self._last_thread = None
                self.say(f"[App Home of {self.who(e.user)}]")
                self._indent(self.render_blocks(e.body.get("blocks") or [], ""), "  ", "  ")
            elif e.kind == "file":
                self._last_thread = None
                self.say(
                    f"[{self.where(e.channel)}] file {e.body.get('title') or e.body.get('name')} "
                    f"({len(e.body.get('content') or b'')} bytes): {plain(e.body.get('initial_comment') or '')}"
                )

    def _show_message(self, msg: dict, *, edited: bool) -> None:
        channel, ts, thread_ts = msg.get("channel"), msg.get("ts"), msg.get("thread_ts")
        text = msg.get("text") or ""
        if re.match(r"^(:[a-z_]+:\s*)?Reminder:", text):
            first = plain(text, self.names).split("\n")[0]
            self.reminders.append(
                (self.clock.now(), self.where(channel) + (" (thread)" if thread_ts else ""), first)
            )
        if edited:
            # An edit shows as one line: the message's own summary text (the full message was shown when posted).
            summary = _short(plain(text, self.names).split("\n")[0])
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
            self._indent(lines, "    * ", "      ")
        else:
            self._last_thread = None
            self._indent(lines, f"[{self.where(channel)}] ", "  ")

    def _thread_header(self, channel: str | None, thread_ts: str) -> None:
        if self._last_thread == (channel, thread_ts):
            return
        self._last_thread = (channel or "", thread_ts)
        parent = self.slack.messages.get((channel or "", thread_ts)) or {}
        title = plain(parent.get("text") or "", self.names).split("\n")[0].split(":")[0]
        self.say(f"  in the thread of {title[:40] or thread_ts} ({self.where(channel)}):")

    def _show_modal(self, view: dict, user: str | None) -> None:
        self._last_thread = None
        self.modal, self.modal_user = view, user
        self.say(f"[modal for {self.who(user)}: {_text_of(view.get('title'))}]")
        self._indent(self.render_blocks(view.get("blocks") or [], ""), "  ", "  ")
        self.say(
            '  Type `submit key=value …` to submit this form (e.g. submit vendor="Acme" …), or `cancel`.'
        )

    def _show_view(self, view: dict) -> None:
        self.say(f"[modal: {_text_of(view.get('title'))}]")
        self._indent(self.render_blocks(view.get("blocks") or [], ""), "  ", "  ")

    # -- sending requests through the real Bolt app
    def dispatch(self, body: str, content_type: str) -> tuple[int, str]:
        """Sign a body as Slack does and run it through the Bolt app; returns (status, body)."""
        ts = str(int(time.time()))
        headers: dict[str, str | Sequence[str]] = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [self.verifier.generate_signature(timestamp=ts, body=body) or ""],
        }
        response = self.bot.bolt.dispatch(BoltRequest(body=body, headers=headers))
        return response.status, response.body or ""

    def settle(self, quiet: bool = False) -> None:
        """Wait for the listener and the worker to finish, send what the outbox holds, and print it."""
        for _ in range(3):
            self.bot.bolt.listener_runner.listener_executor.submit(lambda: None).result()
            self.bot.followups.submit(lambda: None).result()
            self.bot.dispatcher.deliver_due()
        events = self.slack.drain()
        if not quiet:
            self.show_events(events)

    def _interactive(self, payload: dict) -> tuple[int, str]:
        return self.dispatch(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def _user_obj(self) -> dict:
        return {"id": self.user.id, "username": self.user.name, "name": self.user.name, "team_id": TEAM}

    def command(self, text: str) -> None:
        """`/contract …` as the current user."""
        fields = {
            "token": "unused",
            "team_id": TEAM,
            "team_domain": "console",
            "channel_id": REVIEW_CHANNEL,
            "channel_name": CHANNEL_NAMES[REVIEW_CHANNEL],
            "user_id": self.user.id,
            "user_name": self.user.name,
            "command": "/contract",
            "text": to_slack_text(text, {u.name: u.id for u in USERS}),
            "api_app_id": "ACONSOLE",
            "is_enterprise_install": "false",
            "response_url": self.slack.new_response_url(self.user.id, REVIEW_CHANNEL),
            "trigger_id": self.slack.new_trigger(self.user.id),
        }
        status, body = self.dispatch(urlencode(fields), "application/x-www-form-urlencoded")
        self._show_ack(status, body)
        self.settle()

    def _show_ack(self, status: int, body: str) -> None:
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
            return
        if not body.strip():
            return
        try:
            reply = json.loads(body)
        except ValueError:
            self._indent(plain(body).split("\n"), f"  (only {self.who(self.user.id)} sees this) ", "    ")
            return
        if "response_action" in reply:
            self._show_view_ack(reply)
            return
        lines = self.render_blocks(reply.get("blocks") or [], reply.get("text") or "", REVIEW_CHANNEL)
        self._last_thread = None
        self._indent(lines, f"  (only {self.who(self.user.id)} sees this) ", "    ")

    def _show_view_ack(self, reply: dict) -> None:
        action = reply.get("response_action")
        if action == "errors":
            for key, message in (reply.get("errors") or {}).items():
                self.say(f"  [form error] {key}: {plain(message)}")
            self.say("  The form is still open: `submit` again with the fixes, or `cancel`.")
            return
        self.modal = None
        if action in ("update", "push"):
            view = reply.get("view") or {}
            self._show_view(view)

    def press(self, number: int) -> None:
        """Press a numbered choice as the current user (a real block_actions payload)."""
        choice = self.choices.get(number)
        if choice is None:
            self.say(f"  There is no choice [{number}]. Choices are the numbers shown next to buttons.")
            return
        msg = self.slack.messages.get((choice.channel or "", choice.ts or "")) or {}
        container = {
            "type": "message",
            "message_ts": choice.ts,
            "channel_id": choice.channel,
            "is_ephemeral": False,
        }
        if msg.get("thread_ts"):
            container["thread_ts"] = msg["thread_ts"]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_obj(),
            "api_app_id": "ACONSOLE",
            "token": "unused",
            "container": container,
            "trigger_id": self.slack.new_trigger(self.user.id),
            "team": {"id": TEAM, "domain": "console"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {
                "id": choice.channel,
                "name": CHANNEL_NAMES.get(choice.channel or "", choice.channel),
            },
            "message": {k: v for k, v in msg.items() if k != "channel"},
            "state": {"values": {}},
            "response_url": self.slack.new_response_url(self.user.id, choice.channel),
            "actions": [
                {
                    "type": "button",
                    "action_id": choice.action_id,
                    "block_id": choice.block_id,
                    "value": choice.value,
                    "text": {"type": "plain_text", "text": choice.label},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        self.say(f"  ({self.who(self.user.id)} pressed [{number}] {choice.label})")
        status, body = self._interactive(payload)
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
        self.settle()

    def press_matching(self, needle: str, label: str) -> None:
        """Press the button labelled ``label`` on the newest message whose text mentions ``needle``."""
        for (channel, ts), msg in sorted(
            self.slack.messages.items(), key=lambda kv: float(kv[0][1]), reverse=True
        ):
            if needle.lower() not in (msg.get("text") or "").lower():
                continue
            for b in msg.get("blocks") or []:
                for e in b.get("elements") or [] if b.get("type") == "actions" else []:
                    if plain(_text_of(e.get("text"))).lower() == label.lower():
                        self.press(self._choice(e, b.get("block_id") or "", channel, ts).number)
                        return
        self.say(f"  No message mentioning {needle!r} has a button {label!r}.")

    def open_home(self) -> None:
        """The app_home_opened event, as Slack sends it when the user opens the Home tab."""
        body = {
            "token": "unused",
            "team_id": TEAM,
            "api_app_id": "ACONSOLE",
            "type": "event_callback",
            "event_id": f"EvCONSOLE{next(self._event_ids)}{secrets.token_hex(3)}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": self.user.id,
                "channel": "D" + self.user.id[1:],
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            },
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
        status, _ = self.dispatch(json.dumps(body), "application/json")
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
        self.settle()

    def post_message(self, text: str) -> None:
        """A person's message in the review channel (something to run the shortcut on)."""
        self.said = self.slack.add_user_message(REVIEW_CHANNEL, self.user.id, text)
        self.say(f"[#{CHANNEL_NAMES[REVIEW_CHANNEL]}] {self.who(self.user.id)}: {text}")

    def shortcut(self) -> None:
        """The "File as contract" message shortcut on the last message this session posted with `say`."""
        from handlers.ids import CallbackId

        if self.said is None:
            self.say("  Post a message first with `say <text>`; the shortcut runs on it.")
            return
        msg = {k: v for k, v in self.said.items() if k != "channel"}
        payload = {
            "type": "message_action",
            "token": "unused",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM, "domain": "console"},
            "user": self._user_obj(),
            "channel": {"id": REVIEW_CHANNEL, "name": CHANNEL_NAMES[REVIEW_CHANNEL]},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": CallbackId.FILE_SHORTCUT.value,
            "trigger_id": self.slack.new_trigger(self.user.id),
            "response_url": self.slack.new_response_url(self.user.id, REVIEW_CHANNEL),
            "message_ts": msg.get("ts"),
            "message": msg,
        }
        status, _ = self._interactive(payload)
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
        self.settle()

    def submit(self, args: str) -> None:
        """Submit the open modal with key=value pairs (a real view_submission payload)."""
        if self.modal is None:
            self.say("  No form is open.")
            return
        try:
            pairs = dict(_pair(tok) for tok in shlex.split(args))
        except ValueError as exc:
            self.say(f'  {exc}. Write submit key=value key2="two words" …')
            return
        values: dict[str, dict] = {}
        for b in self.modal.get("blocks") or []:
            if b.get("type") != "input":
                continue
            element = b.get("element") or {}
            action_id, raw = element.get("action_id") or b.get("block_id"), pairs.pop(b.get("block_id"), None)
            if raw is None:
                raw = element.get("initial_value")
            if element.get("type") == "static_select":
                option = next((o for o in element.get("options") or [] if o.get("value") == raw), None)
                values[b["block_id"]] = {action_id: {"type": "static_select", "selected_option": option}}
            else:
                values[b["block_id"]] = {
                    action_id: {"type": element.get("type") or "plain_text_input", "value": raw}
                }
        if pairs:
            self.say(f"  This form has no field {', '.join(sorted(pairs))}; it is ignored.")
        view = {
            **self.modal,
            "state": {"values": values},
            "team_id": TEAM,
            "app_id": "ACONSOLE",
            "root_view_id": self.modal.get("id"),
            "hash": secrets.token_hex(4),
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "console"},
            "user": self._user_obj(),
            "api_app_id": "ACONSOLE",
            "token": "unused",
            "trigger_id": self.slack.new_trigger(self.user.id),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        status, body = self._interactive(payload)
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
        elif body.strip():
            self._show_ack(status, body)
        else:
            self.modal = None
            self.say("  (form closed)")
        self.settle()

    def move_time(self, arg: str) -> None:
        """Move the clock, then run the reminder sweep and the outbox so due reminders go out."""
        zone = self.bot.calendar.zone
        before = self.clock.now()
        arg = arg.strip()
        if arg:
            try:
                target = parse_when(arg, before, zone)
            except ValueError as exc:
                self.say(f"  {exc}")
                return
            self.clock.set(target)
        now = self.clock.now()
        note = "" if now >= before else " (moved backwards: reminders already sent stay sent)"
        self.say(f"  Time is now {now.astimezone(zone):%a %Y-%m-%d %H:%M %Z}{note}.")
        if not arg:
            return
        result = self.bot.sweeper.sweep()
        self.settle()
        if result.sent or result.skipped:
            self.say(f"  ({result.sent} reminder(s) fired; {result.skipped} no longer applied)")

    def list_reminders(self) -> None:
        """The reminders the bot sent in this session."""
        if not self.reminders:
            self.say("  No reminders have fired yet.")
            return
        zone = self.bot.calendar.zone
        for when_, where, first in self.reminders:
            self.say(f"  {when_.astimezone(zone):%Y-%m-%d %H:%M} {where}: {_short(first, 150)}")

    def switch_user(self, name: str) -> None:
        """`as <user>`: by name, role or ID."""
        key = name.strip().lstrip("@").lower()
        user = next((u for u in USERS if key in (u.name, u.role, u.id.lower())), None)
        if user is None:
            self.say(f"  No user {name!r}. Users: " + ", ".join(f"{u.name} ({u.role})" for u in USERS))
            return
        self.user = user
        self.say(f"  You are now @{user.name} ({user.role}).")

    def list_users(self) -> None:
        """Who is who."""
        for u in USERS:
            mark = " <- you" if u is self.user else ""
            self.say(f"  @{u.name:<4} {u.role:<9} {u.id}{mark}")

    # -- one line
    def run_line(self, line: str) -> bool:
        """Run one typed line; False when the session should end."""
        line = line.strip()
        if not line:
            return True
        self._last_thread = None
        if self.echo:
            self.say(f"{self.user.name}> {line}" if not line.startswith("#") else line)
        if line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        word = word.lower()
        try:
            if word in ("quit", "exit"):
                return False
            if word == "/contract":
                self.command(rest)
            elif word.startswith("/"):
                self.say(f"  Only /contract is a command of this bot (got {word}).")
            elif word.isdigit():
                self.press(int(word))
            elif word == "press":
                parts = rest.split()
                if len(parts) == 1 and parts[0].isdigit():
                    self.press(int(parts[0]))
                elif len(parts) >= 2:
                    self.press_matching(" ".join(parts[:-1]), parts[-1])
                else:
                    self.say("  press <n>, or press <text> <button label>")
            elif word == "as":
                self.switch_user(rest)
            elif word in ("users", "who"):
                self.list_users()
            elif word == "time":
                self.move_time(rest)
            elif word == "home":
                self.open_home()
            elif word == "say":
                self.post_message(rest)
            elif word == "shortcut":
                self.shortcut()
            elif word == "submit":
                self.submit(rest)
            elif word == "cancel":
                self.modal = None
                self.say("  (form closed)")
            elif word == "reminders":
                self.list_reminders()
            elif word in ("help", "?"):
                self.say(HELP)
            else:
                self.say(
                    f"  Unknown console command {word!r}. Type `help`; bot commands start with /contract."
                )
        except Exception:  # noqa: BLE001 - one bad line must not end the session
            log.exception("console line failed: %s", line)
            self.say("  (the console could not run that line; see the log above)")
        return True


def _short(text: str, limit: int = 110) -> str:
    """One line cut to ``limit``, keeping the end after " — " (an edit's new state) when there is one."""
    if len(text) <= limit:
        return text
    head, sep, tail = text.rpartition(" — ")
    if sep and len(tail) < limit // 2:
        return head[: limit - len(tail) - 4] + "… — " + tail
    return text[: limit - 1] + "…"


def _pair(token: str) -> tuple[str, str]:
    if "=" not in token:
        raise ValueError(f"{token!r} is not key=value")
    key, value = token.split("=", 1)
    return key.strip().lower(), value


def to_slack_text(text: str, users: dict[str, str]) -> str:
    """Typed text as Slack sends a slash command's text: @name becomes a mention, & < > are escaped."""
    out, pos = [], 0
    for m in re.finditer(r"<[@#!][^<>\s]*>|(?<![\w@])@([a-z][\w.-]*)|(?<![\w#&])#([a-z][\w-]*)", text):
        out.append(_escape(text[pos : m.start()]))
        if m.group(1) and m.group(1).lower() in users:
            out.append(f"<@{users[m.group(1).lower()]}|{m.group(1).lower()}>")
        elif m.group(2) and m.group(2).lower() in {v: k for k, v in CHANNEL_NAMES.items()}:
            cid = {v: k for k, v in CHANNEL_NAMES.items()}[m.group(2).lower()]
            out.append(f"<#{cid}|{m.group(2).lower()}>")
        elif m.group(0).startswith("<"):
            out.append(m.group(0))
        else:
            out.append(_escape(m.group(0)))
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_when(arg: str, now: datetime, zone: Any) -> datetime:
    """`+3d`, `+2h`, `+30m`, `+1w`, `YYYY-MM-DD` (10:00 that day) or `YYYY-MM-DDTHH:MM` in the bot's zone."""
    m = re.fullmatch(r"\+(\d+)\s*([wdhm])", arg.lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {
            "w": timedelta(weeks=n),
            "d": timedelta(days=n),
            "h": timedelta(hours=n),
            "m": timedelta(minutes=n),
        }
        return now + delta[unit]
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg):
            return datetime.combine(date.fromisoformat(arg), dtime(10, 0), tzinfo=zone).astimezone(UTC)
        when_ = datetime.fromisoformat(arg)
    except ValueError:
        raise ValueError(
            f"time takes +3d, +2h, +30m, +1w, YYYY-MM-DD or YYYY-MM-DDTHH:MM, not {arg!r}"
        ) from None
    return (when_ if when_.tzinfo else when_.replace(tzinfo=zone)).astimezone(UTC)


# ---- entry points ----------------------------------------------------------------------------------------


def _quiet_logs() -> None:
    # The transcript is the output; only warnings and errors go to stderr.
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("slack_bolt", "slack_sdk", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # NOTE: create_app hands Bolt a client and a token; Bolt's warning about it says nothing to a console user.
    bolt_app = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _DropTokenWarning) for f in bolt_app.filters):
        bolt_app.addFilter(_DropTokenWarning())


class _DropTokenWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


def run_console(
    settings: Settings | None = None,
    database: str | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    start: datetime | None = None,
) -> int:
    """`contract-bot console`: read lines (a terminal or a pipe), print the transcript; returns the exit code."""
    settings = settings or Settings()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin is sys.stdin and stdin.isatty() and stdout.isatty()
    _quiet_logs()
    try:
        console = Console(settings, database=database, out=stdout, start=start, echo=not interactive)
    except (ArgumentError, OperationalError) as exc:
        print(
            f"contract-bot: --database {database!r} cannot be used: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 2
    try:
        if interactive:
            try:
                import readline  # noqa: F401 - line editing and history for input()
            except ImportError:
                pass
            zone = console.bot.calendar.zone
            console.say(
                "contract-bot console: the whole bot, no Slack workspace. Type `help`, or try\n"
                '  /contract file vendor="Paragon Solutions" product=Graphite agency=ICE\n'
                f"It is {console.clock.now().astimezone(zone):%a %Y-%m-%d %H:%M %Z}; "
                f"you are @{console.user.name} ({console.user.role})."
            )
            while True:
                try:
                    line = input(f"{console.user.name}> ")
                except EOFError:
                    console.say()
                    break
                except KeyboardInterrupt:
                    console.say()
                    continue
                if not console.run_line(line):
                    break
        else:
            for line in stdin:
                if not console.run_line(line):
                    break
        stdout.flush()
    finally:
        console.close()
    return 0


DEMO_START = datetime(2024, 9, 27, 14, 0, tzinfo=UTC)  # 10:00 in New York, the day of the award

# The ICE HSI x Paragon timeline from EO14093.md §5. Lines marked [supposed] are not in the public record:
# whether any review, certification, APNSA notice or waiver happened is unknown; the demo supposes one path.
DEMO_SCRIPT = """
# ==== EO 14093 demo: ICE HSI x Paragon Solutions (EO14093.md §5) ====
# Public record: award 2024-09-27, stop-work 2024-10-08, stop-work lifted 2025-08-29, closed January 2026.
# Steps marked [supposed] are NOT public (reviewers' answers, determination, certification, APNSA notice);
# they show the path EO 14093 requires. The product was never named; Graphite is UNCONFIRMED.
time 2024-09-27
# 2024-09-27 [public] HSI Division 3 signs a one-year, ~$2 million sole-source contract with Paragon's U.S. subsidiary.
as mel
/contract file vendor="Paragon Solutions" product="unnamed (Graphite UNCONFIRMED)" agency=ICE component="HSI Division 3" value=2000000 awarded=2024-09-27 term="one year" purpose=operational third_party=no parent="Paragon Solutions Ltd. (Israel)" scope="U.S. subsidiary, Chantilly VA. Fully configured proprietary solution: license, hardware, warranty, maintenance and training (sole source, FAR 6.302-1)"
as max
/contract assign CR-1 @rae
# 2024-10-01 [public] WIRED first reports the contract.
time 2024-10-08
# 2024-10-08 [public] HSI issues a stop-work order to review and verify compliance with EO 14093.
/contract stopwork CR-1 reason="HSI stop-work order: review and verify compliance with EO 14093 (DHS spokesperson)"
time +1d
# [supposed] The reviewer starts scoping, with the buttons in the thread (numbers are the choices shown above).
as rae
press SCOPE-1 Yes
press SCOPE-2 Yes
press SCOPE-3 No
press SCOPE-4 Yes
press SCOPE-5 Yes
time +1d
time +1d
time +3d
# [supposed] Procurement (§3): whether these steps came before the award is not public.
/contract answer CR-1 PROC-1 unknown note="[supposed] not public whether the DNI assessment was read before award"
/contract answer CR-1 PROC-2 unknown note="[supposed] not public"
/contract answer CR-1 PROC-3 yes note="[supposed] weighed during the stop-work review"
/contract answer CR-1 PROC-4 unknown note="[supposed] not public"
/contract answer CR-1 CI-1 no note="[supposed]"
/contract answer CR-1 CI-2 no note="[supposed]"
/contract answer CR-1 CI-3 no note="[supposed]"
/contract answer CR-1 CI-4 yes note="[supposed] parent is an Israeli company (before the Dec 2024 acquisition)"
/contract show CR-1
time 2025-01-06
# Dec 2024 [public, press] AE Industrial Partners (Florida) acquires Paragon, reportedly ~$500M.
# [supposed] The reviewer revisits CI-4 (answers can change until a determination; the audit keeps each version).
/contract answer CR-1 CI-4 no note="[supposed] Dec 2024: acquired by AE Industrial Partners (U.S.); ownership alone does not settle IU-*"
time 2025-02-03
# Jan 2025 [public] WhatsApp reports Paragon's tool was used against journalists and activists in Europe (Italy).
/contract answer CR-1 IU-1 yes note="[supposed] WhatsApp (Jan 2025): same vendor's spyware used against journalists and activists"
/contract answer CR-1 IU-2 no note="[supposed]"
/contract answer CR-1 IU-3 no note="[supposed]"
/contract answer CR-1 MIT-1 yes note="[supposed]"
/contract answer CR-1 MIT-2 yes note="[supposed] Paragon said it stopped working with Italian agencies"
/contract answer CR-1 MIT-3 yes note="[supposed]"
/contract answer CR-1 MIT-4 yes note="[supposed]"
as olu
# [supposed] The relevant official (for DHS, the Secretary of Homeland Security) determines and certifies.
time 2025-08-11
/contract determine CR-1 not-risky reason="[supposed] IU-1: vendor ended the Italian contracts (MIT-2) and now operates under U.S. ownership with verifiable end-use controls"
time 2025-08-13
/contract certify CR-1 official="Secretary of Homeland Security"
as max
time 2025-08-14
# [supposed] The agency head notifies the APNSA under §2(g); operational use waits 7 days.
/contract notify CR-1
# The App Home dashboard during the waiting period: stop-work age, waiting period end, deadlines.
home
time 2025-08-21
time 2025-08-29
# 2025-08-29 [public] A contract modification lifts the stop-work order (public notice dated Aug 29).
/contract resume CR-1 reason="contract modification lifts the stop-work order (public notice dated 2025-08-29)"
/contract show CR-1
time 2026-01-20
# January 2026 [public] NPR: the contract was closed out; the exact date 2026-01-20 is UNCONFIRMED.
/contract close CR-1 reason="contract closed out (NPR, January 2026; exact date UNCONFIRMED)"
# ==== Reminders that fired ====
reminders
# ==== Final record ====
/contract show CR-1
/contract audit CR-1
"""


def run_demo(*, stdout: TextIO | None = None, settings: Settings | None = None) -> int:
    """`contract-bot demo`: replay the ICE / Paragon timeline through the console and print the transcript."""
    stdout = stdout or sys.stdout
    _quiet_logs()
    console = Console(
        settings or Settings(bot_timezone="America/New_York"), out=stdout, start=DEMO_START, echo=True
    )
    try:
        for line in DEMO_SCRIPT.strip().splitlines():
            console.run_line(line)
        stdout.flush()
    finally:
        console.close()
    return 0
