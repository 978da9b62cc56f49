"""DestinationRule traffic policies on the process runtime, through the built-in ingress
gateway: load balancers, consistent hashing by source IP and cookie, connection-pool
overflow and requests per connection. Consistent hashing by header and outlier detection
are in the suite shared with containerd (tests/traffic/_istio_checks.py)."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import orchestra as oc
from tests.net._http import get, seen, version_of
from tests.traffic._istio_checks import GW_REF, gateway, many, pod_addr, rule, to, vs
from tests.traffic.test_istio import cluster

pytestmark = pytest.mark.anyio
__all__ = ["cluster"]  # the fixture


async def test_consistent_hash_by_source_ip_and_cookie(cluster: oc.Cluster) -> None:
    await to(cluster, "reviews", {"loadBalancer": {"consistentHash": {"useSourceIp": True}}})
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 30, "/")
    assert len({version_of(b) for _, b, _ in got}) == 1
    await cluster.apply(rule("reviews", {"loadBalancer": {"consistentHash": {
        "httpCookie": {"name": "session", "ttl": "0s"}}}}))
    deadline = time.monotonic() + 10
    spread: set[str] = set()
    while time.monotonic() < deadline:
        spread = set()
        for user in range(8):
            got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 6, "/",
                                          {"cookie": f"a=1; session=s{user}"})
            versions = {version_of(b) for _, b, _ in got}
            if len(versions) != 1:
                break
            spread |= versions
        else:
            break
        await asyncio.sleep(0.05)
    assert len(spread) >= 2


async def test_random_and_least_request_spread_over_every_backend(
        cluster: oc.Cluster) -> None:
    for simple in ("RANDOM", "LEAST_REQUEST", "ROUND_ROBIN"):
        await to(cluster, "reviews", {"loadBalancer": {"simple": simple}})
        got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 60, "/")
        assert {version_of(b) for _, b, _ in got} == {"v1", "v2", "v3"}, simple


async def test_connection_pool_overflow_answers_503_as_envoy(cluster: oc.Cluster) -> None:
    await to(cluster, "ratings", {"connectionPool": {"tcp": {"maxConnections": 1},
                                                     "http": {"http1MaxPendingRequests": 1}}})
    addr = cluster.endpoint(GW_REF, 80)

    def burst() -> list[tuple[int, bytes]]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda _: get(addr, "/slow/1000")[::2], range(8)))

    got = await asyncio.to_thread(burst)
    codes = [s for s, _ in got]
    # one request at the backend, one in the pending queue (served after it), six refused
    assert codes.count(200) == 2 and codes.count(503) == 6, codes
    assert {b for s, b in got if s == 503} == {
        b"upstream connect error or disconnect/reset before headers. reset reason: overflow"}
    assert any(" UO " in line for line in cluster.access_log("virtualservice/all"))
    got = await asyncio.to_thread(many, addr, 5, "/")  # sequential: under the limit
    assert [s for s, _, _ in got] == [200] * 5


async def test_max_requests_per_connection_closes_backend_connections(
        cluster: oc.Cluster) -> None:
    await to(cluster, "ratings", {"loadBalancer": {"simple": "ROUND_ROBIN"}})
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 10, "/")
    assert max(seen(b)["conn_requests"] for _, b, _ in got) > 1  # pooled and reused
    await cluster.apply(rule("ratings", {"connectionPool": {"http": {
        "maxRequestsPerConnection": 1}}}))
    deadline = time.monotonic() + 10
    counts: set[int] = set()
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 10, "/")
        counts = {seen(b)["conn_requests"] for _, b, _ in got[1:]}
        if counts == {1}:
            break
        await asyncio.sleep(0.05)
    assert counts == {1}  # a new backend connection for each request


async def test_retries_and_mirrors_carry_the_request_body(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("flaky", [{"match": [{"uri": {"exact": "/flaky"}}],
                                      "retries": {"attempts": 3, "retryOn": "5xx"},
                                      "route": [{"destination": {"host": "ratings"}}],
                                      "mirror": {"host": "reviews", "subset": "v3"}},
                                     {"route": [{"destination": {"host": "productpage"}}]}]))
    await gateway(cluster, "/")
    addr = cluster.endpoint(GW_REF, 80)
    bodies = [random.randbytes(50_000) for _ in range(10)]

    def posts() -> list[tuple[int, bytes]]:
        conn = http.client.HTTPConnection(*addr, timeout=10)
        try:
            return [get(addr, "/flaky", method="POST", body=b, conn=conn)[::2] for b in bodies]
        finally:
            conn.close()

    got = await asyncio.to_thread(posts)
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [s for s, _ in got] == [200] * 10  # every other try failed and was retried
    assert [seen(b)["sha"] for _, b in got] == shas  # with the whole body each time
    counts = json.loads((await asyncio.to_thread(
        get, cluster.endpoint("service/ratings"), "/counts"))[2])
    assert counts["/flaky"] == 20
    v3 = await pod_addr(cluster, "v3")
    mirrored: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # mirrors are fire-and-forget: wait for them
        mirrored = json.loads((await asyncio.to_thread(get, v3, "/bodies"))[2]).get(
            "/flaky", [])
        if len(mirrored) >= 10:
            break
        await asyncio.sleep(0.05)
    assert sorted(mirrored) == sorted(shas)  # one copy each, body and all
