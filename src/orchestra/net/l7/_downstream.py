"""The client side of the HTTP data plane: one protocol object per client connection.

The request parser (httptools, i.e. llhttp) frames requests by Content-Length or
chunked encoding; each request becomes an :class:`~orchestra.net.l7._exchange.Exchange`
queued on its connection. Pipelining is safe because exchanges run strictly one after
another: a request parsed while an earlier one is still answered waits in the queue
(its body buffered up to a bound, beyond which reading pauses), so responses leave in
request order.

Reading from the client pauses for any of several reasons at once (the backend cannot
take more, a queued request's buffer is full, an upgrade awaits the backend's answer);
it resumes only when none is left.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from orchestra.net.l7._exchange import Exchange

if TYPE_CHECKING:
    from orchestra.net.l7._proxy import Listener
    from orchestra.net.l7._state import ExchangeState

__all__ = ["Downstream"]

_BAD_REQUEST = (b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n"
                b"content-type: text/plain\r\nconnection: close\r\n\r\nBad Request")


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


class Downstream(asyncio.Protocol):
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.t: asyncio.Transport | None = None
        self.client_ip = ""
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Exchange] = deque()
        self.cur: Exchange | None = None
        self.paused: set[str] = set()
        self.write_paused = False
        self.tunnel: asyncio.Transport | None = None
        self.closing = False
        self.corked: list[bytes] | None = None  # writes held until uncork()

    # -- asyncio ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # (uvloop's is no subclass of it)
        peer = transport.get_extra_info("peername")
        self.client_ip = str(peer[0]) if peer else ""
        self.listener.conns.add(self)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            rest = data[int(e.args[0]):]
            if self.queue:
                self.queue[-1].upgrade_rest = rest
                self.pause("upgrade")
            else:
                self.close()
        except httptools.HttpParserError:
            if self.queue:
                self.close()
            elif self.t is not None:
                self.t.write(_BAD_REQUEST)
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.listener.conns.discard(self)
        if self.listener.draining and not self.listener.conns:
            self.listener.drained.set()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        while self.queue:
            self.queue.popleft().client_lost()
        if self.cur is not None:
            self.cur.client_lost()
            self.cur = None

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.queue[0] if self.queue else None
        if ex is not None and ex.up is not None and ex.up.t is not None:
            ex.up.t.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.queue[0] if self.queue else None
        if ex is not None and ex.up is not None and ex.up.t is not None:
            ex.up.t.resume_reading()

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.cur = Exchange(self)

    def on_url(self, url: bytes) -> None:
        if self.cur is not None:
            self.cur.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.cur is not None:
            self.cur.headers.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.cur
        if ex is None:
            return
        p = self.parser
        method = p.get_method()
        ex.method = _METHODS.get(method) or method.decode("latin-1")
        ex.version = p.get_http_version()
        ex.keep_alive = p.should_keep_alive()
        ex.upgrade = p.should_upgrade()
        self.queue.append(ex)
        if len(self.queue) == 1:
            ex.start()

    def on_body(self, body: bytes) -> None:
        if self.cur is not None:
            self.cur.request_body(body)

    def on_message_complete(self) -> None:
        ex, self.cur = self.cur, None
        if ex is not None:
            ex.request_end()

    # -- control ----------------------------------------------------------------------

    def pause(self, reason: str) -> None:
        if not self.paused and self.t is not None:
            self.t.pause_reading()
        self.paused.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self.paused:
            self.paused.discard(reason)
            if not self.paused and self.t is not None and not self.closing:
                self.t.resume_reading()

    def write(self, data: bytes) -> None:
        if self.corked is not None:
            self.corked.append(data)
        elif self.t is not None and not self.closing:
            self.t.write(data)

    def cork(self) -> None:
        """Hold writes until :meth:`uncork`: a response head and the body bytes that
        arrived with it leave in one send."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        out, self.corked = self.corked, None
        if out and self.t is not None and not self.closing:
            self.t.write(out[0] if len(out) == 1 else b"".join(out))

    def exchange_done(self, ex: ExchangeState) -> None:
        """``ex`` answered and its request read: close, or go on with the next one."""
        if self.queue and self.queue[0] is ex:
            self.queue.popleft()
        if ex.close_after or self.closing:
            self.close()
            return
        self.resume("buffer")
        if self.queue:
            self.queue[0].start()
        elif self.listener.draining:
            self.close()

    def close(self) -> None:
        if self.t is not None and not self.closing:
            self.uncork()
            self.closing = True
            self.t.close()

    def drain(self) -> None:
        """Stop after the current exchange (the listener is going away)."""
        if not self.queue and self.cur is None:
            self.close()
