"""The service proxy on its own: balancing, affinity, retries, reprogramming, half-close."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from orchestra._clock import ManualClock
from orchestra.net._ipam import LoopbackBlock
from orchestra.net.l4 import ServiceProxy
from orchestra.net.l4._forward import _Conn, _Direction

from ._helpers import TIMEOUT, UdpClient, addr, ask, block, servers, udp_servers

pytestmark = pytest.mark.anyio

PORT = 8080


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def net() -> Iterator[LoopbackBlock]:
    with block() as b:
        yield b


async def test_round_robin_across_backends(net: LoopbackBlock) -> None:
    hosts = [addr(net, n) for n in (2, 3, 4)]
    vip = addr(net, 100)
    proxy = ServiceProxy()
    async with servers(hosts, PORT):
        await proxy.set_backends((vip, 80), [(h, PORT) for h in hosts])
        try:
            got = [await ask(vip, 80) for _ in range(6)]
        finally:
            await proxy.close()
    assert got == hosts + hosts


async def test_reprogramming_keeps_established_connections(net: LoopbackBlock) -> None:
    a, b = addr(net, 2), addr(net, 3)
    vip = addr(net, 100)
    proxy = ServiceProxy()
    async with servers([a, b], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(vip, 80)
                assert (await reader.readline()).decode().strip() == a
                await proxy.set_backends((vip, 80), [(b, PORT)])
                assert await ask(vip, 80) == b
                writer.write(b"still here\n")  # the old connection still reaches a
                assert await reader.readline() == b"still here\n"
                writer.close()
                await proxy.set_backends((vip, 80), [(a, PORT), (b, PORT)])
                assert sorted([await ask(vip, 80), await ask(vip, 80)]) == [a, b]
        finally:
            await proxy.close()


async def test_client_ip_affinity_sticks_until_timeout(net: LoopbackBlock) -> None:
    hosts = [addr(net, n) for n in (2, 3, 4)]
    vip = addr(net, 100)
    clock = ManualClock()
    proxy = ServiceProxy(clock=clock)
    c1, c2 = addr(net, 50), addr(net, 51)
    async with servers(hosts, PORT):
        await proxy.set_backends((vip, 80), [(h, PORT) for h in hosts], affinity_timeout=30)
        try:
            first = await ask(vip, 80, local=c1)
            assert {await ask(vip, 80, local=c1) for _ in range(4)} == {first}
            other = await ask(vip, 80, local=c2)
            assert other != first  # a new client gets the next backend
            await clock.advance(29)  # each connection renews the stickiness
            assert await ask(vip, 80, local=c1) == first
            await clock.advance(31)
            assert await ask(vip, 80, local=c1) != first
            # Without affinity, the same client is spread again.
            await proxy.set_backends((vip, 80), [(h, PORT) for h in hosts])
            assert len({await ask(vip, 80, local=c1) for _ in range(3)}) == 3
        finally:
            await proxy.close()


async def test_refused_backend_is_retried_before_any_byte(net: LoopbackBlock) -> None:
    alive, dead1, dead2 = addr(net, 2), addr(net, 3), addr(net, 4)
    vip = addr(net, 100)
    proxy = ServiceProxy()
    async with servers([alive], PORT) as (server,):
        await proxy.set_backends((vip, 80), [(dead1, PORT), (alive, PORT), (dead2, PORT)])
        try:
            for _ in range(6):
                assert await ask(vip, 80) == alive
        finally:
            await proxy.close()
    assert server.accepted == 6


async def test_no_backend_resets_the_client(net: LoopbackBlock) -> None:
    vip = addr(net, 100)
    proxy = ServiceProxy()
    await proxy.set_backends((vip, 80), [(addr(net, 3), PORT)])  # nothing listens there
    try:
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(vip, 80)
                try:
                    await reader.readexactly(1)
                finally:
                    writer.close()
        await proxy.set_backends((vip, 80), [])
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(vip, 80)
                try:
                    await reader.readexactly(1)
                finally:
                    writer.close()
    finally:
        await proxy.close()


async def test_half_close_is_propagated(net: LoopbackBlock) -> None:
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy()
    async with servers([a], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(vip, 80)
                writer.write(b"x" * 100_000)
                writer.write_eof()  # the backend echoes until EOF, then ends its side
                data = await reader.read()  # until the backend's EOF
                writer.close()
        finally:
            await proxy.close()
    assert data == f"{a}\n".encode() + b"x" * 100_000


async def test_a_closed_connection_is_freed_without_the_garbage_collector(
        net: LoopbackBlock) -> None:
    """A connection's objects hold no reference cycle: reference counting frees them as
    it closes, so thousands of short connections give the cyclic collector no work."""
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy()
    async with servers([a], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        gc.collect()
        gc.disable()
        try:
            before = _proxy_objects()  # (any that another proxy of this process holds)
            for _ in range(20):
                assert await ask(vip, 80) == a
            for _ in range(500):  # each ended as it does in use: its client hung up
                if not proxy.connections:
                    break
                await asyncio.sleep(0.01)
            assert proxy.connections == 0
            await proxy.close()  # (its thread's locals may hold the last one until then)
            left = _proxy_objects() - before
        finally:
            gc.enable()
            await proxy.close()
    assert left == set()


def _proxy_objects() -> set[int]:
    return {id(o) for o in gc.get_objects() if isinstance(o, _Conn | _Direction)}


@pytest.mark.parametrize("splice_threshold", [1 << 16, 1 << 40])
async def test_bulk_transfer_is_intact(net: LoopbackBlock, splice_threshold: int) -> None:
    """Megabytes both ways, in the loop and (past the threshold) in splice threads."""
    a, vip = addr(net, 2), addr(net, 100)
    payload = os.urandom(1 << 20) * 4
    proxy = ServiceProxy(splice_threshold=splice_threshold)
    async with servers([a], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        try:
            async with asyncio.timeout(TIMEOUT * 4):
                reader, writer = await asyncio.open_connection(vip, 80)
                await reader.readline()

                async def send() -> None:
                    writer.write(payload)
                    await writer.drain()
                    writer.write_eof()

                sender = asyncio.ensure_future(send())
                echoed = await reader.read()
                await sender
                writer.close()
        finally:
            await proxy.close()
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()
    assert proxy.connections == 0


async def test_remove_closes_the_listener_only(net: LoopbackBlock) -> None:
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy()
    async with servers([a], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(vip, 80)
                await reader.readline()
                await proxy.remove((vip, 80))
                assert proxy.listening() == []
                with pytest.raises(ConnectionRefusedError):
                    await ask(vip, 80)
                writer.write(b"ping\n")
                assert await reader.readline() == b"ping\n"
                writer.close()
        finally:
            await proxy.close()


async def test_a_connect_right_after_remove_is_refused(net: LoopbackBlock) -> None:
    """``remove`` returns once the address refuses connections, even while the proxy
    thread's batch (whose end closes the socket) goes on: a connect that follows is
    refused, never accepted and then reset."""
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy()
    try:
        await proxy.set_backends((vip, 80), [(a, PORT)])
        engine = proxy._engine
        assert engine is not None
        gate = threading.Event()
        engine.call(gate.wait)  # the proxy thread holds here ...
        removing = asyncio.create_task(proxy.remove((vip, 80)))
        await asyncio.sleep(0)  # ... while remove's command queues behind it
        engine.call(lambda: time.sleep(0.5))  # and this keeps the batch going after it
        gate.set()
        async with asyncio.timeout(TIMEOUT):
            await removing
            s = socket.socket()
            s.setblocking(False)
            try:
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.get_running_loop().sock_connect(s, (vip, 80))
            finally:
                s.close()
    finally:
        await proxy.close()


async def test_close_ends_established_connections(net: LoopbackBlock) -> None:
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy(splice_threshold=1)
    async with servers([a], PORT):
        await proxy.set_backends((vip, 80), [(a, PORT)])
        async with asyncio.timeout(TIMEOUT):
            r1, w1 = await asyncio.open_connection(vip, 80)
            await r1.readline()  # this one has moved to splice threads
            r2, w2 = await asyncio.open_connection(vip, 80)
            await asyncio.sleep(0.05)
            await proxy.close()
            assert await r1.read() == b""
            with contextlib.suppress(ConnectionError):
                assert await r2.read() in (b"", f"{a}\n".encode())
            w1.close()
            w2.close()
    assert proxy.connections == 0


async def test_a_taken_address_raises(net: LoopbackBlock) -> None:
    vip = addr(net, 101)
    s = socket.socket()
    s.bind((vip, 80))
    s.listen()
    proxy = ServiceProxy()
    try:
        with pytest.raises(OSError):
            await proxy.set_backends((vip, 80), [])
    finally:
        s.close()
        await proxy.close()


async def test_a_backend_that_never_answers_is_left_after_the_connect_timeout(
        net: LoopbackBlock) -> None:
    """A full accept queue drops SYNs: the connect hangs until the timeout, then the
    next backend takes the connection."""
    stuck, alive, vip = addr(net, 2), addr(net, 3), addr(net, 100)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier tests' TIME_WAITs
    lsock.bind((stuck, PORT))
    lsock.listen(0)
    fillers = []
    for _ in range(3):  # past the queue's room: later SYNs are dropped
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex((stuck, PORT))
        fillers.append(f)
    await asyncio.sleep(0.05)
    proxy = ServiceProxy(connect_timeout=0.3)
    try:
        async with servers([alive], PORT):
            await proxy.set_backends((vip, 80), [(stuck, PORT), (alive, PORT)])
            try:
                assert await ask(vip, 80) == alive
                assert await ask(vip, 80) == alive
            finally:
                await proxy.close()
    finally:
        for f in fillers:
            f.close()
        lsock.close()


async def test_udp_flows_round_robin_and_answers_come_back(net: LoopbackBlock) -> None:
    hosts = [addr(net, n) for n in (2, 3)]
    vip = addr(net, 100)
    proxy = ServiceProxy()
    async with udp_servers(hosts, 5353):
        try:
            await proxy.set_backends((vip, 53), [(h, 5353) for h in hosts], protocol="UDP")
            assert proxy.listening("UDP") == [(vip, 53)] and proxy.listening() == []
            clients = [await UdpClient.open(vip, 53) for _ in range(4)]
            answers = [await c.ask(b"q1") for c in clients]
            # One flow per client address, round robin across the backends.
            assert sorted(a.split(b":")[0].decode() for a in answers if a) == sorted(hosts * 2)
            # A client's later datagrams stay on its flow's backend.
            for c, first in zip(clients, answers, strict=True):
                assert first is not None
                assert await c.ask(b"q2") == first.split(b":")[0] + b":q2"
            # Reprogrammed: flows to a backend that left pick again.
            await proxy.set_backends((vip, 53), [(hosts[1], 5353)], protocol="UDP")
            for c in clients:
                assert await c.ask(b"q3") == f"{hosts[1]}:q3".encode()
            await proxy.remove((vip, 53), protocol="UDP")
            assert proxy.listening("UDP") == []
            assert await clients[0].ask(b"q4", wait=0.3) is None
            for c in clients:
                c.close()
        finally:
            await proxy.close()


async def test_udp_and_tcp_listen_on_the_same_address(net: LoopbackBlock) -> None:
    a, vip = addr(net, 2), addr(net, 100)
    proxy = ServiceProxy()
    async with servers([a], PORT), udp_servers([a], PORT):
        try:
            await proxy.set_backends((vip, 80), [(a, PORT)])
            await proxy.set_backends((vip, 80), [(a, PORT)], protocol="UDP")
            assert await ask(vip, 80) == a
            client = await UdpClient.open(vip, 80)
            assert await client.ask(b"hi") == f"{a}:hi".encode()
            client.close()
            with pytest.raises(ValueError, match="TCP and UDP"):
                await proxy.set_backends((vip, 81), [(a, PORT)], protocol="SCTP")
        finally:
            await proxy.close()
        assert proxy.connections == 0


async def test_udp_without_backends_drops_and_a_refused_flow_picks_again(
        net: LoopbackBlock) -> None:
    a, gone, vip = addr(net, 2), addr(net, 3), addr(net, 100)
    proxy = ServiceProxy()
    async with udp_servers([a], 5353):
        try:
            await proxy.set_backends((vip, 53), [], protocol="UDP")
            client = await UdpClient.open(vip, 53)
            assert await client.ask(b"x", wait=0.3) is None  # no backend: dropped
            # A backend with nothing listening: the first datagram is lost (ICMP port
            # unreachable closes the flow), a later one picks the live backend.
            await proxy.set_backends((vip, 53), [(gone, 5353), (a, 5353)], protocol="UDP")
            got = None
            for _ in range(4):
                got = await client.ask(b"y", wait=0.3)
                if got is not None:
                    break
            assert got == f"{a}:y".encode()
            client.close()
        finally:
            await proxy.close()


async def test_a_removed_listeners_address_is_free_when_remove_returns(
        net: LoopbackBlock) -> None:
    # The proxy thread closes sockets after each batch of events; remove() must not
    # return before the listener's is closed, or binding its address (the L7 listener
    # taking a ClusterIP over) fails with EADDRINUSE. A busy thread (a GIL-hungry
    # neighbour) widens the window; the loop is bounded.
    proxy = ServiceProxy(clock=ManualClock())
    listen = (addr(net, 100), PORT)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(2000))

    neighbour = threading.Thread(target=busy, daemon=True)
    neighbour.start()
    try:
        for _ in range(200):
            await proxy.set_backends(listen, [(addr(net, 2), PORT)])
            await proxy.remove(listen)
            with contextlib.closing(socket.socket()) as s:
                s.bind(listen)
    finally:
        stop.set()
        neighbour.join()
        await proxy.close()


async def test_a_cancelled_command_does_not_stop_the_proxy_thread(
        net: LoopbackBlock) -> None:
    # A caller that gives up (its task cancelled while waiting for remove()) cancels the
    # command's future; the answer then has nowhere to go, and the thread carries on.
    proxy = ServiceProxy(clock=ManualClock())
    listen = (addr(net, 100), PORT)
    try:
        await proxy.set_backends(listen, [(addr(net, 2), PORT)])
        engine = proxy._engine
        assert engine is not None
        fut = engine.call(lambda: time.sleep(0.05))
        assert fut.cancel()
        await asyncio.sleep(0.2)
        assert engine.thread.is_alive()
        await proxy.remove(listen)  # still answered
        assert proxy.bound_address(listen) is None
    finally:
        await proxy.close()
