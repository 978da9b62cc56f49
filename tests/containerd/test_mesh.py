"""Mesh routing without sidecars on containerd with the bridge network: a VirtualService
naming the ``reviews`` Service routes at L7 what pods send to its ClusterIP (DNATed by
the bridge's nft table to an L7 listener on the gateway, the pod's address kept) and
what the host sends to ``cluster.endpoint("service/reviews")``; deleted, the Service is
kernel NAT again. Busybox httpd pods answer ``<version> <pod>``."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from test_cluster import HTTPD, options  # type: ignore[import-not-found]

import orchestra as oc

pytestmark = pytest.mark.anyio

PORT = 9080

# n GET / to host:port, one kept-alive connection (or a new one per request); prints the
# first word of each 200 answer (the version), else the status or the error's name
ASK = """
import http.client, json, sys
host, port, n, headers, fresh = json.loads(sys.argv[1])
out, conn = [], None
for _ in range(n):
    if conn is None:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/", headers=headers)
        r = conn.getresponse()
        body = r.read().decode()
        out.append(body.split()[0] if r.status == 200 else str(r.status))
        if fresh or r.will_close:
            conn.close()
            conn = None
    except OSError as e:
        out.append(type(e).__name__)
        conn.close()
        conn = None
print(json.dumps(out))
"""


def reviews(version: str) -> dict[str, Any]:
    labels = {"app": "reviews", "version": version}
    container = {"name": "httpd", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", HTTPD], "env": [{"name": "VERSION", "value": version}],
                 "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                    "periodSeconds": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"reviews-{version}"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container],
                                           "terminationGracePeriodSeconds": 1}}}}


def client(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name,
                                                            "labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", "exec sleep 3600"]}],
                     "terminationGracePeriodSeconds": 1}}


def dest(subset: str, weight: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"destination": {"host": "reviews", "subset": subset}}
    if weight is not None:
        d["weight"] = weight
    return d


def virtual_service(*http: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews"}, "spec": {"hosts": ["reviews"], "http": list(http)}}


DESTINATION_RULE = {
    "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
    "metadata": {"name": "reviews"},
    "spec": {"host": "reviews", "subsets": [
        {"name": "v1", "labels": {"version": "v1"}},
        {"name": "v2", "labels": {"version": "v2"}}]}}


@pytest.fixture
async def cluster(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1, dns_upstreams=[],
                          runtime_options=options(containerd_socket, busybox_archive)) as c:
        net: Any = c.network
        await c.apply([reviews("v1"), reviews("v2"), client("productpage", "productpage"),
                       client("other", "other"),
                       {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews"},
                        "spec": {"selector": {"app": "reviews"},
                                 "ports": [{"name": "http", "port": PORT,
                                            "targetPort": 8080}]}},
                       DESTINATION_RULE])
        for v in ("v1", "v2"):
            await c.wait_for(f"deployment/reviews-{v}", "Available", timeout=60)
        for p in ("productpage", "other"):
            await c.wait_for(f"pod/{p}", "Ready", timeout=60)
        await c.wait_for("endpoints/reviews", lambda e: sum(
            len(s.addresses or ()) for s in e.subsets or ()) == 2, timeout=30)
        yield c
    # nothing of the cluster's network is left on the host
    assert net.bridge_name not in _run("ip", "-o", "link")
    assert net.table not in _run("nft", "list", "tables")
    assert net._netns_prefix not in _run("ip", "netns", "list")


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


async def ask(cluster: oc.Cluster, src: str | None, n: int = 20, fresh: bool = False,
              **headers: str) -> list[str]:
    """n requests to reviews: from inside pod ``src``'s network namespace to the
    ClusterIP, or (``src`` None) from the host to ``cluster.endpoint``."""
    if src is None:
        addr = cluster.endpoint("service/reviews", PORT)
        prefix: list[str] = []
    else:
        svc = await cluster.get("service/reviews")
        addr = (str(svc.spec.cluster_ip), PORT)
        pod = await cluster.get("pod", src)
        prefix = ["nsenter", f"--net={cluster.network._netns_path(pod.metadata.uid)}"]  # type: ignore[union-attr]
    wire = json.dumps([addr[0], addr[1], n, headers, fresh])
    proc = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-c", ASK, wire,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    got: list[str] = json.loads(out)
    return got


async def until(probe: Callable[[], Any], done: Callable[[list[str]], bool],
                seconds: float = 20) -> list[str]:
    """``probe()`` again until ``done`` holds for its answers (routes apply
    asynchronously); the last answers either way."""
    deadline = time.monotonic() + seconds
    while True:
        got: list[str] = await probe()
        if done(got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


def within(k: int, n: int, p: float) -> bool:
    """k successes in n within 5 sigma of a binomial(n, p)."""
    return abs(k - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def l7_target(cluster: oc.Cluster) -> tuple[str, int] | None:
    """Where the bridge's nft table DNATs a ClusterIP for the L7, if anywhere."""
    net: Any = cluster.network
    m = re.search(r"chain l7-\d+ \{\s*meta l4proto tcp dnat to ([\d.]+):(\d+)",
                  _run("nft", "list", "table", "ip", net.table))
    return (m.group(1), int(m.group(2))) if m else None


async def test_header_route_then_weights_from_pods_and_host_then_back_to_l4(
        cluster: oc.Cluster) -> None:
    net: Any = cluster.network
    assert l7_target(cluster) is None
    before = await until(lambda: ask(cluster, "other", 20, fresh=True),
                         lambda v: {"v1", "v2"} <= set(v))
    assert {"v1", "v2"} <= set(before)  # kernel NAT: random over both

    # (a) a header match sends jason to v2, everyone else to v1
    await cluster.apply(virtual_service(
        {"match": [{"headers": {"end-user": {"exact": "jason"}}}], "route": [dest("v2")]},
        {"route": [dest("v1")]}))
    for src in ("other", None):
        jason = await until(lambda s=src: ask(cluster, s, **{"end-user": "jason"}),
                            lambda v: set(v) == {"v2"})
        assert jason == ["v2"] * 20, (src, jason)
        others = await until(lambda s=src: ask(cluster, s), lambda v: set(v) == {"v1"})
        assert others == ["v1"] * 20, (src, others)
    target = l7_target(cluster)
    assert target is not None and target[0] == net.gateway
    assert any(name.startswith("mesh/default/reviews/") for name in cluster.traffic.names())  # type: ignore[union-attr]

    # (b) weights 90/10, within 5 sigma over 1000 requests from a pod and from the host
    await cluster.apply(virtual_service({"route": [dest("v1", 90), dest("v2", 10)]}))
    await until(lambda: ask(cluster, "other", 50, **{"end-user": "jason"}),
                lambda v: "v1" in v)  # the header route is gone
    n = 1000
    for src in ("other", None):
        got = await ask(cluster, src, n)
        assert len(got) == n and set(got) <= {"v1", "v2"}, (src, sorted(set(got)))
        assert within(got.count("v2"), n, 0.10), (src, got.count("v2"))
    stats = cluster.traffic_stats("virtualservice/reviews")
    assert sum(r["requests"] for r in stats.values()) >= 2 * n, stats

    # deleted: kernel NAT again, no redirect, no L7 listener
    await cluster.delete("virtualservice/reviews")
    after = await until(lambda: ask(cluster, "other", 20, fresh=True),
                        lambda v: {"v1", "v2"} <= set(v) and l7_target(cluster) is None)
    assert {"v1", "v2"} == set(after)
    assert l7_target(cluster) is None
    assert not any(name.startswith("mesh/") for name in cluster.traffic.names())  # type: ignore[union-attr]
    host = await until(lambda: ask(cluster, None, 20, fresh=True),
                       lambda v: {"v1", "v2"} <= set(v))
    assert {"v1", "v2"} == set(host)  # the host alias is the L4 proxy's again
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(*target), 2)


async def test_source_labels_route_by_the_calling_pod(cluster: oc.Cluster) -> None:
    await cluster.apply(virtual_service(
        {"match": [{"sourceLabels": {"app": "productpage"}}], "route": [dest("v2")]},
        {"route": [dest("v1")]}))
    pp = await until(lambda: ask(cluster, "productpage"), lambda v: set(v) == {"v2"})
    assert pp == ["v2"] * 20  # the L7 sees the pod's own address, not the gateway's
    other = await until(lambda: ask(cluster, "other"), lambda v: set(v) == {"v1"})
    assert other == ["v1"] * 20
    host = await until(lambda: ask(cluster, None), lambda v: set(v) == {"v1"})
    assert host == ["v1"] * 20  # the host is no productpage pod


async def test_tcp_route_forwards_connections_from_pods_and_host(cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "networking.istio.io/v1alpha3",
                         "kind": "VirtualService", "metadata": {"name": "reviews-tcp"},
                         "spec": {"hosts": ["reviews"], "tcp": [
                             {"match": [{"port": PORT}], "route": [dest("v2")]}]}})
    for src in ("other", None):  # raw TCP, a new connection each: all to v2
        got = await until(lambda s=src: ask(cluster, s, fresh=True),
                          lambda v: set(v) == {"v2"})
        assert got == ["v2"] * 20, (src, got)
    pod = await until(lambda: ask(cluster, "productpage", fresh=True),
                      lambda v: set(v) == {"v2"})
    assert pod == ["v2"] * 20
    assert l7_target(cluster) is not None
    await cluster.delete("virtualservice/reviews-tcp")
    back = await until(lambda: ask(cluster, "other", 20, fresh=True),
                       lambda v: {"v1", "v2"} <= set(v) and l7_target(cluster) is None)
    assert set(back) == {"v1", "v2"} and l7_target(cluster) is None
