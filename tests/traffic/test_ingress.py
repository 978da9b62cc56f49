"""Ingress on the process runtime: a small multi-version app behind the built-in
controller (class ``orchestra``): hosts, paths, defaultBackend, TLS with SNI, status,
events, statistics, and a route change under keep-alive load with zero failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually
from tests.net._http import get, version_of
from tests.traffic._ingress_checks import INGRESS_CHECKS, ingress, path, served
from tests.traffic._route_checks import Check, ready, reviews

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply(reviews())
        await ready(c)
        yield c


@pytest.mark.parametrize("check", INGRESS_CHECKS, ids=lambda c: c.__name__)
async def test_ingress(cluster: oc.Cluster, check: Check) -> None:
    """The suite shared with containerd (tests/traffic/_ingress_checks.py)."""
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
