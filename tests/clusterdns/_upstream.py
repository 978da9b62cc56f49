"""A fake upstream DNS server on a 127.0.0.x address for the forwarding tests (this
machine has no internet: nothing may depend on outside answers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dns.message
import dns.rcode
import dns.rrset


class _Answering(asyncio.DatagramProtocol):
    def __init__(self, records: dict[str, str], silent: bool) -> None:
        self.records = records
        self.silent = silent
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text().lower()
        self.seen.append(name)
        if self.silent:
            return
        response = dns.message.make_response(query)
        if name in self.records:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A",
                                                       self.records[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def fake_upstream(host: str, records: dict[str, str] | None = None, *,
                        silent: bool = False) -> AsyncIterator[tuple[tuple[str, int],
                                                                     _Answering]]:
    """A UDP DNS server on ``host`` (a free port) answering ``records`` (absolute
    name -> IPv4) and NXDOMAIN otherwise; ``silent`` never answers at all."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Answering(records or {}, silent), sock=sock)
    try:
        yield sock.getsockname(), proto
    finally:
        transport.close()
