"""The cluster DNS server: asyncio UDP and TCP on one address and port.

Questions inside the cluster zone are answered at once, without an await, from the
current :class:`~orchestra.net.dns._index.DnsIndex` (one attribute, replaced whole by
:meth:`DnsServer.swap`). Every other question is forwarded to the upstream resolvers (the
host's, from ``/etc/resolv.conf``), one after another within ``forward_timeout`` seconds
in all; when none answers in time the client gets SERVFAIL, promptly, rather than
waiting out its own timeout. Reverse names (``in-addr.arpa``, ``ip6.arpa``) are answered
when the index has them and forwarded otherwise, like CoreDNS' ``fallthrough``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode

from orchestra.net.dns._answer import answer, error_response, in_zone
from orchestra.net.dns._index import DnsIndex

__all__ = ["DnsServer", "host_resolvers"]

log = logging.getLogger("orchestra.net.dns")

FORWARD_TIMEOUT = 2.0
_REVERSE = ("in-addr.arpa.", "ip6.arpa.")


def host_resolvers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The ``nameserver`` lines of the host's resolv.conf, as (address, 53)."""
    out: list[tuple[str, int]] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1].split("%")[0], 53))
    except OSError:
        pass
    return out


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._on_udp(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from clients gone away
        pass


class DnsServer:
    """Serves :attr:`index`; see the module docstring for what it answers."""

    def __init__(self, index: DnsIndex, *, upstreams: Sequence[tuple[str, int]] | None = None,
                 forward_timeout: float = FORWARD_TIMEOUT) -> None:
        self.index = index
        self.upstreams = list(host_resolvers() if upstreams is None else upstreams)
        self.forward_timeout = forward_timeout
        self.address: tuple[str, int] | None = None
        self._udp: _Udp | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.queries = 0

    def swap(self, index: DnsIndex) -> None:
        """Serve ``index`` from the next query on (one assignment: atomic)."""
        self.index = index

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, host: str, ports: Sequence[int] = (53, 0)) -> tuple[str, int]:
        """Bind UDP and TCP on ``host`` at the first of ``ports`` that both can have
        (0: a free port); returns the address."""
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for want in ports:
            for _ in range(20 if want == 0 else 1):
                udp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    socket.SOCK_DGRAM)
                try:
                    udp.bind((host, want))
                    port = udp.getsockname()[1]
                    transport, proto = await loop.create_datagram_endpoint(
                        lambda: _Udp(self), sock=udp)
                except OSError as e:
                    udp.close()
                    last = e
                    break
                try:
                    self._tcp = await asyncio.start_server(self._on_tcp, host, port,
                                                           reuse_address=True)
                except OSError as e:
                    transport.close()
                    last = e
                    continue
                self._udp = proto
                self.address = (host, port)
                self.upstreams = [u for u in self.upstreams if u != (host, port)]
                return self.address
        raise OSError(f"cluster DNS: cannot bind {host} on ports {list(ports)}: {last}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 1)
        self._udp = self._tcp = None

    # -- queries ------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("cluster DNS: query failed", exc_info=task.exception())

    def _on_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.handle(data)
        if isinstance(reply, bytes):
            self._send_udp(reply, addr)
        elif reply is not None:
            self._spawn(self._forward_udp(reply, addr))

    def _send_udp(self, wire: bytes, addr: tuple[str, int]) -> None:
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.sendto(wire, addr)

    async def _forward_udp(self, query: dns.message.Message, addr: tuple[str, int]) -> None:
        response = await self.forward(query)
        self._send_udp(_to_wire(response, query, udp=True), addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readexactly(2)
                    data = await reader.readexactly(struct.unpack("!H", head)[0])
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                reply = self.handle(data, udp=False)
                if reply is None:
                    return
                if not isinstance(reply, bytes):
                    reply = _to_wire(await self.forward(reply), reply, udp=False)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        finally:
            writer.close()

    def handle(self, data: bytes, *, udp: bool = True) -> bytes | dns.message.Message | None:
        """The wire answer to one query, the parsed query when it must be forwarded, or
        None for something that is not a query at all."""
        self.queries += 1
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return _formerr(data)
        if query.flags & dns.flags.QR:
            return None
        if query.opcode() != dns.opcode.QUERY:
            return _to_wire(error_response(query, dns.rcode.NOTIMP), query, udp=udp)
        if len(query.question) != 1:
            return _to_wire(error_response(query, dns.rcode.FORMERR), query, udp=udp)
        index = self.index
        qname = query.question[0].name.to_text().lower()
        if in_zone(qname, index.zone):
            return _to_wire(answer(query, index), query, udp=udp)
        if qname.endswith(_REVERSE) and qname in index.records:
            return _to_wire(answer(query, index), query, udp=udp)
        return query

    async def forward(self, query: dns.message.Message) -> dns.message.Message:
        """The upstreams' answer, or SERVFAIL when none answers within the timeout."""
        deadline = time.monotonic() + self.forward_timeout
        for host, port in self.upstreams:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, host, timeout=left, port=port)
            except (dns.exception.DNSException, OSError, EOFError) as e:
                log.debug("cluster DNS: upstream %s:%d: %s", host, port, e)
                continue
            response.id = query.id
            return response
        return error_response(query, dns.rcode.SERVFAIL)


def _to_wire(response: dns.message.Message, query: dns.message.Message, *, udp: bool) -> bytes:
    if not udp:
        return response.to_wire()
    limit = max(512, query.payload) if query.edns >= 0 else 512
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        truncated = dns.message.make_response(query)
        truncated.flags = response.flags | dns.flags.TC
        truncated.set_rcode(response.rcode())
        return truncated.to_wire(max_size=limit)


def _formerr(data: bytes) -> bytes | None:
    """FORMERR for a message with at least a header; nothing for garbage shorter."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack("!HH", data[:4])
    if flags & 0x8000:
        return None
    return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x7800) | 0x0100 | 1, 0, 0, 0, 0)
