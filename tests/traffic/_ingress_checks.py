"""The Ingress checks of the suite shared by every runtime it runs on (see
:mod:`tests.traffic._route_checks` for the app): hosts, paths, defaultBackend, TLS with
SNI, statistics, and route changes and rolling updates under keep-alive load with zero
failed requests."""

from __future__ import annotations

import asyncio
import base64
import http.client
import threading
from collections.abc import Callable
from typing import Any

import orchestra as oc
from tests.behaviour._servers import eventually
from tests.net._http import get, https_get, make_cert, peer_cert, same_cert, version_of
from tests.traffic._route_checks import Check


def ingress(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, **meta}, "spec": spec}


def backend(service: str, port: int | str = 80) -> dict[str, Any]:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": service, "port": ref}}


def path(p: str, service: str, kind: str = "Prefix", port: int | str = 80) -> dict[str, Any]:
    return {"path": p, "pathType": kind, "backend": backend(service, port)}


async def served(cluster: oc.Cluster, name: str) -> tuple[str, int]:
    ing = await cluster.wait_for(
        f"ingress/{name}", lambda i: bool(i.status and i.status.load_balancer
                                         and i.status.load_balancer.ingress), timeout=10)
    assert ing.status.load_balancer.ingress[0].ip == "127.0.0.1"
    return cluster.endpoint(f"ingress/{name}", 80)


async def hosts_paths_and_default_backend(cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("shop", {
        "defaultBackend": backend("reviews-v3"),
        "rules": [
            {"host": "shop.example.com", "http": {"paths": [
                path("/", "reviews-v1"),
                path("/api", "reviews-v2", port="web"),  # port by name
                path("/api/exact", "reviews-v3", kind="Exact"),
                path("/legacy", "reviews-v1", kind="ImplementationSpecific"),
                path("/same", "reviews-v1"),
                path("/same", "reviews-v3", kind="Exact")]}},
            {"host": "*.beta.example.com", "http": {"paths": [path("/", "reviews-v2")]}},
        ]}))
    addr = await served(cluster, "shop")

    def run() -> None:
        def v(p: str, host: str) -> str:
            status, _, body = get(addr, p, host=host)
            assert status == 200, (p, host, status, body)
            return version_of(body)

        assert v("/", "shop.example.com") == "v1"
        assert v("/api", "shop.example.com") == "v2"
        assert v("/api/", "shop.example.com") == "v2"
        assert v("/api/items", "shop.example.com") == "v2"
        assert v("/apix", "shop.example.com") == "v1"  # element-wise prefix
        assert v("/api/exact", "shop.example.com") == "v3"  # Exact over Prefix
        assert v("/api/exact/", "shop.example.com") == "v2"
        assert v("/legacy/x", "shop.example.com") == "v1"
        assert v("/same", "shop.example.com") == "v3"  # equal length: Exact first
        assert v("/same/x", "shop.example.com") == "v1"
        assert v("/", "x.beta.example.com") == "v2"
        assert v("/", "y.x.beta.example.com") == "v3"  # one label only: default backend
        assert v("/", "other.example.com") == "v3"

    await asyncio.to_thread(run)
    stats = cluster.traffic_stats("ingress/shop")
    assert stats["ingress/default/shop/shop.example.com/api"]["codes"] == {200: 4}
    route = stats["ingress/default/shop/default-backend"]
    assert route["requests"] == 2
    (b,) = route["backends"].values()
    assert b["cluster"] == "default/reviews-v3:80" and b["requests"] == 2
    assert set(route["latency_ms"]) == {"p50", "p90", "p99"}
    log = cluster.access_log("ingress/shop")
    assert len(log) == 13 and '"GET /apix HTTP/1.1" 200' in "".join(log)


async def tls_terminates_with_the_certificate_chosen_by_sni(cluster: oc.Cluster) -> None:
    certs = {h: make_cert(h) for h in ("a.example.com", "b.example.com")}
    for h, (crt, key) in certs.items():
        await cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                             "metadata": {"name": h.split(".")[0] + "-tls"},
                             "data": {"tls.crt": base64.b64encode(crt).decode(),
                                      "tls.key": base64.b64encode(key).decode()}})
    await cluster.apply(ingress("secure", {
        "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"},
                {"hosts": ["b.example.com"], "secretName": "b-tls"},
                {"hosts": ["c.example.com"], "secretName": "c-tls"}],
        "rules": [{"host": "a.example.com", "http": {"paths": [path("/", "reviews-v1")]}},
                  {"host": "b.example.com", "http": {"paths": [path("/", "reviews-v2")]}}]}))
    await served(cluster, "secure")
    addr = cluster.endpoint("ingress/secure", 443)

    def run() -> None:
        assert same_cert(peer_cert(addr, "a.example.com"), certs["a.example.com"][0])
        assert same_cert(peer_cert(addr, "b.example.com"), certs["b.example.com"][0])
        status, body = https_get(addr, "b.example.com", cafile_pem=certs["b.example.com"][0])
        assert status == 200 and version_of(body) == "v2"

    await asyncio.to_thread(run)
    events = await eventually(lambda: [e for e in cluster.events("ingress/secure")
                                       if e.reason == "SecretNotFound"])
    assert events[0].message == 'secret "default/c-tls" not found'


def keep_alive_client(addr: tuple[str, int], host: str, stop: threading.Event,
                      failures: list[str], answered: Callable[[bytes], None],
                      limit: int) -> None:
    """Requests for ``/`` at ``host`` on one kept-alive connection (a new one after an
    error) until ``stop`` is set, at most ``limit``: an error or a status other than 200
    goes to ``failures``, the body of a 200 to ``answered``."""
    conn = http.client.HTTPConnection(*addr, timeout=5)
    try:
        for _ in range(limit):
            if stop.is_set():
                return
            try:
                status, _, body = get(addr, "/", host=host, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                failures.append(repr(e))
                conn.close()
                continue
            if status != 200:
                failures.append(str(status))
            else:
                answered(body)
    finally:
        conn.close()


async def route_change_under_keep_alive_load_loses_no_request(
        cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("canary", {"rules": [{"host": "c.example.com", "http": {
        "paths": [path("/", "reviews-v1")]}}]}))
    addr = await served(cluster, "canary")
    failures: list[str] = []
    seen: list[list[str]] = [[] for _ in range(4)]
    stop = threading.Event()

    threads = [threading.Thread(target=keep_alive_client, args=(
        addr, "c.example.com", stop, failures, lambda b, i=i: seen[i].append(version_of(b)),
        3000)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        await eventually(lambda: all(len(s) >= 20 for s in seen), timeout=20)
        await cluster.patch("ingress/canary", {"spec": {"rules": [{
            "host": "c.example.com", "http": {"paths": [path("/", "reviews-v2")]}}]}})
        mark = [len(s) for s in seen]
        # every kept-alive connection moves to v2 on a later request
        await eventually(lambda: all("v2" in s[m:] for s, m in zip(seen, mark, strict=True)),
                         timeout=20)
    finally:
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 10)
    assert failures == []
    for s in seen:
        first_v2 = s.index("v2")
        assert set(s[:first_v2]) == {"v1"} and set(s[first_v2:]) == {"v2"}


async def rolling_update_behind_the_ingress_loses_no_request(cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("roll", {"rules": [{"host": "r.example.com", "http": {
        "paths": [path("/", "reviews-v1")]}}]}))
    await cluster.scale("deployment/reviews-v1", 2)
    await cluster.wait_for("deployment/reviews-v1", "Available", timeout=30)
    addr = await served(cluster, "roll")
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def count(_: bytes) -> None:
        answered[0] += 1

    threads = [threading.Thread(target=keep_alive_client, args=(
        addr, "r.example.com", stop, failures, count, 5000)) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        await eventually(lambda: answered[0] >= 50, timeout=20)
        # a new template: every pod is replaced, one at a time
        d = await cluster.patch("deployment/reviews-v1", {"spec": {"template": {
            "metadata": {"annotations": {"rollout": "1"}}}}})
        await cluster.wait_for("deployment/reviews-v1", lambda d2: bool(
            d2.status and d2.status.observed_generation == d.metadata.generation
            and d2.status.updated_replicas == 2 and d2.status.replicas == 2
            and d2.status.available_replicas == 2), timeout=60)
        pods = await cluster.list("pods", selector="app=reviews,version=v1")
        now = {f"{p.status.pod_ip}:8080" for p in pods if p.metadata.deletion_timestamp is None}
        mark = answered[0]

        def on_new_pods() -> bool:  # the old pods leave the Endpoints, then the routes
            last = cluster.access_log("ingress/roll", tail=20)
            return answered[0] >= mark + 50 and {line.rsplit('"', 2)[-2] for line in last} <= now

        await eventually(on_new_pods, timeout=20)
    finally:
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 10)
    assert len(now) == 2
    assert failures == []  # not one request failed while every pod was replaced


INGRESS_CHECKS: tuple[Check, ...] = (
    hosts_paths_and_default_backend, tls_terminates_with_the_certificate_chosen_by_sni,
    route_change_under_keep_alive_load_loses_no_request,
    rolling_update_behind_the_ingress_loses_no_request)
"""The Ingress checks, for tests parametrized over them (ids: their names)."""
