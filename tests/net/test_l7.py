"""The L7 HTTP data plane on its own: routing, framing, headers, upgrade, draining, TLS."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import socket
from collections.abc import AsyncIterator

import pytest

from orchestra.net.l7 import (
    Cluster,
    Fault,
    HeaderMatch,
    HeaderMods,
    HttpProxy,
    Match,
    Mirror,
    PathMatch,
    QueryMatch,
    Redirect,
    Retry,
    Rewrite,
    Route,
    RouteTable,
    TlsCert,
    VirtualHost,
    WeightedCluster,
)

from ._http import backends, get, make_cert, peer_cert, raw_exchange, same_cert, seen, version_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def proxy() -> AsyncIterator[HttpProxy]:
    p = HttpProxy(connect_timeout=2.0)
    try:
        yield p
    finally:
        await p.close()


def _route(name: str, *addrs: tuple[str, int], path: str | None = None,
           kind: str = "Prefix", **kw: object) -> Route:
    match = Match(path=PathMatch(kind, path)) if path is not None else Match()
    return Route(name=name, matches=(match,),
                 destinations=(WeightedCluster(Cluster(name, tuple(addrs))),), **kw)  # type: ignore[arg-type]


async def _listen(proxy: HttpProxy, table: RouteTable) -> tuple[str, int]:
    return await proxy.listen("test", ("127.0.0.1", 0), table=table)


async def test_virtual_hosts_and_paths_route_to_their_backends(proxy: HttpProxy) -> None:
    with backends("v1", "v2", "v3") as (a, b, c):
        table = RouteTable((
            VirtualHost("foo", ("foo.example.com",), (
                _route("foo-exact", c, path="/exact", kind="Exact"),
                _route("foo-api", b, path="/api"),
                _route("foo-root", a, path="/"))),
            VirtualHost("wild", ("*.bar.example.com",), (_route("bar", b),)),
        ))
        addr = await _listen(proxy, table)

        def run() -> None:
            assert version_of(get(addr, "/", host="foo.example.com")[2]) == "v1"
            assert version_of(get(addr, "/api/x", host="FOO.example.com:80")[2]) == "v2"
            # element-wise prefix: /apix is not under /api
            assert version_of(get(addr, "/apix", host="foo.example.com")[2]) == "v1"
            assert version_of(get(addr, "/exact", host="foo.example.com")[2]) == "v3"
            assert version_of(get(addr, "/exact/", host="foo.example.com")[2]) == "v1"
            # a wildcard covers exactly one label
            assert version_of(get(addr, "/", host="a.bar.example.com")[2]) == "v2"
            assert get(addr, "/", host="a.b.bar.example.com")[0] == 404
            assert get(addr, "/", host="other.example.com")[0] == 404

        await asyncio.to_thread(run)


async def test_no_ready_backend_is_503_and_unreachable_backends_are_skipped(
        proxy: HttpProxy) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_addr = dead.getsockname()
    dead.close()  # nothing listens there now: connection refused
    with backends("v1") as (a,):
        table = RouteTable((VirtualHost("all", ("*",), (
            _route("empty", path="/empty"),
            _route("one-dead", dead_addr, a, path="/"))),))
        addr = await _listen(proxy, table)

        def run() -> None:
            status, _, body = get(addr, "/empty")
            assert (status, body) == (503, b"no healthy upstream")
            for _ in range(4):  # round robin reaches the dead one; it is retried elsewhere
                status, _, body = get(addr, "/x")
                assert status == 200 and version_of(body) == "v1"

        await asyncio.to_thread(run)


async def test_keep_alive_and_pipelined_requests_answer_in_order(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("all", a),)),)))

        def run() -> None:
            conn = http.client.HTTPConnection(*addr, timeout=5)
            try:
                paths = [seen(get(addr, f"/k{i}", conn=conn)[2])["path"] for i in range(5)]
            finally:
                conn.close()
            assert paths == [f"/k{i}" for i in range(5)]
            reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
            # a POST with a body in the middle of the pipeline keeps its framing
            reqs = (reqs + b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                    + b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
            out = raw_exchange(addr, reqs, until=5)
            order = [p for p in ("/p0", "/p1", "/p2", "/body", "/last")]
            positions = [out.find(f'"path": "{p}"'.encode()) for p in order]
            assert all(p >= 0 for p in positions) and positions == sorted(positions)
            assert b'"body_len": 5' in out

        await asyncio.to_thread(run)


async def test_bodies_stream_both_ways_chunked_and_sized(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("all", a),)),)))
        payload = bytes(range(256)) * 12000  # ~3 MB

        def chunks() -> object:
            for i in range(0, len(payload), 100_000):
                yield payload[i:i + 100_000]

        def run() -> None:
            conn = http.client.HTTPConnection(*addr, timeout=10)
            try:
                conn.request("POST", "/upload", body=chunks(),  # type: ignore[arg-type]
                             encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
                r = conn.getresponse()
                info = seen(r.read())
                assert info["body_len"] == len(payload)
                assert info["sha"] == hashlib.sha256(payload).hexdigest()
                # a chunked response of 5 MB, then a sized one, on the same connection
                status, hdrs, body = get(addr, f"/bulk/{5 << 20}", conn=conn)
                assert status == 200 and len(body) == 5 << 20
                assert hdrs.get("transfer-encoding") == "chunked"
                status, hdrs, body = get(addr, f"/bulk/{1 << 20}?length=1", conn=conn)
                assert len(body) == 1 << 20 and hdrs["content-length"] == str(1 << 20)
                status, hdrs, body = get(addr, "/head", method="HEAD", conn=conn)
                assert status == 200 and body == b""
                assert version_of(get(addr, "/after-head", conn=conn)[2]) == "v1"
            finally:
                conn.close()

        await asyncio.to_thread(run)


async def test_hop_by_hop_headers_dropped_and_forwarding_headers_added(
        proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("all", a),)),)))

        def run() -> None:
            _, hdrs, body = get(addr, "/h", headers={
                "Connection": "keep-alive, X-Secret", "X-Secret": "1", "Keep-Alive": "5",
                "Proxy-Authorization": "Basic Zm9v", "TE": "trailers",
                "X-Forwarded-For": "10.1.2.3", "X-Kept": "yes"})
            h = seen(body)["headers"]
            for gone in ("x-secret", "keep-alive", "proxy-authorization", "te"):
                assert gone not in h, gone
            assert h["x-kept"] == "yes"
            assert h["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
            assert h["x-forwarded-proto"] == "http"
            assert len(h["x-request-id"]) == 36
            assert "keep-alive" not in hdrs
            _, _, body = get(addr, "/h", headers={"X-Request-Id": "abc"})
            assert seen(body)["headers"]["x-request-id"] == "abc"
            assert "x-forwarded-for" in seen(get(addr, "/")[2])["headers"]

        await asyncio.to_thread(run)


async def test_upgrade_becomes_a_tunnel(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("all", a),)),)))

        def run() -> None:
            with socket.create_connection(addr, timeout=5) as s:
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          b"Upgrade: test\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    head += s.recv(4096)
                assert head.startswith(b"HTTP/1.1 101")
                assert b"upgrade: test" in head.lower()
                for msg in (b"ping", b"x" * 100_000):
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        got += s.recv(65536)
                    assert got == msg

        await asyncio.to_thread(run)


async def test_table_swap_applies_to_the_next_request_on_a_kept_alive_connection(
        proxy: HttpProxy) -> None:
    with backends("v1", "v2") as (a, b):
        t1 = RouteTable((VirtualHost("all", ("*",), (_route("r", a),)),))
        t2 = RouteTable((VirtualHost("all", ("*",), (_route("r", b),)),))
        addr = await _listen(proxy, t1)
        conn = http.client.HTTPConnection(*addr, timeout=5)
        try:
            assert version_of((await asyncio.to_thread(get, addr, "/", conn=conn))[2]) == "v1"
            proxy.set_table("test", t2)
            assert version_of((await asyncio.to_thread(get, addr, "/", conn=conn))[2]) == "v2"
        finally:
            conn.close()
        stats = proxy.traffic_stats()
        assert stats["r"]["requests"] == 2
        assert stats["r"]["codes"] == {200: 2}
        assert {v["address"] for v in stats["r"]["backends"].values()} == \
            {f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}"}
        log = proxy.access_log()
        assert len(log) == 2 and '"GET / HTTP/1.1" 200 - 0' in log[0]


async def test_matches_modifiers_redirects_and_rewrites(proxy: HttpProxy) -> None:
    with backends("v1", "v2") as (a, b):
        table = RouteTable((VirtualHost("all", ("*",), (
            Route("redir", (Match(path=PathMatch("Prefix", "/old")),),
                  redirect=Redirect(scheme="https", prefix="/new", status=301)),
            Route("hdr", (Match(headers=(HeaderMatch("end-user", "jason"),)),),
                  (WeightedCluster(Cluster("b", (b,))),),
                  request_headers=HeaderMods(set=(("x-set", "1"),), remove=("x-drop",)),
                  response_headers=HeaderMods(add=(("x-added", "yes"),))),
            Route("q", (Match(query=(QueryMatch("v", "2"),), method="GET"),),
                  (WeightedCluster(Cluster("b", (b,))),)),
            Route("rw", (Match(path=PathMatch("Prefix", "/app/")),),
                  (WeightedCluster(Cluster("a", (a,))),),
                  rewrite=Rewrite(prefix="/", hostname="internal")),
            _route("rest", a),
        )),))
        addr = await _listen(proxy, table)

        def run() -> None:
            status, hdrs, _ = get(addr, "/old/x?y=1", host="h.example:8080")
            assert status == 301 and hdrs["location"] == "https://h.example/new/x?y=1"
            _, hdrs, body = get(addr, "/", headers={"end-user": "jason", "x-drop": "1"})
            info = seen(body)
            assert info["version"] == "v2" and info["headers"]["x-set"] == "1"
            assert "x-drop" not in info["headers"] and hdrs["x-added"] == "yes"
            assert version_of(get(addr, "/?v=2")[2]) == "v2"
            assert version_of(get(addr, "/?v=2", method="POST")[2]) == "v1"
            info = seen(get(addr, "/app/x/y?z")[2])
            assert (info["path"], info["host"]) == ("/x/y?z", "internal")

        await asyncio.to_thread(run)


async def test_weights_split_requests(proxy: HttpProxy) -> None:
    with backends("v1", "v2") as (a, b):
        table = RouteTable((VirtualHost("all", ("*",), (Route("w", destinations=(
            WeightedCluster(Cluster("a", (a,)), 80),
            WeightedCluster(Cluster("b", (b,)), 20))),)),))
        addr = await _listen(proxy, table)

        def run() -> dict[str, int]:
            counts = {"v1": 0, "v2": 0}
            conn = http.client.HTTPConnection(*addr, timeout=5)
            try:
                for _ in range(500):
                    counts[version_of(get(addr, "/", conn=conn)[2])] += 1
            finally:
                conn.close()
            return counts

        counts = await asyncio.to_thread(run)
        # 500 draws at p=0.2: mean 100, sd ~8.9; +-5 sd
        assert 55 <= counts["v2"] <= 145, counts


async def test_remove_drains_in_flight_requests(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("all", a),)),)))
        slow = asyncio.create_task(asyncio.to_thread(get, addr, "/slow/300"))
        await asyncio.sleep(0.1)
        await proxy.remove("test", drain_timeout=5)
        status, hdrs, body = await slow
        assert status == 200 and version_of(body) == "v1"
        assert hdrs.get("connection") == "close"
        with pytest.raises(OSError):
            await asyncio.to_thread(get, addr, "/")


async def test_tls_chooses_the_certificate_by_sni(proxy: HttpProxy) -> None:
    foo = make_cert("foo.example.com")
    wild = make_cert("*.bar.example.com")
    with backends("v1") as (a,):
        addr = await proxy.listen(
            "tls", ("127.0.0.1", 0),
            table=RouteTable((VirtualHost("all", ("*",), (_route("all", a),)),)),
            tls=[TlsCert(("foo.example.com",), *foo), TlsCert(("*.bar.example.com",), *wild)])

        def run() -> None:
            assert same_cert(peer_cert(addr, "foo.example.com"), foo[0])
            assert same_cert(peer_cert(addr, "x.bar.example.com"), wild[0])
            assert same_cert(peer_cert(addr, "unknown.example.com"), foo[0])  # the default
            import ssl

            ctx = ssl.create_default_context(cadata=wild[0].decode())
            with socket.create_connection(addr, timeout=5) as raw, \
                    ctx.wrap_socket(raw, server_hostname="x.bar.example.com") as s:
                s.sendall(b"GET /t HTTP/1.1\r\nHost: x.bar.example.com\r\n"
                          b"Connection: close\r\n\r\n")
                out = b""
                while chunk := s.recv(65536):
                    out += chunk
            assert out.startswith(b"HTTP/1.1 200")
            assert b'"x-forwarded-proto": "https"' in out

        await asyncio.to_thread(run)


async def test_route_timeout_cuts_a_slow_backend(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
            _route("slow", a, path="/slow", timeout=0.2), _route("rest", a))),)))

        def run() -> None:
            status, _, body = get(addr, "/slow/2000")
            assert (status, body) == (504, b"upstream request timeout")
            assert get(addr, "/fast")[0] == 200  # other routes unaffected

        await asyncio.to_thread(run)
        assert " 504 UT " in proxy.access_log()[0]


async def test_fault_injection_aborts_and_delays(proxy: HttpProxy) -> None:
    with backends("v1") as (a,):
        table = RouteTable((VirtualHost("all", ("*",), (
            _route("abort", a, path="/abort", fault=Fault(abort_status=418,
                                                           abort_percent=50)),
            _route("delay", a, path="/delay", fault=Fault(delay=0.2, delay_percent=100)),
        )),))
        addr = await _listen(proxy, table)

        def run() -> dict[int, int]:
            codes: dict[int, int] = {}
            conn = http.client.HTTPConnection(*addr, timeout=5)
            try:
                for _ in range(400):
                    status = get(addr, "/abort", conn=conn)[0]
                    codes[status] = codes.get(status, 0) + 1
                assert version_of(get(addr, "/delay", conn=conn)[2]) == "v1"
            finally:
                conn.close()
            return codes

        codes = await asyncio.to_thread(run)
        assert set(codes) == {200, 418}
        assert 140 <= codes[418] <= 260, codes  # 400 draws at p=0.5: sd 10; +-6 sd
        delayed = [line for line in proxy.access_log() if "/delay" in line]
        assert len(delayed) == 1 and " 200 DI " in delayed[0]
        duration_ms = int(delayed[0].split('"')[2].split()[4])
        assert duration_ms >= 200  # the configured delay is part of the request's time


async def test_mirroring_copies_requests_without_changing_responses(proxy: HttpProxy) -> None:
    got: list[bytes] = []

    async def shadow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 500 Shadow\r\ncontent-length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(shadow, "127.0.0.1", 0)
    shadow_addr = server.sockets[0].getsockname()[:2]
    try:
        with backends("v1") as (a,):
            addr = await _listen(proxy, RouteTable((VirtualHost("all", ("*",), (
                _route("m", a, mirrors=(Mirror(Cluster("shadow", (shadow_addr,))),)),)),)))

            def run() -> list[int]:
                conn = http.client.HTTPConnection(*addr, timeout=5)
                try:
                    return [get(addr, f"/m{i}", host="app", conn=conn)[0] for i in range(5)]
                finally:
                    conn.close()

            assert await asyncio.to_thread(run) == [200] * 5
            for _ in range(100):
                if len(got) == 5:
                    break
                await asyncio.sleep(0.02)
    finally:
        server.close()
        await server.wait_closed()
    assert sorted(h.split(b" ")[1] for h in got) == [b"/m%d" % i for i in range(5)]
    assert all(b"\r\nhost: app-shadow\r\n" in h.lower() for h in got)


async def test_retries_hide_a_backend_failing_every_other_request(proxy: HttpProxy) -> None:
    served = [0]

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                served[0] += 1
                if served[0] % 2:
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n"
                                 b"\r\nfail")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    silent: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)  # accepts, never answers

    servers = [await asyncio.start_server(flaky, "127.0.0.1", 0),
               await asyncio.start_server(hang, "127.0.0.1", 0)]
    flaky_addr, hang_addr = (s.sockets[0].getsockname()[:2] for s in servers)
    try:
        with backends("v1") as (a,):
            table = RouteTable((VirtualHost("all", ("*",), (
                _route("plain", flaky_addr, path="/plain"),
                _route("retried", flaky_addr, path="/retried",
                       retry=Retry(attempts=2, retry_on=("5xx",))),
                _route("per-try", hang_addr, a, path="/per-try",
                       retry=Retry(attempts=2, per_try_timeout=0.2, retry_on=("5xx",))),
            )),))
            addr = await _listen(proxy, table)

            def run(path: str, n: int) -> list[int]:
                conn = http.client.HTTPConnection(*addr, timeout=5)
                try:
                    return [get(addr, path, conn=conn)[0] for _ in range(n)]
                finally:
                    conn.close()

            assert sorted(set(await asyncio.to_thread(run, "/plain", 10))) == [200, 503]
            assert await asyncio.to_thread(run, "/retried", 10) == [200] * 10
            assert await asyncio.to_thread(run, "/per-try", 6) == [200] * 6
    finally:
        for w in silent:
            w.close()
        for s in servers:
            s.close()
    codes = proxy.traffic_stats()["retried"]["codes"]
    assert codes == {200: 10}


async def test_turning_tls_on_and_off_recreates_the_listener_on_its_address(
        proxy: HttpProxy) -> None:
    cert = make_cert("t.example.com")
    with backends("v1") as (a,):
        table = RouteTable((VirtualHost("all", ("*",), (_route("all", a),)),))
        addr = await proxy.listen("flip", ("127.0.0.1", 0), table=table, tls=())
        assert (await asyncio.to_thread(get, addr, "/"))[0] == 200
        again = await proxy.listen("flip", table=table, tls=[TlsCert(("t.example.com",), *cert)])
        assert again == addr
        assert same_cert(await asyncio.to_thread(peer_cert, addr, "t.example.com"), cert[0])
        await proxy.listen("flip", table=table, tls=())
        assert (await asyncio.to_thread(get, addr, "/"))[0] == 200
