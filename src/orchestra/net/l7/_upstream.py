"""The backend side of the HTTP data plane: upstream connections and their pool.

An upstream connection carries one exchange at a time; when the response ended cleanly,
the request was sent whole and the backend allows keep-alive, it goes back to the pool
of its backend address. Pooled connections to a backend that left the routing table are
closed when the table changes (draining), and a connection the backend closed while
idle leaves the pool at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools

if TYPE_CHECKING:
    from orchestra.net.l7._state import ExchangeState
    from orchestra.net.l7._table import Backend

__all__ = ["Pool", "Upstream"]


class Upstream(asyncio.Protocol):
    """One connection to a backend; its parser's callbacks go to the attached exchange."""

    def __init__(self, pool: Pool, backend: Backend) -> None:
        self.pool = pool
        self.backend = backend
        self.t: asyncio.Transport | None = None
        self.ex: ExchangeState | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.reused = False
        self.served = 0  # requests written on this connection
        self.got_bytes = False
        self.tunnel: asyncio.Transport | None = None  # after an Upgrade: the client
        self.broken = False  # the parser may not be reused (HEAD, errors)
        self.closed = False

    # -- asyncio ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # (uvloop's is no subclass of it)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        ex = self.ex
        if ex is None:  # unsolicited bytes on an idle connection: it is unusable
            self.close()
            return
        self.got_bytes = True
        down = ex.down
        down.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            if self.ex is not None:
                self.ex.upgraded(self, data[int(e.args[0]):])
        except httptools.HttpParserError:
            self.broken = True
            if self.ex is not None:
                self.ex.upstream_lost(self, "protocol error")
            self.close()
        finally:
            down.uncork()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        ex, self.ex = self.ex, None
        if ex is not None:
            ex.upstream_lost(self, "connection termination")

    def pause_writing(self) -> None:
        if self.ex is not None:
            self.ex.down.pause("upstream")

    def resume_writing(self) -> None:
        if self.ex is not None:
            self.ex.down.resume("upstream")

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = []
        self.reason = b""

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.ex is not None:
            self.ex.response_head(self, self.parser.get_status_code(), self.reason,
                                  self.headers, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.ex is not None:
            self.ex.response_body(body)

    def on_message_complete(self) -> None:
        if self.ex is not None:
            self.ex.response_end(self)

    # -- control ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.t is not None and not self.closed:
            self.t.write(data)

    def close(self) -> None:
        self.ex = None
        if self.t is not None and not self.closed:
            self.closed = True
            self.t.close()
            self.pool.discard(self)


class Pool:
    """Idle keep-alive connections per backend address (most recently used first)."""

    def __init__(self, max_idle_per_backend: int = 64) -> None:
        self.idle: dict[Backend, list[Upstream]] = {}
        self.max_idle = max_idle_per_backend

    def take(self, backend: Backend) -> Upstream | None:
        conns = self.idle.get(backend)
        while conns:
            up = conns.pop()
            if not up.closed and up.t is not None and not up.t.is_closing():
                up.reused = True
                up.got_bytes = False
                return up
        return None

    def give(self, up: Upstream) -> None:
        up.ex = None
        conns = self.idle.setdefault(up.backend, [])
        if len(conns) >= self.max_idle or up.broken:
            up.close()
            return
        conns.append(up)

    def discard(self, up: Upstream) -> None:
        conns = self.idle.get(up.backend)
        if conns and up in conns:
            conns.remove(up)
            if not conns:
                del self.idle[up.backend]

    def drain(self, keep: frozenset[Backend] | None) -> None:
        """Close idle connections to backends not in ``keep`` (all when None)."""
        for backend in list(self.idle):
            if keep is None or backend not in keep:
                for up in self.idle.pop(backend):
                    up.close()
