"""A loopback Slack Web API test double.

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
"""

from __future__ import annotations

import copy
import json
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

__all__ = ["Call", "Fault", "RetryAfterViolation", "SlackDouble"]

BOT_USER_ID = "UBOT"
BOT_ID = "B1"
TEAM_ID = "T1"
TEAM_NAME = "Team One"
APP_ID = "A1"

# Methods whose JSON-ish string parameters we decode when they arrive form-encoded.
_JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "files")


@dataclass
class Call:
    """One recorded request.

    ``method`` is the Web API method ("chat.postMessage"), or "upload" / "response_url" for those
    endpoints. ``at`` is ``time.monotonic()`` when the request had been read. ``status`` is the HTTP
    status answered (0 when the connection was dropped).
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
    def __init__(self, status: int = 200, body: Any = None, headers: dict | None = None, drop: bool = False):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.drop = drop


class SlackDouble:
    """Loopback fake of the Slack Web API. Thread-safe; see the module docstring."""

    def __init__(
        self, *, socket_mode: Any = None, trigger_ttl: float | None = 3.0, single_use_triggers: bool = True
    ):
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.latency = 0.0
        self.trigger_ttl = trigger_ttl
        self.single_use_triggers = single_use_triggers
        self._custom: dict[str, Callable[[dict], dict]] = {}
        self._socket_mode = None
        self._reset_state()
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

    def reset(self) -> None:
        """Forget all state, recordings and faults (the server keeps running)."""
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

    def dm_channel(self, user_id: str) -> str:
        """The stable "D..." id ``conversations.open`` returns for ``user_id``."""
        with self._lock:
            if user_id not in self._dms:
                self._dms[user_id] = "D" + self._next_id("")
            return self._dms[user_id]

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
                retry_after=float(fault.retry_after) if fault and fault.retry_after is not None else None,
                response=reply.body,
                raw_body=raw,
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
        if method in self._custom:
            return _Reply(200, self._custom[method](params))
        fn = getattr(self, "_m_" + method.replace(".", "_"), None)
        if fn is None:
            return _Reply(200, {"ok": False, "error": "unknown_method"})
        result = fn(params)
        return result if isinstance(result, _Reply) else _Reply(200, result)

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
        msg = {
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
            "url": "https://t1.slack.com/",
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
        if not (p.get("text") or p.get("blocks") or p.get("attachments")):
            return {"ok": False, "error": "no_text"}
        msg = self._new_message(self._resolve_channel(channel), p)
        return {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "message": self._public(msg)}

    def _m_chat_update(self, p: dict) -> dict:
        channel, ts = p.get("channel"), p.get("ts")
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
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        self._channels[channel].remove(msg)
        self._deleted.append(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def _m_chat_postEphemeral(self, p: dict) -> dict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
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
        if not self._find(p.get("channel", ""), p.get("message_ts", "")):
            return {"ok": False, "error": "message_not_found"}
        ts = p["message_ts"].replace(".", "")
        return {
            "ok": True,
            "channel": p["channel"],
            "permalink": f"https://t1.slack.com/archives/{p['channel']}/p{ts}",
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
        if not ch:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": ch,
                "name": ch.lower(),
                "is_im": ch.startswith("D"),
                "is_channel": ch.startswith("C"),
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
        channel = self._resolve_channel(channel)
        msgs = [m for m in self._channels.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        msgs.sort(key=lambda m: _tsf(m["ts"]))
        with_meta = _truthy(p.get("include_all_metadata"))
        page, meta = self._page(msgs, p, default_limit=1000)
        return {"ok": True, "messages": [self._public(m, with_metadata=with_meta) for m in page], **meta}

    def _check_trigger(self, trigger_id: str | None) -> str | None:
        if not trigger_id:
            return "invalid_arguments"
        minted = self._triggers.get(trigger_id)
        if (
            minted is not None
            and self.trigger_ttl is not None
            and time.monotonic() - minted > self.trigger_ttl
        ):
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
        err = self._check_trigger(p.get("trigger_id"))
        if err:
            return {"ok": False, "error": err}
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
        if not user or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        old = self._home.get(user)
        if old and p.get("hash") and p["hash"] != old["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        v = self._make_view(view)
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
        url = f"{self.base_url}/response/{rid}"
        self._responses.append({"url": url, "body": body, "at": time.monotonic(), **link})
        channel, mts = link.get("channel"), link.get("message_ts")
        original = self._find(channel, mts) if channel and mts else None
        if _truthy(body.get("delete_original")):
            if original is not None:
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
