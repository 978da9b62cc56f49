"""Ingress on the process runtime: a small multi-version app behind the built-in
controller (class ``orchestra``): hosts, paths, defaultBackend, TLS with SNI, status,
events, statistics, and a route change under keep-alive load with zero failures."""

from __future__ import annotations

import asyncio
import base64
import http.client
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually
from tests.net._http import APP, get, https_get, make_cert, peer_cert, same_cert, version_of

pytestmark = pytest.mark.anyio


def app(version: str, name: str = "reviews") -> list[dict[str, Any]]:
    """A Deployment running the versioned app and a Service ``<name>-<version>``."""
    labels = {"app": name, "version": version}
    container = {"name": "app", "image": "python:3",
                 "command": [sys.executable, str(APP), "--version", version, "--port", "8080"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                    "periodSeconds": 1}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": f"{name}-{version}"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container],
                                        "terminationGracePeriodSeconds": 1}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-{version}"},
         "spec": {"selector": labels,
                  "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}},
    ]


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply([*app("v1"), *app("v2"), *app("v3")])
        for v in ("v1", "v2", "v3"):
            await c.wait_for(f"deployment/reviews-{v}", "Available", timeout=30)
            # Available says the pod is Ready; its address reaches Endpoints just after
            await c.wait_for(f"endpoints/reviews-{v}", lambda e: any(
                s.addresses for s in e.subsets or ()), timeout=30)
        yield c


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


async def test_the_builtin_class_is_the_default(cluster: oc.Cluster) -> None:
    cls = await cluster.get("ingressclass/orchestra")
    assert cls.spec.controller == "orchestra.dev/ingress"
    assert cls.metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"


async def test_hosts_paths_and_default_backend(cluster: oc.Cluster) -> None:
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


async def test_no_rule_is_404_and_missing_service_is_503_with_an_event(
        cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("partial", {"rules": [{"host": "p.example.com", "http": {
        "paths": [path("/ok", "reviews-v1"), path("/gone", "missing")]}}]}))
    addr = await served(cluster, "partial")

    def run() -> None:
        assert get(addr, "/ok", host="p.example.com")[0] == 200
        assert get(addr, "/gone", host="p.example.com")[0] == 503
        assert get(addr, "/", host="p.example.com")[0] == 404
        assert get(addr, "/ok", host="q.example.com")[0] == 404

    await asyncio.to_thread(run)
    events = await eventually(lambda: [e for e in cluster.events("ingress/partial")
                                       if e.reason == "ServiceNotFound"])
    assert events[0].type == "Warning"
    assert events[0].message == 'service "default/missing" not found'
    # the Service appears: the route serves it, with no restart of anything
    await cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "missing"},
                         "spec": {"selector": {"app": "reviews", "version": "v2"},
                                  "ports": [{"port": 80, "targetPort": "http"}]}})

    def now_v2() -> bool:
        status, _, body = get(addr, "/gone", host="p.example.com")
        return status == 200 and version_of(body) == "v2"

    assert await eventually(lambda: now_v2())


async def test_tls_terminates_with_the_certificate_chosen_by_sni(cluster: oc.Cluster) -> None:
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
        assert version_of(body) == "v2"

    await asyncio.to_thread(run)
    events = await eventually(lambda: [e for e in cluster.events("ingress/secure")
                                       if e.reason == "SecretNotFound"])
    assert events[0].message == 'secret "default/c-tls" not found'


async def test_route_change_under_keep_alive_load_loses_no_request(
        cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("canary", {"rules": [{"host": "c.example.com", "http": {
        "paths": [path("/", "reviews-v1")]}}]}))
    addr = await served(cluster, "canary")
    failures: list[str] = []
    seen: list[list[str]] = [[] for _ in range(4)]
    stop = threading.Event()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(*addr, timeout=5)
        try:
            for _ in range(3000):  # bounded; stops early once told
                if stop.is_set():
                    return
                try:
                    status, _, body = get(addr, "/", host="c.example.com", conn=conn)
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))
                    conn.close()
                    continue
                if status != 200:
                    failures.append(str(status))
                else:
                    seen[i].append(version_of(body))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
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


async def test_rolling_update_behind_the_ingress_loses_no_request(cluster: oc.Cluster) -> None:
    await cluster.apply(ingress("roll", {"rules": [{"host": "r.example.com", "http": {
        "paths": [path("/", "reviews-v1")]}}]}))
    await cluster.scale("deployment/reviews-v1", 2)
    await cluster.wait_for("deployment/reviews-v1", "Available", timeout=30)
    addr = await served(cluster, "roll")
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection(*addr, timeout=5)
        try:
            for _ in range(5000):  # bounded; stops early once told
                if stop.is_set():
                    return
                try:
                    status, _, _ = get(addr, "/", host="r.example.com", conn=conn)
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))
                    conn.close()
                    continue
                if status != 200:
                    failures.append(str(status))
                answered[0] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(3)]
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
        mark = answered[0]
        await eventually(lambda: answered[0] >= mark + 50, timeout=20)
    finally:
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 10)
    assert answered[0] > 0
    assert failures == []
    # the last requests went to the new pods only
    pods = await cluster.list("pods", selector="app=reviews,version=v1")
    now = {f"{p.status.pod_ip}:8080" for p in pods if p.metadata.deletion_timestamp is None}
    assert {line.rsplit('"', 2)[-2] for line in cluster.access_log("ingress/roll", tail=20)} \
        <= now
