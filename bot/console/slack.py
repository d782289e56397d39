"""A loopback Slack Web API double, as strict as Slack: the Slack of ``contract-bot console`` and of the tests.

One double serves both, so what the console shows is what the tests check: a payload Slack would refuse is
refused in a terminal session too. The console runs it with ``limits=False`` (a person typing is far below
Slack's rates, and the console's outbox does not pace itself) and ``trigger_ttl=None`` (a slow laptop must not
expire a form); the tests run it with the limits on, scaled by ``rate_scale``.

``SlackDouble`` is a real HTTP server (``http.server.ThreadingHTTPServer``) bound to 127.0.0.1 on a
free port. Point the real ``slack_sdk.WebClient`` at it::

    with SlackDouble() as double:
        client = WebClient(token="xoxb-test", base_url=double.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        double.wait_for(lambda d: len(d.messages("C1")) == 1)

It keeps realistic state (messages with ``ts``, threads, edits, metadata, ephemerals, views, home
tabs, uploaded files, ``response_url`` posts), records every request as a :class:`Call`, lets a
test wait on a ``threading.Condition`` instead of sleeping, and injects faults (429 with
Retry-After, 5xx, slow answers, dropped connections, canned bodies).

Paths served:

* ``POST|GET /api/<method>``  - Web API methods (form-encoded, JSON or query string).
* ``POST /upload/<file_id>``  - the upload URL handed out by ``files.getUploadURLExternal``
  (recorded as method ``"upload"``).
* ``POST /response/<id>``     - ``response_url`` endpoints from :meth:`SlackDouble.new_response_url`
  (recorded as method ``"response_url"``).

Faults can be scripted for ``"upload"`` and ``"response_url"`` as well.

It is as strict as Slack (SLACK-FACTS F1.14-F1.21, F1.28-F1.33):

* **Payloads** of ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``views.*`` and
  ``response_url`` posts are checked with slack_sdk's own Block Kit models (``Block.parse_all`` then each
  block's ``validate_json()``/``to_dict()``; ``View(**view)``) and with Slack's size limits (50 blocks per
  message, 100 per view; text objects 1..3000 characters; section fields at most 10 x 2000; ``block_id`` at
  most 255; more than 12,000 characters of block text in one message is ``msg_blocks_too_long``; ``text``
  over 40,000 characters is ``msg_too_long``; modal title/submit/close at most 24 characters,
  ``private_metadata`` at most 3000). A bad payload is answered ``invalid_blocks`` (messages) or
  ``invalid_arguments`` (views), as Slack answers it, and recorded: :meth:`SlackDouble.refusals`.
* **Rate limits** are token buckets (:data:`POST_PER_CHANNEL`, :data:`POST_WORKSPACE`, :data:`TIERS`,
  :data:`METHOD_TIERS`); over a limit the call is answered HTTP 429 with a whole-second ``Retry-After``
  (at least 1) and ``{"ok": false, "error": "ratelimited"}``, and recorded: :meth:`SlackDouble.rate_limited`.
  ``rate_scale`` multiplies every rate (same bursts, faster refill); ``limits=False`` turns them off.
  A ``response_url`` takes at most 5 posts within 30 minutes (F1.18).
* **Channels**: the bot is a member only of channels it was invited to (:meth:`SlackDouble.invite`, or
  ``invited=`` in the constructor). Posting, editing or reading history elsewhere answers
  ``not_in_channel``; archived channels ``is_archived``; channels declared deleted ``channel_not_found``.
  User ids (``U``/``W``) and DM channels (``D``) are always allowed.
* **Triggers** live ``trigger_ttl`` seconds of real time (3, never scaled) and work once:
  ``expired_trigger_id``, ``exchanged_trigger_id``, ``invalid_trigger_id`` (one the double never issued).
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

__all__ = [
    "METHOD_TIERS",
    "POST_PER_CHANNEL",
    "POST_WORKSPACE",
    "TIERS",
    "Call",
    "Fault",
    "Limit",
    "RateLimited",
    "Refusal",
    "RetryAfterViolation",
    "SlackDouble",
]

BOT_USER_ID = "UBOT"
BOT_ID = "B1"
TEAM_ID = "T1"
TEAM_NAME = "Team One"
APP_ID = "A1"
DEFAULT_WORKSPACE_URL = "https://contract-bot-test.slack.com/"

# Methods whose JSON-ish string parameters we decode when they arrive form-encoded.
_JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "files")

# ---------------------------------------------------------------------- Slack's size limits
MESSAGE_MAX_BLOCKS = 50  # F1.20
VIEW_MAX_BLOCKS = 100  # F1.20, F1.21 (modals and Home tabs)
TEXT_OBJECT_MAX = 3000  # F1.20: a text object holds 1..3000 characters
SECTION_MAX_FIELDS = 10  # F1.20
SECTION_FIELD_MAX = 2000  # F1.20
BLOCK_ID_MAX = 255  # F1.20
MESSAGE_BLOCK_TEXT_MAX = 12_000  # F1.28: more text than this in one message's blocks is msg_blocks_too_long
MESSAGE_TEXT_MAX = 40_000  # F1.16: a longer `text` is msg_too_long
VIEW_LABEL_MAX = 24  # F1.21: modal title, submit and close
PRIVATE_METADATA_MAX = 3000  # F1.21
CALLBACK_ID_MAX = 255  # F1.21
RESPONSE_URL_USES = 5  # F1.18: a response_url takes 5 posts ...
RESPONSE_URL_LIFE = 30 * 60.0  # ... within 30 minutes


# ---------------------------------------------------------------------- Slack's rate limits
@dataclass(frozen=True)
class Limit:
    """A token bucket: ``per_minute`` sustained (times the double's ``rate_scale``), ``burst`` at once."""

    per_minute: float
    burst: int

    def per_second(self, scale: float = 1.0) -> float:
        return self.per_minute / 60.0 * scale


# chat.postMessage (F1.16, "special"): about 1 per second per channel with short bursts. Slack does not
# publish the burst; we allow 3 back to back, then 1 per second.
POST_PER_CHANNEL = Limit(per_minute=60, burst=3)
# ... and a workspace-wide cap of "several hundred per minute": 300, with 6 seconds' worth at once.
POST_WORKSPACE = Limit(per_minute=300, burst=30)
# Tiers (F1.14): per method, per workspace. Burst = about 6 seconds' worth, at least 3.
TIERS: dict[int, Limit] = {
    1: Limit(per_minute=1, burst=1),
    2: Limit(per_minute=20, burst=3),
    3: Limit(per_minute=50, burst=5),
    4: Limit(per_minute=100, burst=10),
}
# F1.32, and Slack's method pages. auth.test ("special", generous), apps.connections.open (the Socket Mode
# handshake) and api.test are not limited; chat.postMessage has its own buckets; a method not listed is Tier 3.
METHOD_TIERS: dict[str, int | None] = {
    "auth.test": None,
    "api.test": None,
    "apps.connections.open": None,
    "conversations.list": 2,
    "users.list": 2,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.open": 3,
    "conversations.info": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "views.publish": 4,
    "users.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
}
DEFAULT_TIER = 3


@dataclass
class Call:
    """One recorded request.

    ``method`` is the Web API method ("chat.postMessage"), or "upload" / "response_url" for those
    endpoints. ``at`` is ``time.monotonic()`` when the request had been read. ``status`` is the HTTP
    status answered (0 when the connection was dropped). ``limit`` names the bucket that answered 429
    ("channel C1", "workspace", "tier 3") when the double's rate limits refused the call.
    """

    method: str
    params: dict
    headers: dict
    at: float
    status: int
    path: str = ""
    fault: str | None = None  # "429", "503", "slow", "drop", "canned", "script:<status>" ...
    retry_after: float | None = None
    response: Any = None
    raw_body: bytes = b""
    limit: str | None = None


@dataclass
class Fault:
    """A fault to inject for one call (see :meth:`SlackDouble.script`).

    * ``Fault(status=429, retry_after=1)`` - rate limited, with a ``Retry-After`` header.
    * ``Fault(status=503)`` (or 500, 502 ...) - server error, state unchanged.
    * ``Fault(delay=2.0)`` - answer normally (state changes) but only after ``delay`` seconds.
    * ``Fault(drop=True)`` - close the connection without answering, state unchanged.
    * ``Fault(status=200, body={...})`` - canned answer, state unchanged.
    """

    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False
    body: Any = None

    @property
    def passes_through(self) -> bool:
        """True when the call is processed normally (only delayed)."""
        return not self.drop and self.status == 200 and self.body is None


@dataclass
class RetryAfterViolation:
    """A call made sooner than the Retry-After of an earlier 429 for the same method."""

    method: str
    limited_at: float
    retry_after: float
    called_at: float

    @property
    def early_by(self) -> float:
        return self.limited_at + self.retry_after - self.called_at


@dataclass
class Refusal:
    """A call the double refused as Slack would.

    ``kind`` is "payload" (blocks, views, sizes: always a bug in the sender), "channel" (``not_in_channel``,
    ``is_archived``, ``channel_not_found``), "trigger" (expired, used or unknown ``trigger_id``) or
    "response_url" (used more than 5 times or older than 30 minutes). ``detail`` says what was wrong, as in
    Slack's ``response_metadata.messages``.
    """

    method: str
    error: str
    kind: str
    detail: str
    channel: str | None
    at: float


@dataclass
class RateLimited:
    """A call the double's rate limits answered with HTTP 429 (not a scripted fault)."""

    method: str
    bucket: str  # "channel C1", "workspace" (chat.postMessage) or "tier 3"
    channel: str | None
    at: float
    retry_after: int


class _Bucket:
    def __init__(self, limit: Limit, scale: float, now: float) -> None:
        self.capacity = float(limit.burst)
        self.rate = limit.per_second(scale)
        self.tokens = self.capacity
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 when one is)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        missing = 1.0 - self.tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, double: SlackDouble):
        self.double = double
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the quiet
        return

    def do_GET(self) -> None:
        self.server.double._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.double._handle(self, "POST")


class _Reply:
    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict | None = None,
        drop: bool = False,
        *,
        retry_after: float | None = None,
        limit: str | None = None,
    ):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.drop = drop
        self.retry_after = retry_after
        self.limit = limit


class SlackDouble:
    """Loopback fake of the Slack Web API, as strict as Slack. Thread-safe; see the module docstring.

    * ``rate_scale``: every rate limit's sustained rate is multiplied by this (bursts stay the same), so a
      test can run Slack's limits faster with the same shape. ``Retry-After`` stays in whole seconds.
    * ``limits``: ``False`` turns the rate limits off (say why in the test). Also an attribute.
    * ``workspace_url``: what ``auth.test`` returns as ``url``, and the host of ``chat.getPermalink``
      (e.g. a GovSlack workspace's host).
    * ``invited``: channels the bot is a member of from the start (see :meth:`invite`).
    * ``clock``: the time the rate limits and ``response_url`` lifetimes are measured with (tests of the
      double step it); triggers always use real time.
    """

    def __init__(
        self,
        *,
        socket_mode: Any = None,
        trigger_ttl: float | None = 3.0,
        single_use_triggers: bool = True,
        rate_scale: float = 1.0,
        limits: bool = True,
        workspace_url: str = DEFAULT_WORKSPACE_URL,
        invited: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ):
        if not rate_scale > 0:
            raise ValueError("rate_scale must be positive")
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.latency = 0.0
        self.trigger_ttl = trigger_ttl
        self.single_use_triggers = single_use_triggers
        self.rate_scale = float(rate_scale)
        self.limits = limits
        self.workspace_url = workspace_url if workspace_url.endswith("/") else workspace_url + "/"
        self._clock = clock
        self._custom: dict[str, Callable[[dict], dict]] = {}
        self._socket_mode = None
        # The workspace's channels as the bot sees them; kept by reset() (it is the workspace, not state).
        self._channel_info: dict[str, dict] = {}
        self._reset_state()
        for channel in invited:
            self.invite(channel)
        if socket_mode is not None:
            self.attach_socket_mode(socket_mode)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SlackDouble:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-double",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> SlackDouble:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SlackDouble is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Value for ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    def attach_socket_mode(self, sm: Any) -> None:
        """Let ``apps.connections.open`` hand out URLs of ``sm`` (a SocketModeDouble)."""
        self._socket_mode = sm

    def on(self, method: str, handler: Callable[[dict], dict]) -> None:
        """Override one method: ``handler(params) -> response dict`` (called under the lock)."""
        with self._lock:
            self._custom[method] = handler

    # ------------------------------------------------------------------ state
    def _reset_state(self) -> None:
        self._calls: list[Call] = []
        self._channels: dict[str, list[dict]] = {}
        self._deleted: list[dict] = []
        self._ephemerals: list[dict] = []
        self._responses: list[dict] = []
        self._response_urls: dict[str, dict] = {}
        self._response_url_uses: dict[str, dict] = {}
        self._views: dict[str, dict] = {}
        self._views_opened: list[dict] = []
        self._home: dict[str, dict] = {}
        self._dms: dict[str, str] = {}
        self._users: dict[str, dict] = {}
        self._uploads: dict[str, dict] = {}
        self._files: list[dict] = []
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._scripts: dict[str, deque[Fault]] = {}
        self._share = 0.0
        self._share_kinds: tuple[str, ...] = ()
        self._share_methods: set[str] | None = None
        self._share_rng = random.Random(0)
        self._share_retry_after = 1.0
        self._share_slow = 0.5
        self._ts_counter = 0
        self._id_counter = 0
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._refusals: list[Refusal] = []
        self._limited: list[RateLimited] = []
        self._expected_refusals: set[str] = set()

    def reset(self) -> None:
        """Forget all state, recordings, faults and rate-limit buckets (the server keeps running; the
        channels set up with invite/remove/archive/delete_channel stay as they are)."""
        with self._cond:
            self._reset_state()
            self.latency = 0.0
            self._cond.notify_all()

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = 1_700_000_000_000_000 + self._ts_counter * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._id_counter += 1
        return f"{prefix}{self._id_counter:08d}"

    def new_response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """A fresh ``response_url`` on this double. When ``channel``/``message_ts`` are given,
        ``replace_original`` / ``delete_original`` / ``response_type: in_channel`` act on that state."""
        with self._lock:
            rid = uuid.uuid4().hex[:16]
            self._response_urls[rid] = {"channel": channel, "message_ts": message_ts, "user": user}
            self._response_url_uses[rid] = {"created": self._clock(), "uses": 0}
        return f"{self.base_url}/response/{rid}"

    def new_trigger_id(self) -> str:
        """A trigger id that ``views.open``/``views.push`` accept once, within ``trigger_ttl`` seconds."""
        with self._lock:
            self._id_counter += 1
            tid = f"{self._id_counter}.{random.randint(10**8, 10**9)}.{uuid.uuid4().hex[:16]}"
            self._triggers[tid] = time.monotonic()
        return tid

    def set_user(self, user_id: str, **fields: Any) -> None:
        """Override fields returned by ``users.info`` for ``user_id`` (e.g. ``tz="Europe/Paris"``)."""
        with self._lock:
            self._users.setdefault(user_id, {}).update(fields)

    def add_user_message(self, channel: str, user: str, text: str) -> dict:
        """A message a person posted in ``channel`` (what a message shortcut runs on); returns it as Slack
        shows it in a payload."""
        with self._cond:
            msg = self._new_message(self._resolve_channel(channel), {"text": text})
            msg.update(user=user, bot_id=None, app_id=None)
            self._cond.notify_all()
            return self._public(msg)

    def dm_channel(self, user_id: str) -> str:
        """The stable "D..." id ``conversations.open`` returns for ``user_id``."""
        with self._lock:
            if user_id not in self._dms:
                self._dms[user_id] = "D" + self._next_id("")
            return self._dms[user_id]

    # ------------------------------------------------------------------ channels
    def _channel(self, channel_id: str) -> dict:
        return self._channel_info.setdefault(
            channel_id,
            {
                "name": channel_id.lower(),
                "is_private": channel_id.startswith("G"),
                "member": False,
                "archived": False,
                "deleted": False,
            },
        )

    def invite(self, channel_id: str, *, name: str | None = None, private: bool | None = None) -> None:
        """``/invite @contract-bot`` in ``channel_id``: the bot is a member from now on."""
        with self._cond:
            info = self._channel(channel_id)
            info.update(member=True, deleted=False)
            if name is not None:
                info["name"] = name
            if private is not None:
                info["is_private"] = private
            self._cond.notify_all()

    def remove(self, channel_id: str) -> None:
        """The bot is removed (kicked) from ``channel_id``: posting there answers ``not_in_channel``."""
        with self._cond:
            self._channel(channel_id)["member"] = False
            self._cond.notify_all()

    def archive(self, channel_id: str) -> None:
        """``channel_id`` is archived: posting there answers ``is_archived``."""
        with self._cond:
            self._channel(channel_id)["archived"] = True
            self._cond.notify_all()

    def unarchive(self, channel_id: str) -> None:
        with self._cond:
            self._channel(channel_id)["archived"] = False
            self._cond.notify_all()

    def delete_channel(self, channel_id: str) -> None:
        """``channel_id`` does not exist (deleted, or a typo): everything about it answers
        ``channel_not_found``. (A channel never mentioned exists, and the bot is not in it.)"""
        with self._cond:
            self._channel(channel_id).update(deleted=True, member=False)
            self._cond.notify_all()

    def is_member(self, channel_id: str) -> bool:
        """Whether the bot may post in ``channel_id`` (always true for users and DMs)."""
        with self._lock:
            return self._channel_error(channel_id) is None

    def _channel_error(self, channel: str) -> str | None:
        """What Slack answers a post, edit or history read in ``channel`` (None: allowed)."""
        info = self._channel_info.get(channel)
        if info is not None and info["deleted"]:
            return "channel_not_found"
        if channel.startswith(("U", "W", "D")):
            return None
        if info is not None and info["archived"]:
            return "is_archived"
        if info is None or not info["member"]:
            return "not_in_channel"
        return None

    # ------------------------------------------------------------------ strictness: what was refused
    def refusals(self, kind: str | None = None, error: str | None = None) -> list[Refusal]:
        """Calls refused as Slack would refuse them (bad payloads, channels, triggers, response URLs), oldest
        first. ``kind``: "payload", "channel", "trigger", "response_url"."""
        with self._lock:
            return [
                r
                for r in self._refusals
                if (kind is None or r.kind == kind) and (error is None or r.error == error)
            ]

    def expect_refusals(self, *errors: str) -> None:
        """Say that this test provokes these payload refusals on purpose (e.g. "msg_blocks_too_long"), so
        :meth:`unexpected_refusals` does not report them."""
        with self._lock:
            self._expected_refusals.update(errors)

    def unexpected_refusals(self) -> list[Refusal]:
        """Payload refusals (always a bug in what was sent) a test did not declare with
        :meth:`expect_refusals`. The ``double`` fixture of tests/conftest.py asserts there are none."""
        with self._lock:
            return [
                r for r in self._refusals if r.kind == "payload" and r.error not in self._expected_refusals
            ]

    def rate_limited(self, method: str | None = None, channel: str | None = None) -> list[RateLimited]:
        """Calls the rate limits answered with 429 (scripted faults are not counted), oldest first."""
        with self._lock:
            return [
                r
                for r in self._limited
                if (method is None or r.method == method) and (channel is None or r.channel == channel)
            ]

    def rate_limited_counts(self) -> dict[str, int]:
        """429s answered by the rate limits per bucket: {"chat.postMessage channel C1": 3, "chat.update tier 3": 1}."""
        counts: dict[str, int] = {}
        for r in self.rate_limited():
            key = f"{r.method} {r.bucket}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def dm_opens(self, user: str | None = None) -> int:
        """How many ``conversations.open`` calls (for ``user``) were answered."""
        n = 0
        for c in self.calls("conversations.open"):
            users = c.params.get("users")
            users = ",".join(users) if isinstance(users, list) else str(users or "")
            if c.status == 200 and (user is None or user in users.split(",")):
                n += 1
        return n

    # ------------------------------------------------------------------ inspection
    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[dict]:
        """Current (not deleted) messages, oldest first, thread replies included."""
        with self._lock:
            chans = [channel] if channel is not None else list(self._channels)
            out = [copy.deepcopy(m) for ch in chans for m in self._channels.get(ch, [])]
            out.sort(key=lambda m: m["ts"])
            return out

    def message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            m = self._find(channel, ts)
            return copy.deepcopy(m) if m else None

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """The parent (if present) and its replies, oldest first."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._channels.get(channel, [])
                if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
            ]

    def deleted(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._deleted)

    def ephemerals(self, user: str | None = None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if user is None or e.get("user") == user]

    def responses(self, response_url: str | None = None) -> list[dict]:
        """Posts to response URLs: dicts with ``url``, ``body`` (parsed JSON) and ``at``."""
        with self._lock:
            return [
                copy.deepcopy(r) for r in self._responses if response_url is None or r["url"] == response_url
            ]

    def home_view(self, user: str) -> dict | None:
        with self._lock:
            v = self._home.get(user)
            return copy.deepcopy(v) if v else None

    def views_opened(self) -> list[dict]:
        """Views opened with ``views.open`` or ``views.push``, in order (as first opened)."""
        with self._lock:
            return copy.deepcopy(self._views_opened)

    def view(self, view_id: str) -> dict | None:
        """Current state of a view (after ``views.update``)."""
        with self._lock:
            v = self._views.get(view_id)
            return copy.deepcopy(v) if v else None

    def files(self) -> list[dict]:
        """Files completed with ``files.completeUploadExternal`` (``content`` holds the bytes)."""
        with self._lock:
            return copy.deepcopy(self._files)

    # ------------------------------------------------------------------ waiting
    def wait_for(self, predicate: Callable[[SlackDouble], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` is true; re-checked after every request. Raises
        ``AssertionError`` with a summary of what the double saw on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"SlackDouble.wait_for timed out after {timeout}s waiting for "
                        f"{getattr(predicate, '__name__', repr(predicate))}\n{self.summary()}"
                    )
                self._cond.wait(remaining)

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until at least ``count`` calls of ``method`` were recorded; returns them."""

        def enough(d: SlackDouble) -> bool:
            return len(d.calls(method)) >= count

        enough.__name__ = f"{count} call(s) of {method}"
        self.wait_for(enough, timeout)
        return self.calls(method)

    def summary(self, last: int = 20) -> str:
        with self._lock:
            lines = [f"{len(self._calls)} call(s) recorded; last {min(last, len(self._calls))}:"]
            t0 = self._calls[0].at if self._calls else 0.0
            for c in self._calls[-last:]:
                extra = f" fault={c.fault}" if c.fault else ""
                err = ""
                if isinstance(c.response, dict) and c.response.get("ok") is False:
                    err = f" error={c.response.get('error')}"
                lines.append(f"  +{c.at - t0:7.3f}s {c.method} -> {c.status}{extra}{err}")
            counts = {ch: len(ms) for ch, ms in self._channels.items()}
            lines.append(f"messages per channel: {counts}")
            lines.append(
                f"ephemerals: {len(self._ephemerals)}, responses: {len(self._responses)}, "
                f"views opened: {len(self._views_opened)}, home views: {len(self._home)}, files: {len(self._files)}"
            )
            lines.append(
                f"rate-limited (429) by the double: {len(self._limited)} {self.rate_limited_counts()}"
            )
            lines.append(f"refused as Slack would: {len(self._refusals)}")
            for refusal in self._refusals[-last:]:
                where = f" in {refusal.channel}" if refusal.channel else ""
                lines.append(
                    f"  +{refusal.at - t0:7.3f}s {refusal.method}{where} -> {refusal.error} ({refusal.kind}): "
                    f"{refusal.detail[:200]}"
                )
            return "\n".join(lines)

    # ------------------------------------------------------------------ faults
    def script(self, method: str, responses: Iterable[Fault]) -> None:
        """The next calls of ``method`` consume these faults in order before normal behaviour."""
        with self._lock:
            self._scripts.setdefault(method, deque()).extend(responses)

    def fail_share(
        self,
        share: float,
        kinds: Iterable[str] = ("429", "503", "slow"),
        seed: int = 0,
        methods: Iterable[str] | None = None,
        retry_after: float = 1,
        slow_seconds: float = 0.5,
    ) -> None:
        """Fault a seeded random ``share`` of calls (Web API methods, or exactly ``methods``).
        Kinds: "429", "500", "502", "503" (state unchanged), "drop" (state unchanged),
        "slow" (processed, answered after ``slow_seconds``). ``fail_share(0)`` turns it off."""
        kinds = tuple(kinds)
        for k in kinds:
            if k not in ("slow", "drop") and not k.isdigit():
                raise ValueError(f"unknown fault kind {k!r}")
        with self._lock:
            self._share = float(share)
            self._share_kinds = kinds
            self._share_rng = random.Random(seed)
            self._share_methods = set(methods) if methods is not None else None
            self._share_retry_after = retry_after
            self._share_slow = slow_seconds

    def retry_after_violations(self, method: str | None = None) -> list[RetryAfterViolation]:
        """Calls made earlier than ``retry_after`` seconds after a 429 for the same method."""
        out = []
        with self._lock:
            calls = list(self._calls)
        for limited in calls:
            if limited.status != 429 or (method is not None and limited.method != method):
                continue
            wait = limited.retry_after or 0.0
            for later in sorted(calls, key=lambda c: c.at):  # recorded in completion order
                if later is limited or later.method != limited.method:
                    continue
                if limited.at < later.at < limited.at + wait:
                    out.append(RetryAfterViolation(limited.method, limited.at, wait, later.at))
        return out

    def _pick_fault(self, method: str, api: bool) -> tuple[Fault | None, str | None]:
        queue = self._scripts.get(method)
        if queue:
            f = queue.popleft()
            return f, _fault_name(f)
        if self._share > 0 and self._share_kinds:
            matches = method in self._share_methods if self._share_methods is not None else api
            if matches and self._share_rng.random() < self._share:
                kind = self._share_rng.choice(self._share_kinds)
                if kind == "slow":
                    return Fault(delay=self._share_slow), "slow"
                if kind == "drop":
                    return Fault(drop=True), "drop"
                status = int(kind)
                return Fault(
                    status=status, retry_after=self._share_retry_after if status == 429 else None
                ), kind
        return None, None

    # ------------------------------------------------------------------ HTTP plumbing
    def _handle(self, h: _Handler, verb: str) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        headers = {k: v for k, v in h.headers.items()}
        path = split.path
        if path.startswith("/api/"):
            method, kind = path[len("/api/") :].strip("/"), "api"
            params = _parse_params(split.query, raw, h.headers.get("Content-Type", ""))
        elif path.startswith("/upload/"):
            method, kind = "upload", "upload"
            params = {"file_id": path[len("/upload/") :].strip("/"), "size": len(raw)}
        elif path.startswith("/response/"):
            method, kind = "response_url", "response"
            try:
                params = json.loads(raw.decode("utf-8")) if raw else {}
            except ValueError:
                params = {"_raw": raw.decode("utf-8", "replace")}
        else:
            method, kind, params = path, "other", {}
        at = time.monotonic()
        if self.latency > 0:
            self._stopping.wait(self.latency)

        with self._cond:
            fault, fault_name = self._pick_fault(method, kind == "api")
            if fault is not None and not fault.passes_through:
                reply = _fault_reply(fault)
            else:
                try:
                    reply = self._dispatch(kind, method, params, headers, path, raw)
                except Exception as e:  # a bug in the double must be visible, not a hang
                    reply = _Reply(500, {"ok": False, "error": "double_internal_error", "detail": repr(e)})
            call = Call(
                method=method,
                params=params,
                headers=headers,
                at=at,
                status=0 if reply.drop else reply.status,
                path=path,
                fault=fault_name,
                retry_after=(
                    float(fault.retry_after)
                    if fault and fault.retry_after is not None
                    else (float(reply.retry_after) if reply.retry_after is not None else None)
                ),
                response=reply.body,
                raw_body=raw,
                limit=reply.limit,
            )
            self._calls.append(call)
            self._cond.notify_all()

        if fault is not None and fault.delay > 0:
            self._stopping.wait(fault.delay)
        if reply.drop:
            h.close_connection = True
            return
        body = reply.body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode("utf-8")
            ctype = "application/json; charset=utf-8"
        else:
            data = (body or "").encode("utf-8") if isinstance(body, str) or body is None else body
            ctype = "text/plain; charset=utf-8"
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _dispatch(self, kind: str, method: str, params: dict, headers: dict, path: str, raw: bytes) -> _Reply:
        if kind == "upload":
            return self._upload(params["file_id"], raw)
        if kind == "response":
            return self._response_url(path, params)
        if kind == "other":
            if path == "/healthz":
                return _Reply(200, "ok")
            return _Reply(404, "not found")
        token = _bearer(headers) or params.get("token")
        if not token:
            return _Reply(200, {"ok": False, "error": "not_authed"})
        if method == "apps.connections.open":
            if not str(token).startswith("xapp-"):
                return _Reply(
                    200,
                    {"ok": False, "error": "not_allowed_token_type" if _is_bot(token) else "invalid_auth"},
                )
        elif not _is_bot(token):
            err = "not_allowed_token_type" if str(token).startswith("xapp-") else "invalid_auth"
            return _Reply(200, {"ok": False, "error": err})
        if self.limits:
            limited = self._rate_limit(method, params)
            if limited is not None:
                return limited
        if method in self._custom:
            return _Reply(200, self._custom[method](params))
        fn = getattr(self, "_m_" + method.replace(".", "_"), None)
        if fn is None:
            return _Reply(200, {"ok": False, "error": "unknown_method"})
        result = fn(params)
        return result if isinstance(result, _Reply) else _Reply(200, result)

    # ------------------------------------------------------------------ rate limits
    def _rate_limit(self, method: str, params: dict) -> _Reply | None:
        """Take a token from each bucket of this call, or answer 429 with the longest wait (none taken)."""
        buckets: list[tuple[str, str | None, tuple[str, ...], Limit]] = []
        if method == "chat.postMessage":
            channel = params.get("channel")
            if isinstance(channel, str) and channel:
                channel = self._resolve_channel(channel)
                buckets.append((f"channel {channel}", channel, (method, channel), POST_PER_CHANNEL))
            buckets.append(("workspace", None, (method, "*"), POST_WORKSPACE))
        else:
            tier = METHOD_TIERS.get(method, DEFAULT_TIER)
            if tier is None:
                return None
            buckets.append((f"tier {tier}", None, (method,), TIERS[tier]))
        now = self._clock()
        worst, name, where = 0.0, "", None
        for label, channel, key, limit in buckets:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(limit, self.rate_scale, now)
            wait = bucket.wait(now)
            if wait > worst:
                worst, name, where = wait, label, channel
        if worst > 0:
            retry_after = max(1, math.ceil(worst))
            self._limited.append(RateLimited(method, name, where, time.monotonic(), retry_after))
            return _Reply(
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(retry_after)},
                retry_after=retry_after,
                limit=name,
            )
        for _label, _channel, key, _limit in buckets:
            self._buckets[key].tokens -= 1.0
        return None

    # ------------------------------------------------------------------ refusals
    def _refuse(self, method: str, error: str, kind: str, detail: str, channel: str | None = None) -> dict:
        self._refusals.append(Refusal(method, error, kind, detail, channel, time.monotonic()))
        body: dict[str, Any] = {"ok": False, "error": error}
        if detail and kind == "payload":
            body["response_metadata"] = {"messages": [f"[ERROR] {detail}"]}
        return body

    def _check_message(self, method: str, p: dict, channel: str | None) -> dict | None:
        """Slack's checks of a message's ``text`` and ``blocks`` (None: it would be accepted)."""
        text = p.get("text")
        if isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX:
            return self._refuse(
                method,
                "msg_too_long",
                "payload",
                f"text has {len(text)} characters, more than {MESSAGE_TEXT_MAX}",
                channel,
            )
        blocks = p.get("blocks")
        if blocks is None or blocks == "":
            return None
        problem = _block_problem(blocks, MESSAGE_MAX_BLOCKS)
        if problem:
            return self._refuse(method, "invalid_blocks", "payload", problem, channel)
        total = _block_text_length(blocks)
        if total > MESSAGE_BLOCK_TEXT_MAX:
            return self._refuse(
                method,
                "msg_blocks_too_long",
                "payload",
                f"blocks carry {total} characters of text, more than {MESSAGE_BLOCK_TEXT_MAX}",
                channel,
            )
        return None

    def _check_view(self, method: str, view: Any, *, home: bool | None) -> dict | None:
        """Slack's checks of a view (None: accepted). ``home``: True for views.publish, False for modals,
        None when either may come (views.update)."""
        problem = _view_problem(view, home=home)
        if problem:
            return self._refuse(method, "invalid_arguments", "payload", problem)
        return None

    def _check_channel(self, method: str, channel: str) -> dict | None:
        error = self._channel_error(channel)
        if error is None:
            return None
        return self._refuse(method, error, "channel", f"the bot cannot use {channel}: {error}", channel)

    # ------------------------------------------------------------------ message helpers
    def _find(self, channel: str, ts: str) -> dict | None:
        for m in self._channels.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    def _resolve_channel(self, channel: str) -> str:
        if channel.startswith(("U", "W")):
            return self.dm_channel(channel)
        return channel

    def _new_message(self, channel: str, p: dict, *, files: list | None = None) -> dict:
        ts = self._next_ts()
        thread_ts = p.get("thread_ts") or None
        msg: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": p.get("text") or "",
            "blocks": p.get("blocks"),
            "attachments": p.get("attachments"),
            "thread_ts": thread_ts,
            "reply_broadcast": _truthy(p.get("reply_broadcast")),
            "metadata": p.get("metadata"),
            "reply_count": 0,
            "edits": [],
        }
        if files:
            msg["files"] = files
        if thread_ts:
            parent = self._find(channel, thread_ts)
            if parent is not None:
                parent.setdefault("thread_ts", None)
                parent["thread_ts"] = parent["thread_ts"] or thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = ts
        self._channels.setdefault(channel, []).append(msg)
        return msg

    @staticmethod
    def _public(m: dict, *, with_metadata: bool = True) -> dict:
        out = {k: v for k, v in m.items() if k not in ("channel", "edits") and v is not None}
        if out.get("thread_ts") != out["ts"]:  # only a thread parent carries reply counts
            out.pop("reply_count", None)
            out.pop("latest_reply", None)
        if not out.get("reply_broadcast"):
            out.pop("reply_broadcast", None)
        if m["edits"]:
            out["edited"] = {"user": BOT_USER_ID, "ts": m["edits"][-1]["edited_ts"]}
        if not with_metadata:
            out.pop("metadata", None)
        return copy.deepcopy(out)

    # ------------------------------------------------------------------ Web API methods
    def _m_api_test(self, p: dict) -> dict:
        return {"ok": True, "args": {k: v for k, v in p.items() if k != "token"}}

    def _m_auth_test(self, p: dict) -> dict:
        return {
            "ok": True,
            "url": self.workspace_url,
            "team": TEAM_NAME,
            "user": "contract-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, p: dict) -> dict:
        if self._socket_mode is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return self._socket_mode.connections_open_response()

    def _m_chat_postMessage(self, p: dict) -> dict:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        refused = self._check_channel("chat.postMessage", channel)
        if refused:
            return refused
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            return self._refuse(
                "chat.postMessage", "no_text", "payload", "no text, blocks or attachments", channel
            )
        refused = self._check_message("chat.postMessage", p, channel)
        if refused:
            return refused
        msg = self._new_message(self._resolve_channel(channel), p)
        return {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "message": self._public(msg)}

    def _m_chat_update(self, p: dict) -> dict:
        channel, ts = p.get("channel"), p.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        refused = self._check_channel("chat.update", channel) or self._check_message(
            "chat.update", p, channel
        )
        if refused:
            return refused
        msg = self._find(self._resolve_channel(channel), ts) if channel and ts else None
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        edit = {"edited_ts": self._next_ts(), "at": time.monotonic()}
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in p and p[key] is not None:
                edit[key] = p[key]
                msg[key] = p[key]
        msg["edits"].append(edit)
        return {
            "ok": True,
            "channel": msg["channel"],
            "ts": ts,
            "text": msg["text"],
            "message": self._public(msg),
        }

    def _m_chat_delete(self, p: dict) -> dict:
        channel, ts = p.get("channel"), p.get("ts")
        channel = self._resolve_channel(channel) if channel else channel
        msg = self._find(channel, ts) if channel and ts else None
        if msg is None or channel is None:
            return {"ok": False, "error": "message_not_found"}
        self._channels[channel].remove(msg)
        self._deleted.append(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def _m_chat_postEphemeral(self, p: dict) -> dict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        refused = self._check_channel("chat.postEphemeral", p["channel"]) or self._check_message(
            "chat.postEphemeral", p, p["channel"]
        )
        if refused:
            return refused
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": p["channel"],
                "user": p["user"],
                "ts": ts,
                "text": p.get("text") or "",
                "blocks": p.get("blocks"),
                "thread_ts": p.get("thread_ts"),
                "via": "chat.postEphemeral",
            }
        )
        return {"ok": True, "message_ts": ts}

    def _m_chat_getPermalink(self, p: dict) -> dict:
        channel = p.get("channel") or ""
        info = self._channel_info.get(channel)
        if not channel or (info is not None and info["deleted"]):
            return {"ok": False, "error": "channel_not_found"}
        if not self._find(self._resolve_channel(channel), p.get("message_ts", "")):
            return {"ok": False, "error": "message_not_found"}
        ts = p["message_ts"].replace(".", "")
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"{self.workspace_url}archives/{channel}/p{ts}",
        }

    def _m_conversations_open(self, p: dict) -> dict:
        users = p.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if p.get("channel"):
            return {"ok": True, "channel": {"id": p["channel"]}}
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        ids = [u.strip() for u in str(users).split(",") if u.strip()]
        cid = self.dm_channel(ids[0]) if len(ids) == 1 else "G" + "".join(sorted(ids))[:20]
        return {
            "ok": True,
            "no_op": True,
            "already_open": True,
            "channel": {"id": cid, "is_im": len(ids) == 1},
        }

    def _m_conversations_info(self, p: dict) -> dict:
        ch = p.get("channel")
        if not ch or ch.startswith(("U", "W")):
            return {"ok": False, "error": "channel_not_found"}
        if ch.startswith("D"):
            user = next((u for u, d in self._dms.items() if d == ch), None)
            return {"ok": True, "channel": {"id": ch, "is_im": True, "user": user, "is_member": True}}
        info = self._channel_info.get(ch)
        if info is not None and info["deleted"]:
            return {"ok": False, "error": "channel_not_found"}
        info = info or self._channel(ch)
        return {
            "ok": True,
            "channel": {
                "id": ch,
                "name": info["name"],
                "is_im": False,
                "is_channel": not info["is_private"],
                "is_group": info["is_private"],
                "is_private": info["is_private"],
                "is_archived": info["archived"],
                "is_member": info["member"],
            },
        }

    def _page(self, items: list[dict], p: dict, default_limit: int = 100) -> tuple[list[dict], dict]:
        limit = int(p.get("limit") or default_limit)
        start = int(p.get("cursor") or 0) if str(p.get("cursor") or "0").isdigit() else 0
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, {
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_conversations_history(self, p: dict) -> dict:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        refused = self._check_channel("conversations.history", channel)
        if refused:
            return refused
        channel = self._resolve_channel(channel)
        inclusive = _truthy(p.get("inclusive"))
        oldest, latest = p.get("oldest"), p.get("latest")
        with_meta = _truthy(p.get("include_all_metadata"))
        top = []
        for m in self._channels.get(channel, []):
            if m.get("thread_ts") and m["thread_ts"] != m["ts"] and not m.get("reply_broadcast"):
                continue
            if oldest and not (_tsf(m["ts"]) > _tsf(oldest) or (inclusive and m["ts"] == oldest)):
                continue
            if latest and not (_tsf(m["ts"]) < _tsf(latest) or (inclusive and m["ts"] == latest)):
                continue
            top.append(m)
        top.sort(key=lambda m: _tsf(m["ts"]), reverse=True)
        page, meta = self._page(top, p)
        return {
            "ok": True,
            "messages": [self._public(m, with_metadata=with_meta) for m in page],
            "pin_count": 0,
            **meta,
        }

    def _m_conversations_replies(self, p: dict) -> dict:
        channel, ts = p.get("channel"), p.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        refused = self._check_channel("conversations.replies", channel)
        if refused:
            return refused
        channel = self._resolve_channel(channel)
        msgs = [m for m in self._channels.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        msgs.sort(key=lambda m: _tsf(m["ts"]))
        with_meta = _truthy(p.get("include_all_metadata"))
        page, meta = self._page(msgs, p, default_limit=1000)
        return {"ok": True, "messages": [self._public(m, with_metadata=with_meta) for m in page], **meta}

    def _check_trigger(self, trigger_id: str | None) -> str | None:
        """Slack's answer to a ``trigger_id`` (None: good). Trigger life is real time, never scaled."""
        if not trigger_id:
            return "invalid_arguments"
        minted = self._triggers.get(trigger_id)
        if minted is None:
            return "invalid_trigger_id"
        if self.trigger_ttl is not None and time.monotonic() - minted > self.trigger_ttl:
            return "expired_trigger_id"
        if self.single_use_triggers:
            if trigger_id in self._used_triggers:
                return "exchanged_trigger_id"
            self._used_triggers.add(trigger_id)
        return None

    def _make_view(self, view: Any, *, root: str | None = None, previous: str | None = None) -> dict | None:
        if not isinstance(view, dict) or "type" not in view:
            return None
        vid = self._next_id("V")
        v = copy.deepcopy(view)
        v.update(
            {
                "id": vid,
                "team_id": TEAM_ID,
                "app_id": APP_ID,
                "bot_id": BOT_ID,
                "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
                "state": {"values": {}},
                "root_view_id": root or vid,
                "previous_view_id": previous,
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "external_id": view.get("external_id", ""),
            }
        )
        self._views[vid] = v
        return v

    def _open_view(self, p: dict, pushed: bool) -> dict:
        method = "views.push" if pushed else "views.open"
        refused = self._check_view(method, p.get("view"), home=False)
        if refused:
            return refused
        err = self._check_trigger(p.get("trigger_id"))
        if err:
            if err == "invalid_arguments":
                return {"ok": False, "error": err}
            return self._refuse(method, err, "trigger", f"trigger_id {p.get('trigger_id')!r}: {err}")
        v = self._make_view(p.get("view"))
        if v is None:
            return {"ok": False, "error": "invalid_arguments"}
        self._views_opened.append({**copy.deepcopy(v), "trigger_id": p.get("trigger_id"), "pushed": pushed})
        return {"ok": True, "view": copy.deepcopy(v)}

    def _m_views_open(self, p: dict) -> dict:
        return self._open_view(p, pushed=False)

    def _m_views_push(self, p: dict) -> dict:
        return self._open_view(p, pushed=True)

    def _m_views_update(self, p: dict) -> dict:
        vid, ext = p.get("view_id"), p.get("external_id")
        target = self._views.get(vid) if vid else None
        if target is None and ext:
            target = next((v for v in self._views.values() if v.get("external_id") == ext), None)
        if target is None:
            return {"ok": False, "error": "not_found"}
        if p.get("hash") and p["hash"] != target["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        new = p.get("view")
        refused = self._check_view("views.update", new, home=target.get("type") == "home")
        if refused:
            return refused
        if not isinstance(new, dict):
            return {"ok": False, "error": "invalid_arguments"}
        keep = {
            k: target[k]
            for k in ("id", "team_id", "app_id", "bot_id", "root_view_id", "previous_view_id", "state")
        }
        target.clear()
        target.update(copy.deepcopy(new))
        target.update(keep)
        target["hash"] = f"{int(time.time())}.{uuid.uuid4().hex[:8]}"
        target.setdefault("private_metadata", "")
        target.setdefault("callback_id", "")
        return {"ok": True, "view": copy.deepcopy(target)}

    def _m_views_publish(self, p: dict) -> dict:
        user = p.get("user_id")
        view = p.get("view")
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        refused = self._check_view("views.publish", view, home=True)
        if refused:
            return refused
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        old = self._home.get(user)
        if old and p.get("hash") and p["hash"] != old["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        v = self._make_view(view)
        if v is None:
            return {"ok": False, "error": "invalid_arguments"}
        self._home[user] = v
        return {"ok": True, "view": copy.deepcopy(v)}

    def _m_users_info(self, p: dict) -> dict:
        uid = p.get("user")
        if not uid:
            return {"ok": False, "error": "user_not_found"}
        name = uid.lower()
        user = {
            "id": uid,
            "team_id": TEAM_ID,
            "name": name,
            "real_name": f"User {uid}",
            "deleted": False,
            "is_bot": uid == BOT_USER_ID,
            "is_admin": False,
            "tz": "America/New_York",
            "tz_label": "Eastern Standard Time",
            "tz_offset": -18000,
            "profile": {"real_name": f"User {uid}", "display_name": name, "email": f"{name}@example.gov"},
        }
        user.update(copy.deepcopy(self._users.get(uid, {})))
        return {"ok": True, "user": user}

    def _m_files_getUploadURLExternal(self, p: dict) -> dict:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        fid = self._next_id("F")
        self._uploads[fid] = {"filename": p["filename"], "length": int(p["length"]), "content": None}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{fid}", "file_id": fid}

    def _upload(self, fid: str, raw: bytes) -> _Reply:
        up = self._uploads.get(fid)
        if up is None:
            return _Reply(404, "not found")
        up["content"] = raw
        return _Reply(200, f"OK - {len(raw)}")

    def _m_files_completeUploadExternal(self, p: dict) -> dict:
        files = p.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        out = []
        for f in files:
            up = self._uploads.get(f.get("id", ""))
            if up is None or up["content"] is None:
                return {"ok": False, "error": "file_not_found"}
        channel = p.get("channel_id") or None
        channels = [c for c in str(p.get("channels") or "").split(",") if c]
        for ch in channels or ([channel] if channel else []):
            refused = self._check_channel("files.completeUploadExternal", ch)
            if refused:
                return refused
        for f in files:
            up = self._uploads.pop(f["id"])
            record = {
                "id": f["id"],
                "name": up["filename"],
                "title": f.get("title") or up["filename"],
                "size": len(up["content"]),
                "length": up["length"],
                "content": up["content"],
                "channel_id": channel,
                "channels": channels or ([channel] if channel else []),
                "initial_comment": p.get("initial_comment"),
                "thread_ts": p.get("thread_ts"),
            }
            self._files.append(record)
            out.append({k: record[k] for k in ("id", "name", "title", "size")})
        for ch in channels or ([channel] if channel else []):
            self._new_message(
                ch,
                {"text": p.get("initial_comment") or "", "thread_ts": p.get("thread_ts")},
                files=copy.deepcopy(out),
            )
        return {"ok": True, "files": out}

    # ------------------------------------------------------------------ response_url
    def _response_url(self, path: str, body: dict) -> _Reply:
        rid = path[len("/response/") :].strip("/")
        link = self._response_urls.get(rid)
        if link is None:
            return _Reply(404, "no_active_hooks")
        channel = link.get("channel")
        use = self._response_url_uses.setdefault(rid, {"created": self._clock(), "uses": 0})
        if self._clock() - use["created"] > RESPONSE_URL_LIFE:
            self._refuse(
                "response_url", "expired_url", "response_url", "used more than 30 minutes after", channel
            )
            return _Reply(404, "expired_url")
        if use["uses"] >= RESPONSE_URL_USES:
            self._refuse(
                "response_url", "used_url", "response_url", f"used {RESPONSE_URL_USES} times already", channel
            )
            return _Reply(404, "used_url")
        refused = self._check_message("response_url", body, channel)
        if refused:
            return _Reply(400, refused["error"])
        use["uses"] += 1
        url = f"{self.base_url}/response/{rid}"
        self._responses.append({"url": url, "body": body, "at": time.monotonic(), **link})
        channel, mts = link.get("channel"), link.get("message_ts")
        original = self._find(channel, mts) if channel and mts else None
        if _truthy(body.get("delete_original")):
            if original is not None and channel:
                self._channels[channel].remove(original)
                self._deleted.append(original)
        elif _truthy(body.get("replace_original")) and original is not None:
            edit = {"edited_ts": self._next_ts(), "at": time.monotonic(), "via": "response_url"}
            for key in ("text", "blocks", "attachments"):
                if key in body:
                    edit[key] = body[key]
                    original[key] = body[key]
            original["edits"].append(edit)
        elif body.get("response_type") == "in_channel" and channel:
            self._new_message(channel, {**body, "thread_ts": body.get("thread_ts")})
        else:
            self._ephemerals.append(
                {
                    "channel": channel,
                    "user": link.get("user"),
                    "ts": self._next_ts(),
                    "text": body.get("text") or "",
                    "blocks": body.get("blocks"),
                    "thread_ts": body.get("thread_ts"),
                    "via": "response_url",
                }
            )
        return _Reply(200, "ok")


# ---------------------------------------------------------------------- payload checks
def _block_problem(blocks: Any, max_blocks: int, where: str = "/blocks") -> str | None:
    """Why Slack would refuse these blocks (None: it would not): slack_sdk's own models, then the limits
    slack_sdk does not check everywhere (text objects, fields, block_id)."""
    if not isinstance(blocks, list):
        return f"must provide an array [json-pointer:{where}]"
    if len(blocks) > max_blocks:
        return f"no more than {max_blocks} items allowed [json-pointer:{where}] ({len(blocks)} given)"
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return f"must provide an object with a type [json-pointer:{where}/{i}]"
    try:
        parsed = Block.parse_all(blocks)
    except Exception as e:  # a malformed block makes slack_sdk's constructors raise
        return f"{type(e).__name__}: {e} [json-pointer:{where}]"
    for i, block in enumerate(parsed):
        if block is None:
            return f"unsupported type: {blocks[i]['type']!r} [json-pointer:{where}/{i}]"
        try:
            block.validate_json()
            block.to_dict()  # validates the nested elements and text objects too
        except Exception as e:
            return f"{e} [json-pointer:{where}/{i}]"
    for i, raw in enumerate(blocks):
        block_id = raw.get("block_id")
        if block_id is not None and (not isinstance(block_id, str) or len(block_id) > BLOCK_ID_MAX):
            return f"block_id must be a string of at most {BLOCK_ID_MAX} characters [json-pointer:{where}/{i}/block_id]"
        fields = raw.get("fields")
        if raw["type"] == "section" and fields is not None:
            if not isinstance(fields, list) or len(fields) > SECTION_MAX_FIELDS:
                return f"no more than {SECTION_MAX_FIELDS} fields allowed [json-pointer:{where}/{i}/fields]"
            for j, field in enumerate(fields):
                text = field.get("text") if isinstance(field, dict) else None
                if isinstance(text, str) and len(text) > SECTION_FIELD_MAX:
                    return (
                        f"must be less than {SECTION_FIELD_MAX + 1} characters "
                        f"[json-pointer:{where}/{i}/fields/{j}/text]"
                    )
        problem = _text_object_problem(raw, f"{where}/{i}")
        if problem:
            return problem
    return None


def _text_object_problem(node: Any, where: str) -> str | None:
    """Every text object (plain_text / mrkdwn) holds a string of 1..3000 characters."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            text = node["text"]
            if not isinstance(text, str):
                return f"must be a string [json-pointer:{where}/text]"
            if not 1 <= len(text) <= TEXT_OBJECT_MAX:
                return (
                    f"must be between 1 and {TEXT_OBJECT_MAX} characters ({len(text)} given) "
                    f"[json-pointer:{where}/text]"
                )
        for key, value in node.items():
            problem = _text_object_problem(value, f"{where}/{key}")
            if problem:
                return problem
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problem = _text_object_problem(value, f"{where}/{i}")
            if problem:
                return problem
    return None


def _block_text_length(node: Any) -> int:
    """Characters of text a message's blocks carry (every string under a "text" key, rich text included)."""
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _block_text_length(v) for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(_block_text_length(v) for v in node)
    return 0


def _view_problem(view: Any, *, home: bool | None) -> str | None:
    """Why Slack would refuse this view (None: it would not): slack_sdk's ``View``, then the modal rules."""
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        return "view must be an object with a type [json-pointer:/view]"
    kind = view["type"]
    if home is True and kind != "home":
        return f"views.publish takes a home view, not {kind!r} [json-pointer:/view/type]"
    if home is False and kind != "modal":
        return f"a modal view is needed, not {kind!r} [json-pointer:/view/type]"
    try:
        model = View(**view)
        model.validate_json()
        model.to_dict()
    except Exception as e:
        return f"{e} [json-pointer:/view]"
    problem = _block_problem(view.get("blocks"), VIEW_MAX_BLOCKS, "/view/blocks")
    if problem:
        return problem
    if kind == "modal":
        title = view.get("title")
        if not isinstance(title, dict) or title.get("type") != "plain_text":
            return "a modal needs a plain_text title [json-pointer:/view/title]"
        for key in ("title", "submit", "close"):
            label = view.get(key)
            if label is None:
                continue
            text = label.get("text") if isinstance(label, dict) else None
            if not isinstance(text, str) or not 1 <= len(text) <= VIEW_LABEL_MAX:
                return f"must be between 1 and {VIEW_LABEL_MAX} characters [json-pointer:/view/{key}/text]"
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and view.get("submit") is None:
            return "a modal with input blocks needs a submit button [json-pointer:/view/submit]"
    metadata = view.get("private_metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > PRIVATE_METADATA_MAX):
        return f"must be at most {PRIVATE_METADATA_MAX} characters [json-pointer:/view/private_metadata]"
    callback_id = view.get("callback_id")
    if callback_id is not None and (not isinstance(callback_id, str) or len(callback_id) > CALLBACK_ID_MAX):
        return f"must be at most {CALLBACK_ID_MAX} characters [json-pointer:/view/callback_id]"
    return None


# ---------------------------------------------------------------------- helpers
def _fault_name(f: Fault) -> str:
    if f.drop:
        return "drop"
    if f.body is not None:
        return "canned"
    if f.status != 200:
        return str(f.status)
    return "slow"


def _fault_reply(f: Fault) -> _Reply:
    if f.drop:
        return _Reply(drop=True)
    headers = {}
    if f.retry_after is not None:
        ra = f.retry_after
        headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    if f.body is not None:
        return _Reply(f.status, f.body, headers)
    if f.status == 429:
        return _Reply(429, {"ok": False, "error": "ratelimited"}, headers)
    return _Reply(
        f.status,
        {"ok": False, "error": "service_unavailable" if f.status == 503 else "internal_error"},
        headers,
    )


def _bearer(headers: dict) -> str | None:
    for k, v in headers.items():
        if k.lower() == "authorization" and v.lower().startswith("bearer "):
            return v[7:].strip()
    return None


def _is_bot(token: Any) -> bool:
    return isinstance(token, str) and token.startswith(("xoxb-", "xoxp-"))


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.lower() in ("1", "true", "yes")
    return bool(v)


def _tsf(ts: Any) -> float:
    try:
        return float(ts)
    except (TypeError, ValueError):
        return 0.0


def _parse_params(query: str, raw: bytes, content_type: str) -> dict:
    params: dict[str, Any] = {}
    for k, vs in parse_qs(query, keep_blank_values=True).items():
        params[k] = vs[0] if len(vs) == 1 else vs
    ctype = content_type.split(";")[0].strip().lower()
    if raw and ctype == "application/json":
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = {}
        if isinstance(body, dict):
            params.update(body)
    elif raw and ctype == "application/x-www-form-urlencoded":
        for k, vs in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items():
            params[k] = vs[0] if len(vs) == 1 else vs
    elif raw and ctype.startswith("multipart/"):
        params["_multipart"] = True
    for key in _JSON_FIELDS:
        v = params.get(key)
        if isinstance(v, str) and v[:1] in ("{", "["):
            try:
                params[key] = json.loads(v)
            except ValueError:
                pass
    return params
