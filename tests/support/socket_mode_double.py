"""A loopback Slack Socket Mode server (``ws://127.0.0.1:PORT/link``).

Runs a ``websockets`` asyncio server in its own thread with its own event loop. Attach it to a
``SlackDouble`` so ``apps.connections.open`` (with an ``xapp-`` token) hands out its URL::

    with SlackDouble() as double, SocketModeDouble(double) as sm:
        handler = SocketModeHandler(app, app_token="xapp-1-test")  # app.client -> double.api_url
        handler.connect()
        assert sm.connected.wait(5)
        eid = sm.send_envelope("slash_commands", {...})
        ack = sm.wait_for_ack(eid)

Websocket ping/pong control frames are answered by ``websockets`` itself; a JSON ``{"type": "ping"}``
text message is answered with ``{"type": "pong"}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["SocketModeDouble", "close_handler"]

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")


class SocketModeDouble:
    def __init__(self, double: Any = None, *, app_id: str = "A1", require_ticket: bool = True):
        self.app_id = app_id
        self.require_ticket = require_ticket
        self.connected = threading.Event()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._tickets: set[str] = set()
        self._conns: list[ServerConnection] = []
        self._acks: dict[str, dict] = {}
        self._sent: list[dict] = []
        self._received: list[dict] = []
        self._connect_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._port: int | None = None
        if double is not None:
            double.attach_socket_mode(self)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SocketModeDouble:
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(self._open_server())
                self._port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # surface start-up errors to start()
                errors.append(e)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="socket-mode-double", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _open_server(self) -> Any:
        return await serve(
            self._serve, "127.0.0.1", 0, process_request=self._process_request, ping_interval=None
        )

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            self._server.close()
            await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._thread = None
        self._loop = None
        self.connected.clear()

    def __enter__(self) -> SocketModeDouble:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SocketModeDouble is not started")
        return self._port

    def new_url(self) -> str:
        """A fresh ``ws://`` URL with a one-time ticket (what ``apps.connections.open`` returns)."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # Called by SlackDouble for apps.connections.open (under the double's lock).
    def connections_open_response(self) -> dict:
        return {"ok": True, "url": self.new_url()}

    # ------------------------------------------------------------------ server side
    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        split = urlsplit(request.path)
        if split.path.rstrip("/") != "/link":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if self.require_ticket:
            ticket = (parse_qs(split.query).get("ticket") or [""])[0]
            with self._lock:
                if ticket not in self._tickets:
                    return connection.respond(HTTPStatus.FORBIDDEN, "invalid ticket\n")
                self._tickets.discard(ticket)
        return None

    async def _serve(self, conn: ServerConnection) -> None:
        with self._cond:
            self._conns.append(conn)
            self._connect_count += 1
        hello = {
            "type": "hello",
            "num_connections": len(self._conns),
            "connection_info": {"app_id": self.app_id},
            "debug_info": {
                "host": "applink-test-double",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
        }
        await conn.send(json.dumps(hello))
        with self._cond:
            self.connected.set()
            self._cond.notify_all()
        try:
            async for raw in conn:
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                try:
                    msg = json.loads(text)
                except ValueError:
                    msg = {"_raw": text}
                if isinstance(msg, dict) and msg.get("type") == "ping":
                    await conn.send(json.dumps({"type": "pong", "reply_to": msg.get("id")}))
                with self._cond:
                    self._received.append(msg if isinstance(msg, dict) else {"_raw": msg})
                    if isinstance(msg, dict) and msg.get("envelope_id"):
                        msg["_received_at"] = time.monotonic()
                        self._acks.setdefault(msg["envelope_id"], msg)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if conn in self._conns:
                    self._conns.remove(conn)
                if not self._conns:
                    self.connected.clear()
                self._cond.notify_all()

    # ------------------------------------------------------------------ test API
    def _run(self, coro: Any, timeout: float = 5.0) -> Any:
        if self._loop is None:
            raise RuntimeError("SocketModeDouble is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _latest_conn(self) -> ServerConnection:
        with self._lock:
            if not self._conns:
                raise AssertionError("no Socket Mode client is connected")
            return self._conns[-1]

    def send_raw(self, message: dict | str) -> None:
        """Send any frame to the newest connection."""
        conn = self._latest_conn()
        data = message if isinstance(message, str) else json.dumps(message)
        self._run(conn.send(data))

    def send_envelope(
        self,
        type: str,  # noqa: A002 - mirrors the envelope field
        payload: dict,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool = True,
        envelope_id: str | None = None,
    ) -> str:
        """Send an envelope to the newest connection; returns its ``envelope_id``."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}")
        eid = envelope_id or str(uuid.uuid4())
        envelope = {
            "envelope_id": eid,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        with self._lock:
            self._sent.append({**envelope, "_sent_at": time.monotonic()})
        self.send_raw(envelope)
        return eid

    def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect, as Slack does before rotating a connection."""
        self.send_raw({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-test-double"}})

    def close_connections(self) -> None:
        """Abruptly close every connection (the client should reconnect)."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            self._run(c.close())

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict:
        """The ack the client sent for ``envelope_id`` (``{"envelope_id":..., "payload":...?}``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no ack for envelope {envelope_id} within {timeout}s; "
                        f"acked: {list(self._acks)}; connections: {len(self._conns)}"
                    )
                self._cond.wait(remaining)
            return dict(self._acks[envelope_id])

    def wait_for_connections(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until the client has connected ``count`` times in total (reconnects included)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._connect_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"only {self._connect_count} connection(s) within {timeout}s, wanted {count}"
                    )
                self._cond.wait(remaining)

    def acks(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self._acks.items()}

    def sent(self) -> list[dict]:
        with self._lock:
            return [dict(e) for e in self._sent]

    def received(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._received]

    @property
    def connection_count(self) -> int:
        with self._lock:
            return self._connect_count

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)


def close_handler(handler: Any) -> None:
    """Close a slack_bolt SocketModeHandler (slack_sdk's built-in client) without the race that can hang its close.

    NOTE: SocketModeClient.close() marks the session's state terminated, then closes the socket. If its session
    runner thread comes round between the two (it waits 0.1 s between turns, so a busy machine makes this likely)
    it finds the socket still open, marks the state running again and loops for ever on the closed socket, and
    close() waits for it for ever. With reconnection off and the socket closed first, the runner finds nothing
    to run."""
    client = handler.client
    client.auto_reconnect_enabled = False
    client.disconnect()
    handler.close()
