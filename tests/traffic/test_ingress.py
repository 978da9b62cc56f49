"""Ingress on the process runtime: a small multi-version app behind the built-in
controller (class ``orchestra``): hosts, paths, defaultBackend, TLS with SNI, status,
events, statistics, and a route change under keep-alive load with zero failures."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import AsyncIterator

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually
from tests.net._http import get, version_of
from tests.traffic import _route_checks as checks
from tests.traffic._route_checks import ingress, path, ready, reviews, served

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply(reviews())
        await ready(c)
        yield c


@pytest.mark.parametrize("check", checks.INGRESS_CHECKS, ids=lambda c: c.__name__)
async def test_ingress(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with containerd (tests/traffic/_route_checks.py)."""
    await check(cluster)


async def test_the_builtin_class_is_the_default(cluster: oc.Cluster) -> None:
    cls = await cluster.get("ingressclass/orchestra")
    assert cls.spec.controller == "orchestra.dev/ingress"
    assert cls.metadata.annotations["ingressclass.kubernetes.io/is-default-class"] == "true"


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
