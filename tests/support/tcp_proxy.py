"""A loopback TCP proxy that can stop forwarding, to make a database look hung to the bot.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = proxy.rewrite("postgresql+psycopg://postgres@127.0.0.1:5432/test")  # same URL, via the proxy
        proxy.hang()    # bytes are held, sockets stay open: the server seems to have stopped answering
        proxy.resume()  # what was held is forwarded, in order, and forwarding goes on

While hung nothing is read from any socket (what clients send waits in the kernel's buffers, or in the one chunk
a pump had already read) and no new connection is accepted (the kernel completes the handshake into the listen
backlog, so a client's connect "succeeds" and then hears nothing). Nothing is ever closed by a hang.

``latency`` (seconds, 0 by default) delays every chunk in both directions, as a slow network or a loaded server
does: a round trip takes at least twice as long; set it back to 0 and what follows goes at once.

``hang_after(marker)`` hangs at a precise point: the chunk from a client that contains ``marker`` (e.g.
``b"COMMIT\\x00"``, PostgreSQL's simple-query COMMIT) is still forwarded to the server, and then everything stops,
so the server carries out the statement but its answer never reaches the client.

One accept thread and two pump threads per connection, all daemons; ``close()`` stops and joins them and closes
every socket. Connections are counted (``accepted``) so a test can tell that its traffic really went through.
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType

from sqlalchemy.engine import make_url

__all__ = ["TcpProxy"]

_POLL = 0.05  # how often blocked threads look at the stop flag (s)
_CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<ephemeral port> to ``upstream``; ``hang()``/``resume()`` switch forwarding off and on."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._flowing = threading.Event()
        self._flowing.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._marker: bytes | None = None
        self.accepted = 0
        self.latency = 0.0  # seconds added to every chunk, each way
        self.hung_by_marker = threading.Event()  # set when hang_after's marker went through
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop, "tcp-proxy-accept")

    # ---- switches ---------------------------------------------------------------------------------------------
    def hang(self) -> None:
        """Stop forwarding: hold every byte and every new connection; close nothing."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, starting with what was held."""
        with self._lock:
            self._marker = None
        self._flowing.set()

    def hang_after(self, marker: bytes) -> None:
        """Hang right after forwarding the first client chunk that contains ``marker`` (a one-shot trigger)."""
        with self._lock:
            self._marker = marker
        self.hung_by_marker.clear()

    @property
    def hung(self) -> bool:
        """True while nothing is forwarded."""
        return not self._flowing.is_set()

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's (the password kept)."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    # ---- life -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every thread and close every socket (held bytes are dropped)."""
        self._stop.set()
        self._flowing.set()  # wake whatever waits to forward, so that it sees the stop flag
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for s in (*sockets, self._listener):
            _close(s)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- plumbing ---------------------------------------------------------------------------------------------
    def _spawn(self, target, name: str, *args: object) -> None:  # noqa: ANN001
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _wait_flowing(self) -> bool:
        """Block while hung; False once the proxy is closing."""
        while not self._flowing.wait(_POLL):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _accept_loop(self) -> None:
        while self._wait_flowing():
            try:
                ready, _, _ = select.select([self._listener], [], [], _POLL)
            except (OSError, ValueError):  # closed under us
                return
            if not ready or not self._flowing.is_set():
                continue
            try:
                client, _ = self._listener.accept()
            except BlockingIOError:
                continue
            except OSError:
                return
            client.setblocking(True)
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._stop.is_set():
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
                self.accepted += 1
            pair = (client, server)
            self._spawn(self._pump, "tcp-proxy-up", client, server, True, pair)
            self._spawn(self._pump, "tcp-proxy-down", server, client, False, pair)

    def _pump(
        self, src: socket.socket, dst: socket.socket, upstream: bool, pair: tuple[socket.socket, ...]
    ) -> None:
        try:
            while self._wait_flowing():
                try:
                    ready, _, _ = select.select([src], [], [], _POLL)
                except (OSError, ValueError):
                    break
                if not ready or not self._flowing.is_set():
                    continue  # hung between select and now: leave the bytes in the kernel
                data = src.recv(_CHUNK)
                if not data:
                    break
                if self.latency > 0 and self._stop.wait(self.latency):
                    break
                if upstream and self._trigger(data):
                    dst.sendall(data)  # the server gets this chunk; from now on nothing else moves
                    continue
                if not self._wait_flowing():  # hung after reading: hold this chunk until resumed
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for s in pair:
                    self._sockets.discard(s)
            for s in pair:
                _close(s)

    def _trigger(self, data: bytes) -> bool:
        """True (and hung, before the chunk is sent on) when ``data`` carries the hang_after marker."""
        with self._lock:
            if self._marker is None or self._marker not in data or not self._flowing.is_set():
                return False
            self._marker = None
            self._flowing.clear()
        self.hung_by_marker.set()
        return True


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
