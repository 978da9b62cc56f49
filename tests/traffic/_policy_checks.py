"""DestinationRule traffic policies through the built-in ingress gateway, shared by every
runtime the Istio suite runs on (see :mod:`tests.traffic._istio_checks`): load balancers,
consistent hashing, connection-pool overflow, requests per connection, and outlier
detection ejecting a failing pod and bringing it back."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import orchestra as oc
from tests.net._http import get, seen, version_of
from tests.traffic._istio_checks import GW_REF, Check, many, pod_addr, rule, to


async def consistent_hash_by_header_keeps_each_user_on_one_backend(
        cluster: oc.Cluster) -> None:
    await to(cluster, "reviews", {"loadBalancer": {"consistentHash": {
        "httpHeaderName": "x-user"}}})
    addr = cluster.endpoint(GW_REF, 80)
    chosen = {}
    for user in range(12):
        got = await asyncio.to_thread(many, addr, 10, "/", {"x-user": f"user-{user}"})
        versions = {version_of(b) for _, b, _ in got}
        assert len(versions) == 1, (user, versions)  # sticky
        chosen[user] = versions.pop()
    assert len(set(chosen.values())) >= 2  # and users spread over the backends
    plain = await asyncio.to_thread(many, addr, 30, "/")  # no key: round robin
    assert {version_of(b) for _, b, _ in plain} == {"v1", "v2", "v3"}


async def consistent_hash_by_source_ip_and_cookie(cluster: oc.Cluster) -> None:
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


async def random_and_least_request_spread_over_every_backend(cluster: oc.Cluster) -> None:
    for simple in ("RANDOM", "LEAST_REQUEST", "ROUND_ROBIN"):
        await to(cluster, "reviews", {"loadBalancer": {"simple": simple}})
        got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 60, "/")
        assert {version_of(b) for _, b, _ in got} == {"v1", "v2", "v3"}, simple


async def connection_pool_overflow_answers_503_as_envoy(cluster: oc.Cluster) -> None:
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


async def max_requests_per_connection_closes_backend_connections(cluster: oc.Cluster) -> None:
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


async def outlier_detection_ejects_a_failing_pod_and_brings_it_back(
        cluster: oc.Cluster) -> None:
    await to(cluster, "reviews", {"outlierDetection": {
        "consecutive5xxErrors": 3, "interval": "1s", "baseEjectionTime": "1s",
        "maxEjectionPercent": 100}})
    v3 = await pod_addr(cluster, "v3")
    await asyncio.to_thread(get, v3, "/fail/on")
    addr = cluster.endpoint(GW_REF, 80)
    got = await asyncio.to_thread(many, addr, 30, "/")
    codes = [s for s, _, _ in got]
    assert codes.count(500) == 3, codes  # three in a row from v3, then it is ejected
    last_failure = max(i for i, c in enumerate(codes) if c == 500)
    assert {version_of(b) for _, b, _ in got[last_failure + 1:]} == {"v1", "v2"}
    await asyncio.to_thread(get, v3, "/fail/off")
    deadline = time.monotonic() + 10
    versions: set[str] = set()
    while time.monotonic() < deadline:  # after baseEjectionTime it is back
        got = await asyncio.to_thread(many, addr, 10, "/")
        versions = {version_of(b) for s, b, _ in got if s == 200}
        if "v3" in versions:
            break
        await asyncio.sleep(0.1)
    assert "v3" in versions
    assert all(s == 200 for s, _, _ in got)


POLICY_CHECKS: tuple[Check, ...] = (
    consistent_hash_by_header_keeps_each_user_on_one_backend,
    consistent_hash_by_source_ip_and_cookie, random_and_least_request_spread_over_every_backend,
    connection_pool_overflow_answers_503_as_envoy,
    max_requests_per_connection_closes_backend_connections,
    outlier_detection_ejects_a_failing_pod_and_brings_it_back)
