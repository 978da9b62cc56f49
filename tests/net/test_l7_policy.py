"""The L7 data plane's resilience, Envoy's way: retries and mirrors of requests with a
body (kept up to the buffer limit), retry back-off, the connection pool's pending queue
and limits, the connect timeout, and outlier detection timed by an injected clock."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import pytest

import orchestra as oc
from orchestra.net.l7 import (
    Cluster,
    ClusterPolicy,
    HttpProxy,
    Match,
    Mirror,
    Retry,
    Route,
    RouteTable,
    VirtualHost,
    WeightedCluster,
)
from orchestra.net.l7._policy import backoff_delay

from ._http import backends, get, version_of

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024  # the proxy's body buffer in these tests


@pytest.fixture
async def proxy() -> AsyncIterator[HttpProxy]:
    p = HttpProxy(connect_timeout=2.0, buffer_limit=LIMIT)
    try:
        yield p
    finally:
        await p.close()


class Recorder:
    """A tiny HTTP/1.1 backend (asyncio, in the test's loop) that reads each request's
    whole body (Content-Length or chunked), records it, and answers ``status(i)`` for
    the i-th request after ``delay`` seconds."""

    def __init__(self, status: Callable[[int], int] = lambda i: 200, delay: float = 0.0):
        self.status = status
        self.delay = delay
        self.bodies: list[tuple[str, bytes]] = []
        self.times: list[float] = []
        self.active = 0
        self.peak = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                hdrs = {k.strip().lower(): v.strip() for k, _, v in
                        (line.partition(":") for line in lines[1:] if line)}
                body = b""
                if "chunked" in hdrs.get("transfer-encoding", ""):
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        body += await reader.readexactly(size + 2)
                        body = body[:-2]
                        if size == 0:
                            break
                else:
                    body = await reader.readexactly(int(hdrs.get("content-length", "0")))
                i = len(self.bodies)
                self.bodies.append((path, body))
                self.times.append(time.monotonic())
                self.active += 1
                self.peak = max(self.peak, self.active)
                try:
                    if self.delay:
                        await asyncio.sleep(self.delay)
                finally:
                    self.active -= 1
                code = self.status(i)
                answer = b"%d" % code
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n%b"
                             % (code, len(answer), answer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[tuple[str, int]]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self.server.sockets[0].getsockname()[:2]
        finally:
            for w in self.writers:
                w.close()
            self.server.close()


def table(*routes: Route) -> RouteTable:
    return RouteTable((VirtualHost("all", ("*",), routes),))


def route(name: str, *addrs: tuple[str, int], policy: ClusterPolicy | None = None,
          **kw: object) -> Route:
    return Route(name=name, matches=(Match(),),
                 destinations=(WeightedCluster(Cluster(name, tuple(addrs), policy)),),
                 **kw)  # type: ignore[arg-type]


def post(addr: tuple[str, int], body: bytes, *, chunked: bool = False,
         conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    c = conn or http.client.HTTPConnection(*addr, timeout=10)
    try:
        if chunked:
            parts = [body[i:i + 4096] for i in range(0, len(body), 4096)]
            c.request("POST", "/up", body=iter(parts), encode_chunked=True,
                      headers={"Transfer-Encoding": "chunked"})
        else:
            c.request("POST", "/up", body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        if own:
            c.close()


async def test_retries_resend_a_body_kept_within_the_buffer_limit(proxy: HttpProxy) -> None:
    rec = Recorder(status=lambda i: 503 if i % 2 == 0 else 200)  # every other fails
    async with rec.running() as backend:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", backend, retry=Retry(attempts=2, retry_on=("5xx",),
                                            backoff_base=0.001))))
        small, chunked = random.randbytes(10_000), random.randbytes(30_000)
        assert await asyncio.to_thread(post, addr, small) == (200, b"200")
        assert await asyncio.to_thread(post, addr, chunked, chunked=True) == (200, b"200")
        assert [b for _, b in rec.bodies] == [small, small, chunked, chunked]
        # a body beyond the buffer: no retry, the failure passes through
        rec.bodies.clear()
        big = random.randbytes(LIMIT * 3)
        assert await asyncio.to_thread(post, addr, big) == (503, b"503")
        assert [b for _, b in rec.bodies] == [big]
        assert await asyncio.to_thread(post, addr, big, chunked=True) == (200, b"200")
        assert len(rec.bodies) == 2  # streamed whole, once
    assert proxy.traffic_stats()["r"]["codes"] == {200: 3, 503: 1}
    flags = [line.split('" ')[1].split()[:2] for line in proxy.access_log()]
    assert flags == [["200", "-"], ["200", "-"], ["503", "-"], ["200", "-"]]


async def test_retries_that_run_out_flag_urx(proxy: HttpProxy) -> None:
    rec = Recorder(status=lambda i: 503)
    async with rec.running() as backend:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", backend, retry=Retry(attempts=2, retry_on=("5xx",),
                                            backoff_base=0.001))))
        assert (await asyncio.to_thread(get, addr, "/"))[0] == 503
    assert len(rec.bodies) == 3  # the try and two retries
    (line,) = proxy.access_log()
    assert line.split('" ')[1].split()[:2] == ["503", "URX"]


async def test_max_retries_caps_the_clusters_outstanding_retries(proxy: HttpProxy) -> None:
    rec = Recorder(status=lambda i: 503 if i % 2 == 0 else 200)
    async with rec.running() as backend:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", backend, policy=ClusterPolicy(max_retries=0),
                  retry=Retry(attempts=2, retry_on=("5xx",), backoff_base=0.001))))
        got = [await asyncio.to_thread(get, addr, "/") for _ in range(6)]
    assert [s for s, _, _ in got] == [503, 200] * 3  # nothing retried


async def test_an_overloaded_answer_is_not_retried(proxy: HttpProxy) -> None:
    served = [0]

    async def overloaded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        served[0] += 1
        writer.write(b"HTTP/1.1 503 X\r\nx-envoy-overloaded: true\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(overloaded, "127.0.0.1", 0)
    try:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", server.sockets[0].getsockname()[:2],
                  retry=Retry(attempts=2, retry_on=("5xx",), backoff_base=0.001))))
        assert (await asyncio.to_thread(get, addr, "/"))[0] == 503
    finally:
        server.close()
    assert served == [1]


async def test_mirrors_get_the_body_unless_it_outgrew_the_buffer(proxy: HttpProxy) -> None:
    shadow = Recorder(status=lambda i: 500)
    async with shadow.running() as shadow_addr:
        with backends("v1") as (a,):
            addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
                route("m", a, mirrors=(Mirror(Cluster("shadow", (shadow_addr,))),))))
            small, big = random.randbytes(20_000), random.randbytes(LIMIT + 1)
            sentinel = random.randbytes(100)
            for body, chunked in ((small, False), (small, True), (big, False),
                                  (sentinel, False)):
                status, answer = await asyncio.to_thread(post, addr, body, chunked=chunked)
                assert status == 200 and version_of(answer) == "v1"
                assert hashlib.sha256(body).hexdigest() in answer.decode()
            for _ in range(200):
                if len(shadow.bodies) >= 3:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
    assert [b for _, b in shadow.bodies] == [small, small, sentinel]


def test_back_off_is_envoys_fully_jittered_exponential() -> None:
    base, n = 0.025, 4000
    for attempt, top in ((1, 0.025), (2, 0.075), (3, 0.175)):
        got = [backoff_delay(attempt, base) for _ in range(n)]
        assert all(0 <= d < top for d in got)
        mean, sd = top / 2, top / (12 ** 0.5) / n ** 0.5
        assert abs(sum(got) / n - mean) < 6 * sd, attempt
    capped = [backoff_delay(4, base) for _ in range(n)]  # 15 * 25 ms, cut at 250 ms
    share = sum(1 for d in capped if d == 0.25) / n  # P = (375 - 250) / 375
    assert abs(share - 1 / 3) < 6 * ((1 / 3) * (2 / 3) / n) ** 0.5
    assert max(backoff_delay(30, base, 1.0) for _ in range(50)) <= 1.0


async def test_retries_wait_their_back_off_between_tries(proxy: HttpProxy) -> None:
    rec = Recorder(status=lambda i: 503 if i % 2 == 0 else 200)
    async with rec.running() as backend:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", backend, retry=Retry(attempts=1, retry_on=("5xx",),
                                            backoff_base=0.2, backoff_max=0.2))))
        n = 16
        for _ in range(n):
            assert (await asyncio.to_thread(get, addr, "/"))[0] == 200
    gaps = [rec.times[i + 1] - rec.times[i] for i in range(0, 2 * n, 2)]
    # each gap is uniform in [0, 200 ms): their mean is 100 ms +- 14 ms (one sd)
    assert sum(gaps) / n > 0.04, gaps


async def test_pending_queue_beyond_max_connections_then_overflow(proxy: HttpProxy) -> None:
    rec = Recorder(delay=0.8)
    async with rec.running() as backend:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("q", backend, policy=ClusterPolicy(max_connections=2, max_pending=3))))

        def burst(n: int) -> list[tuple[int, bytes]]:
            with ThreadPoolExecutor(n) as pool:
                got = list(pool.map(lambda _: get(addr, "/"), range(n)))
            assert all(h.get("x-envoy-overloaded") == ("true" if s == 503 else None)
                       for s, h, _ in got)
            return [(s, b) for s, _, b in got]

        got = await asyncio.to_thread(burst, 9)
        assert sorted(s for s, _ in got) == [200] * 5 + [503] * 4  # 2 served + 3 queued
        assert {b for s, b in got if s == 503} == {
            b"upstream connect error or disconnect/reset before headers. reset reason: "
            b"overflow"}
        assert rec.peak == 2  # never more than max_connections at the backend
        assert sum(" UO " in line for line in proxy.access_log()) == 4
        await proxy.listen("t", table=table(  # max_requests: no queue, overflow at once
            route("q", backend, policy=ClusterPolicy(max_requests=2))))
        got = await asyncio.to_thread(burst, 5)
        assert sorted(s for s, _ in got) == [200] * 2 + [503] * 3


@pytest.fixture
def silent_backend() -> Iterator[tuple[str, int]]:
    """An address whose SYNs go unanswered: a listener with backlog 0 whose accept
    queue is already full."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(srv.getsockname())
        fillers.append(c)
    time.sleep(0.1)
    try:
        yield srv.getsockname()[:2]
    finally:
        for c in fillers:
            c.close()
        srv.close()


async def test_connect_timeout_of_the_cluster_policy(proxy: HttpProxy,
                                                     silent_backend: tuple[str, int]) -> None:
    proxy.connect_timeout = 60.0
    addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
        route("c", silent_backend, policy=ClusterPolicy(connect_timeout=0.2))))
    status, _, body = await asyncio.to_thread(get, addr, "/", timeout=20)
    assert status == 503 and body.endswith(b"reset reason: connection failure")
    assert any(" UF " in line for line in proxy.access_log())


async def test_outlier_ejection_and_return_follow_the_clock_and_interval() -> None:
    clock = oc.ManualClock()
    proxy = HttpProxy(connect_timeout=2.0, clock=clock)
    bad = Recorder(status=lambda i: 500)
    policy = ClusterPolicy(consecutive_5xx=2, interval=10.0, base_ejection=15.0,
                           max_ejection_percent=100)
    try:
        async with bad.running() as b:
            with backends("v1") as (a,):
                addr = await proxy.listen("t", ("127.0.0.1", 0),
                                          table=table(route("o", a, b, policy=policy)))

                async def codes(n: int) -> list[int]:
                    return [(await asyncio.to_thread(get, addr, "/"))[0] for _ in range(n)]

                assert (await codes(8)).count(500) == 2  # two in a row, then ejected
                await clock.advance(14.0)  # the sweep at 10 s: its 15 s are not up
                assert await codes(4) == [200] * 4
                await clock.advance(2.0)  # t=16: up, but no sweep has run since
                assert await codes(4) == [200] * 4
                await clock.advance(5.0)  # the sweep at t=20 returns it
                assert (await codes(8)).count(500) == 2  # back, failing: out again
                # out again at t=21 for 2 x 15 s: the sweep at t=40 keeps it out (15 s
                # would be up), at t=50 it has 29 s, the sweep at t=60 returns it
                await clock.advance(25.0)
                assert await codes(4) == [200] * 4
                await clock.advance(12.0)  # t=58
                assert await codes(4) == [200] * 4
                await clock.advance(3.0)  # t=61
                assert 500 in await codes(4)
    finally:
        await proxy.close()


async def test_no_healthy_upstream_when_all_are_out_unless_below_panic_threshold(
        proxy: HttpProxy) -> None:
    bad = Recorder(status=lambda i: 500)
    async with bad.running() as b:
        strict = ClusterPolicy(consecutive_5xx=1, max_ejection_percent=100)
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("one", b, policy=strict)))
        got = [await asyncio.to_thread(get, addr, "/") for _ in range(3)]
        assert [s for s, _, _ in got] == [500, 503, 503]  # Istio's default: no panic mode
        assert got[1][2] == b"no healthy upstream"
        panic = ClusterPolicy(consecutive_5xx=1, max_ejection_percent=100,
                              min_health_percent=50)
        await proxy.listen("t", table=table(route("two", b, policy=panic)))
        got = [await asyncio.to_thread(get, addr, "/") for _ in range(3)]
        assert [s for s, _, _ in got] == [500, 500, 500]  # all out: panic uses them all


async def test_timeouts_and_resets_count_as_gateway_errors(proxy: HttpProxy) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    servers = [await asyncio.start_server(hang, "127.0.0.1", 0),
               await asyncio.start_server(reset, "127.0.0.1", 0)]
    silent, closing = (s.sockets[0].getsockname()[:2] for s in servers)
    policy = ClusterPolicy(consecutive_gateway=2, consecutive_5xx=0, max_ejection_percent=100)
    try:
        with backends("v1") as (a,):
            for bad, timeout, code in ((silent, 0.2, 504), (closing, None, 503)):
                addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
                    route(f"g{code}", a, bad, policy=policy, timeout=timeout)))
                got = [(await asyncio.to_thread(get, addr, "/"))[0] for _ in range(10)]
                assert got.count(code) == 2 and got.count(200) == 8, got  # then ejected
    finally:
        for w in held:
            w.close()
        for s in servers:
            s.close()


async def test_a_clusters_data_plane_times_outlier_detection_on_the_cluster_clock() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(clock=clock) as cluster:
        assert cluster.traffic is not None
        balancer = cluster.traffic.balancer
        before = balancer.monotonic()
        await clock.advance(42.0)
        assert balancer.monotonic() - before == 42.0


async def test_the_route_timeout_runs_from_the_whole_request_received(
        proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("slow-upload", a, timeout=0.3)))

        def slow_upload() -> bytes:
            with socket.create_connection(addr, timeout=10) as s:
                s.sendall(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n"
                          b"connection: close\r\n\r\nab")
                time.sleep(0.8)  # longer than the timeout, before the request ends
                s.sendall(b"cd")
                out = b""
                while data := s.recv(65536):
                    out += data
                return out

        answer = await asyncio.to_thread(slow_upload)
        assert answer.startswith(b"HTTP/1.1 200 ") and b'"body_len": 4' in answer
        status, _, body = await asyncio.to_thread(get, addr, "/slow/800")
        assert (status, body) == (504, b"upstream request timeout")  # a slow answer is cut


async def test_a_body_outgrowing_the_buffer_between_two_tries_answers_507(
        proxy: HttpProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestra.net.l7._tries.backoff_delay", lambda *a: 5.0)

    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # answers before the body came
        writer.write(b"HTTP/1.1 503 X\r\ncontent-length: 0\r\n\r\n")

    server = await asyncio.start_server(early, "127.0.0.1", 0)
    try:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=table(
            route("r", server.sockets[0].getsockname()[:2],
                  retry=Retry(attempts=1, retry_on=("5xx",)))))

        def upload() -> bytes:
            with socket.create_connection(addr, timeout=10) as s:
                s.sendall(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
                          % (LIMIT + 1000) + b"a" * 1000)
                time.sleep(0.3)  # the first try failed: the proxy waits its back-off
                s.sendall(b"b" * LIMIT)
                out = b""
                while data := s.recv(65536):
                    out += data
                return out

        answer = await asyncio.to_thread(upload)
    finally:
        server.close()
    assert answer.startswith(b"HTTP/1.1 507 ")
    assert answer.endswith(b"\r\n\r\nexceeded request buffer limit while retrying upstream")
