"""Loopback servers and clients for the network tests: all asyncio, all bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from orchestra.net._ipam import LoopbackBlock, claim_loopback_block

TIMEOUT = 5.0


class NamedServer:
    """Answers each connection with ``<name>\\n`` then echoes until EOF."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.accepted = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            writer.write(f"{self.name}\n".encode())
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def start(self, host: str, port: int) -> NamedServer:
        self.server = await asyncio.start_server(self._handle, host, port)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def servers(hosts: list[str], port: int) -> AsyncIterator[list[NamedServer]]:
    started = [await NamedServer(h).start(h, port) for h in hosts]
    try:
        yield started
    finally:
        for s in started:
            await s.close()


async def ask(host: str, port: int, *, local: str | None = None) -> str:
    """Connect, read the name line, close."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection(
            host, port, local_addr=(local, 0) if local else None)
        try:
            return (await reader.readline()).decode().strip()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.contextmanager
def block() -> Iterator[LoopbackBlock]:
    b = claim_loopback_block()
    try:
        yield b
    finally:
        b.release()


def addr(b: LoopbackBlock, n: int) -> str:
    return f"127.{b.octet}.{n // 256}.{n % 256}"


class _UdpEcho(asyncio.DatagramProtocol):
    """Answers each datagram with ``<name>:<datagram>``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)


@contextlib.asynccontextmanager
async def udp_servers(hosts: list[str], port: int) -> AsyncIterator[None]:
    """A UDP echo server on ``host:port`` for each host, answering ``<host>:<datagram>``."""
    loop = asyncio.get_running_loop()
    transports = []
    try:
        for h in hosts:
            t, _ = await loop.create_datagram_endpoint(lambda h=h: _UdpEcho(h),  # type: ignore[misc]
                                                       local_addr=(h, port))
            transports.append(t)
        yield
    finally:
        for t in transports:
            t.close()


class UdpClient(asyncio.DatagramProtocol):
    """One client socket (one source port: one proxy flow); ``ask`` sends and awaits the
    answer, or None after ``wait`` seconds."""

    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass

    @classmethod
    async def open(cls, host: str, port: int, local: str = "127.0.0.1") -> UdpClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(cls, local_addr=(local, 0),
                                                        remote_addr=(host, port))
        return client

    async def ask(self, data: bytes, wait: float = TIMEOUT) -> bytes | None:
        assert self.transport is not None
        self.transport.sendto(data)
        try:
            return await asyncio.wait_for(self.answers.get(), wait)
        except TimeoutError:
            return None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
