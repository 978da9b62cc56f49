"""The L7 data plane's fast paths keep its behaviour: the route cache, the request ids,
the deferred statistics, and both event loops."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
import threading
import uuid
from typing import Any

import pytest

from orchestra.net.l7 import (
    Cluster,
    HeaderMatch,
    HttpProxy,
    Match,
    PathMatch,
    Route,
    RouteTable,
    VirtualHost,
    WeightedCluster,
)
from orchestra.net.l7._request import _request_id
from orchestra.net.l7._stats import AccessRecord, TrafficStats
from orchestra.net.l7._table import select_route

from ._http import backends, get, version_of

pytestmark = pytest.mark.anyio


def _to(name: str, *matches: Match) -> Route:
    return Route(name=name, matches=matches or (Match(),),
                 destinations=(WeightedCluster(Cluster(name, (("127.0.0.1", 1),))),))


def test_route_cache_answers_as_select_route_for_path_only_hosts() -> None:
    vh = VirtualHost("a", ("a.example",), (
        _to("exact", Match(path=PathMatch("Exact", "/x"))),
        _to("get-api", Match(path=PathMatch("Prefix", "/api"), method="GET")),
        _to("rest")))
    table = RouteTable((vh,))
    for _ in range(2):  # the second round is answered from the cache
        for method, path in (("GET", "/x"), ("GET", "/api/v1"), ("POST", "/api/v1"),
                             ("GET", "/apix"), ("GET", "/")):
            want = select_route(vh, method, path, "", {})
            assert want is not None
            assert table.route("A.example:80", method, path, "", {}) == want
    assert table.route("other.example", "GET", "/x", "", {}) is None
    # another table (what a controller swaps in) answers by its own routes
    other = RouteTable((VirtualHost("a", ("a.example",), (_to("new"),)),))
    hit = other.route("A.example:80", "GET", "/x", "", {})
    assert hit is not None and hit[0].name == "new"


def test_route_cache_is_not_used_when_headers_or_sources_match() -> None:
    table = RouteTable((VirtualHost("a", ("*",), (
        _to("jason", Match(headers=(HeaderMatch("end-user", "jason"),))),
        _to("pod", Match(sources=frozenset({"10.0.0.7"}))),
        _to("rest"))),))
    for _ in range(3):
        names = []
        for hdrs, ip in (({"end-user": "jason"}, "1.2.3.4"), ({}, "10.0.0.7"),
                         ({}, "1.2.3.4")):
            hit = table.route("h", "GET", "/", "", hdrs, ip)
            assert hit is not None
            names.append(hit[0].name)
        assert names == ["jason", "pod", "rest"]


def test_route_cache_stays_bounded() -> None:
    table = RouteTable((VirtualHost("a", ("*",), (_to("rest"),)),))
    for i in range(10_000):
        table.route("h", "GET", f"/{i}", "", {})
    assert 0 < len(table._cache) <= 4096


def test_request_ids_are_version_4_uuids() -> None:
    ids = {_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for rid in list(ids)[:200]:
        u = uuid.UUID(rid)
        assert str(u) == rid and u.version == 4 and u.variant == uuid.RFC_4122


def _rec(route: str, code: int) -> tuple[Any, ...]:
    return dataclasses.astuple(AccessRecord(
        start=0.0, method="GET", path="/", protocol="HTTP/1.1", code=code, flags="-",
        received=0, sent=2, duration_ms=0, upstream_ms=0, forwarded_for="", user_agent="",
        request_id="r", authority="h", upstream="127.0.0.1:1", route=route, cluster="c"))


def test_deferred_statistics_count_every_record_while_read_from_another_thread() -> None:
    stats = TrafficStats(log_size=100)
    done = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(stats.snapshot().get("r", {}).get("requests", 0))
            stats.access_log()

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(5000):
            stats.record(_rec("r", 200 if i % 5 else 503), 0.001)
    finally:
        done.set()
        t.join(10)
    snap = stats.snapshot()["r"]
    assert snap["requests"] == 5000
    assert snap["codes"] == {200: 4000, 503: 1000}
    assert snap["backends"]["c 127.0.0.1:1"]["requests"] == 5000
    assert len(stats.access_log()) == 100
    assert seen == sorted(seen)  # counts only grow
    stats.record(_rec("r", 200), 0.001)  # below the fold size: seen at the next read
    assert stats.snapshot()["r"]["requests"] == 5001


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_both_event_loops_serve(loop: str) -> None:
    proxy = HttpProxy(connect_timeout=2.0, loop=loop)
    try:
        with backends("v1", "v2") as (a, b):
            table = RouteTable((VirtualHost("all", ("*",), (
                Route("one", (Match(path=PathMatch("Prefix", "/one")),),
                      (WeightedCluster(Cluster("one", (a,))),)),
                Route("two", destinations=(WeightedCluster(Cluster("two", (b,))),)))),))
            addr = await proxy.listen("t", ("127.0.0.1", 0), table=table)
            got = [await asyncio.to_thread(get, addr, p) for p in ("/one", "/", "/one/x")]
            assert [(s, version_of(body)) for s, _, body in got] == [
                (200, "v1"), (200, "v2"), (200, "v1")]
            assert proxy.traffic_stats()["one"]["requests"] == 2
            # the access record's fields land where Envoy's format puts them
            log = proxy.access_log("one")
            assert len(log) == 2
            assert re.fullmatch(
                r'\[20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /one HTTP/1\.1" 200 - 0 '
                r'\d+ \d+ \d+ "127\.0\.0\.1" "-" "[0-9a-f-]{36}" '
                rf'"{addr[0]}:{addr[1]}" "{a[0]}:{a[1]}"', log[0]), log[0]
        assert proxy._loop is not None
        assert ("uvloop" in type(proxy._loop).__module__) == (loop == "uvloop")
    finally:
        await proxy.close()


def test_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, uvloop or asyncio"):
        HttpProxy(loop="trio")


async def test_response_headers_named_by_connection_are_dropped() -> None:
    """A backend's ``Connection: keep-alive, X-Hop`` makes X-Hop hop-by-hop too."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    answer = (b"HTTP/1.1 200 OK\r\nX-Hop: 1\r\nConnection: keep-alive, X-Hop\r\n"
              b"X-Stay: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok")

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                c, _ = srv.accept()
                with c:
                    buf = b""
                    while True:
                        data = c.recv(65536)
                        if not data:
                            break
                        buf += data
                        while b"\r\n\r\n" in buf:
                            buf = buf.split(b"\r\n\r\n", 1)[1]
                            c.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    proxy = HttpProxy(connect_timeout=2.0)
    try:
        addr = await proxy.listen("t", ("127.0.0.1", 0), table=RouteTable((VirtualHost(
            "all", ("*",), (Route("r", destinations=(WeightedCluster(
                Cluster("c", (srv.getsockname()[:2],))),)),)),)))
        for _ in range(2):  # a fresh backend connection, then the pooled one
            status, hdrs, body = await asyncio.to_thread(get, addr, "/")
            assert (status, body) == (200, b"ok")
            assert hdrs.get("x-stay") == "1" and hdrs.get("content-length") == "2"
            assert "x-hop" not in hdrs and "keep-alive" not in hdrs
    finally:
        await proxy.close()
        srv.close()
