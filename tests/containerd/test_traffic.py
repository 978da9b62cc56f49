"""Ingress and Gateway API on containerd with the bridge network: the L7 data plane runs
in the host's namespace and reaches pods on the bridge (busybox httpd answering
``<version> <pod>``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from test_cluster import options, service, web  # type: ignore[import-not-found]

import orchestra as oc

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bridge(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1,
                          runtime_options=options(containerd_socket, busybox_archive)) as c:
        await c.apply([web("v1", replicas=1, version="v1"), service("v1"),
                       web("v2", replicas=1, version="v2"), service("v2")])
        for v in ("v1", "v2"):
            await c.wait_for(f"deployment/{v}", "Available", timeout=60)
            # Available says the pod is Ready; its address reaches Endpoints just after
            await c.wait_for(f"endpoints/{v}", lambda e: any(
                s.addresses for s in e.subsets or ()), timeout=30)
        yield c


async def _version(addr: tuple[str, int], host: str, **headers: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(f"http://{addr[0]}:{addr[1]}/", headers={"Host": host, **headers})
        assert r.status_code == 200, r.text
        return r.text.split()[0]


async def test_ingress_and_httproute_reach_bridge_pods(bridge: oc.Cluster) -> None:
    await bridge.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "metadata": {"name": "web"},
                        "spec": {"rules": [
                            {"host": f"{v}.example.com", "http": {"paths": [
                                {"path": "/", "pathType": "Prefix", "backend": {"service": {
                                    "name": v, "port": {"number": 80}}}}]}}
                            for v in ("v1", "v2")]}})
    await bridge.wait_for("ingress/web", lambda i: bool(i.status and i.status.load_balancer
                                                        and i.status.load_balancer.ingress),
                          timeout=10)
    addr = bridge.endpoint("ingress/web", 80)
    assert await _version(addr, "v1.example.com") == "v1"
    assert await _version(addr, "v2.example.com") == "v2"

    gw = "gateway.networking.k8s.io/v1"
    await bridge.apply([
        {"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "gw"},
         "spec": {"gatewayClassName": "orchestra",
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": 8088}]}},
        {"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "canary"},
         "spec": {"parentRefs": [{"name": "gw"}], "rules": [
             {"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
              "backendRefs": [{"name": "v2", "port": 80}]},
             {"backendRefs": [{"name": "v1", "port": 80}]}]}}])
    await bridge.wait_for("gateways.gateway.networking.k8s.io/gw", lambda g: bool(
        g.status and g.status.listeners and g.status.listeners[0].attached_routes == 1),
        timeout=10)
    gaddr = bridge.endpoint("gateways.gateway.networking.k8s.io/gw", 8088)
    for _ in range(3):
        assert await _version(gaddr, "any") == "v1"
        assert await _version(gaddr, "any", **{"end-user": "jason"}) == "v2"
