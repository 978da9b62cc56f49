"""Istio's traffic objects on the process runtime: Istio's own bookinfo samples load and
route through the built-in ingress gateway; a productpage -> reviews v1/v2/v3 -> ratings
shaped app (tiny servers that print their version) shows weighted splits, header
routes, faults, timeouts, retries and mirroring, with statistical bounds where the
behaviour is random."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import AsyncIterator

import pytest

import orchestra as oc
from orchestra.objects._registry import kind_info, load
from tests.net._http import get, version_of
from tests.traffic import _istio_checks as checks
from tests.traffic._istio_checks import (
    DOCS,
    GW_REF,
    bookinfo,
    dest,
    many,
    ready,
    samples,
    through_service,
    vs,
    within,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply(bookinfo())
        await c.apply(samples())
        await ready(c)
        yield c


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_bookinfo(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with containerd (tests/traffic/_istio_checks.py)."""
    await check(cluster)


def test_istio_samples_load_unchanged_in_every_served_version() -> None:
    kinds = []
    for f in sorted(DOCS.glob("istio-*.yaml")):
        kinds += [(o.kind, o.api_version) for o in load(f)]
    assert ("Gateway", "networking.istio.io/v1alpha3") in kinds
    assert ("DestinationRule", "networking.istio.io/v1") in kinds
    assert ("VirtualService", "networking.istio.io/v1alpha3") in kinds
    assert kind_info("gateways.networking.istio.io").group == "networking.istio.io"
    assert kind_info("gateways.gateway.networking.k8s.io").group == "gateway.networking.k8s.io"
    assert kind_info("virtualservices").kind == "VirtualService"
    assert kind_info("dr").kind == "DestinationRule"
    assert kind_info("se").kind == "ServiceEntry"


def test_validation_rejects_what_istio_rejects() -> None:
    with pytest.raises(oc.Invalid, match="at least one host"):
        load(json.dumps({"apiVersion": "networking.istio.io/v1beta1",
                         "kind": "VirtualService", "metadata": {"name": "x"},
                         "spec": {"http": [{"route": [dest("a")]}]}}))
    with pytest.raises(oc.Invalid, match="weight -1 < 0"):
        load(json.dumps(vs("x", [{"route": [dest("a", weight=-1)]}])))
    with pytest.raises(oc.Invalid, match="invalid duration"):
        load(json.dumps(vs("x", [{"route": [dest("a")], "timeout": "soon"}])))
    with pytest.raises(oc.Invalid, match='Duplicate value: "v1"'):
        load(json.dumps({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                         "metadata": {"name": "d"}, "spec": {"host": "a", "subsets": [
                             {"name": "v1"}, {"name": "v1"}]}}))
    with pytest.raises(oc.Invalid, match="Unsupported value"):
        load(json.dumps({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                         "metadata": {"name": "s"}, "spec": {
                             "hosts": ["api.example.com"], "resolution": "MAGIC"}}))
    (se,) = load(json.dumps({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                             "metadata": {"name": "s"}, "spec": {
                                 "hosts": ["api.example.com"], "location": "MESH_EXTERNAL",
                                 "resolution": "DNS",
                                 "ports": [{"number": 443, "name": "https",
                                            "protocol": "TLS"}]}}))
    assert se.kind == "ServiceEntry"


async def test_both_gateway_kinds_live_side_by_side(cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                         "metadata": {"name": "bookinfo-gateway"},
                         "spec": {"gatewayClassName": "orchestra", "listeners": [
                             {"name": "http", "protocol": "HTTP", "port": 8088}]}})
    istio = await cluster.get(GW_REF)
    k8s = await cluster.get("gateways.gateway.networking.k8s.io/bookinfo-gateway")
    assert istio.api_version.startswith("networking.istio.io/")
    assert k8s.api_version == "gateway.networking.k8s.io/v1"
    waited = await cluster.wait_for(GW_REF, lambda g: g is not None and bool(g.spec.servers),
                                    timeout=5)
    assert waited.api_version.startswith("networking.istio.io/")
    assert "istio: ingressgateway" in cluster.describe(GW_REF)
    assert "istio: ingressgateway" not in cluster.describe(
        "gateways.gateway.networking.k8s.io/bookinfo-gateway")
    await cluster.delete(GW_REF)
    assert (await cluster.get("gateways.gateway.networking.k8s.io/bookinfo-gateway")).kind \
        == "Gateway"
    with pytest.raises(oc.NotFound):
        await cluster.get(GW_REF)


async def test_mesh_routes_at_the_services_cluster_ip_and_falls_back_to_l4(
        cluster: oc.Cluster) -> None:
    before = await through_service(cluster, "reviews", lambda v: {"v1", "v2", "v3"} <= set(v))
    assert set(before) == {"v1", "v2", "v3"}  # L4 round robin over every pod
    await cluster.apply(load(DOCS / "istio-virtual-service-reviews-90-10.yaml"))  # unchanged
    await through_service(cluster, "reviews", lambda v: v and "v3" not in v)
    addr = cluster.endpoint("service/reviews")
    ip = (await cluster.get("service/reviews")).spec.cluster_ip
    assert addr == (ip, 9080)  # the Service's own ClusterIP:port
    n = 2000
    got = await asyncio.to_thread(many, addr, n)
    versions = [version_of(b) for s, b, _ in got if s == 200]
    assert len(versions) == n and set(versions) == {"v1", "v2"}
    assert within(versions.count("v2"), n, 0.10), versions.count("v2")
    stats = cluster.traffic_stats("virtualservice/reviews")
    assert sum(r["requests"] for r in stats.values()) >= n, stats
    await cluster.delete("virtualservice/reviews")
    after = await through_service(cluster, "reviews", lambda v: {"v1", "v2", "v3"} <= set(v))
    assert set(after) == {"v1", "v2", "v3"}  # back to L4


async def test_mesh_header_route_and_fault_samples(cluster: oc.Cluster) -> None:
    await checks.mesh_header_route_and_fault_samples(cluster)


async def test_mesh_source_labels_route_by_the_calling_pod(cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "networking.istio.io/v1beta1",
                         "kind": "VirtualService", "metadata": {"name": "reviews"},
                         "spec": {"hosts": ["reviews.default.svc.cluster.local"], "http": [
                             {"match": [{"sourceLabels": {"app": "productpage"}}],
                              "route": [dest("reviews", "v2")]},
                             {"route": [dest("reviews", "v1")]}]}})
    host = await through_service(cluster, "reviews", lambda v: set(v) == {"v1"})
    assert set(host) == {"v1"}  # the host is no productpage pod
    (pod,) = await cluster.list("pods", selector="app=productpage")
    addr = cluster.endpoint("service/reviews")

    def from_pod() -> set[str]:
        out = set()
        for _ in range(10):  # the caller's address is the productpage pod's
            conn = http.client.HTTPConnection(*addr, timeout=5,
                                              source_address=(pod.status.pod_ip, 0))
            try:
                out.add(version_of(get(addr, "/", conn=conn)[2]))
            finally:
                conn.close()
        return out

    assert await asyncio.to_thread(from_pod) == {"v2"}


async def test_mesh_tcp_routes_by_port_split_connections_by_weight(
        cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "networking.istio.io/v1alpha3",
                         "kind": "VirtualService", "metadata": {"name": "ratings-tcp"},
                         "spec": {"hosts": ["ratings"], "tcp": [
                             {"match": [{"port": 9999}], "route": [dest("productpage")]},
                             {"match": [{"port": 9080}], "route": [
                                 dest("reviews", "v2", 50), dest("reviews", "v3", 50)]}]}})
    # ratings' ClusterIP:9080 (ratings is v1) now forwards connections, raw TCP, to
    # reviews v2 and v3
    seen_versions = await through_service(cluster, "ratings",
                                          lambda v: set(v) == {"v2", "v3"})
    assert set(seen_versions) == {"v2", "v3"}
    assert seen_versions.count("v2") == seen_versions.count("v3")  # round robin 1:1
    await cluster.delete("virtualservice/ratings-tcp")
    back = await through_service(cluster, "ratings", lambda v: set(v) == {"v1"})
    assert set(back) == {"v1"}  # ratings itself again, at L4


async def test_get_prints_istios_printer_columns(cluster: oc.Cluster) -> None:
    await cluster.apply(load(DOCS / "istio-virtual-service-reviews-90-10.yaml"))
    vss = await cluster.get_table("virtualservices", "default")
    assert vss.headers == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert [r[:3] for r in vss.rows] == [["bookinfo", '["bookinfo-gateway"]', '["*"]'],
                                         ["reviews", "", '["reviews"]']]
    drs = await cluster.get_table("dr", "default")
    assert [r[:2] for r in drs.rows][:2] == [["details", "details"],
                                              ["productpage", "productpage"]]
    gws = await cluster.get_table("gateways.networking.istio.io", "default")
    assert [r[0] for r in gws.rows] == ["bookinfo-gateway"]


async def test_deleting_a_namespace_deletes_its_istio_objects() -> None:
    async with oc.Cluster(nodes=1) as c:
        await c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        objs = load(DOCS / "istio-bookinfo-gateway.yaml")
        await c.apply(objs, namespace="shop")
        await c.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                       "metadata": {"name": "bookinfo-gateway", "namespace": "default"},
                       "spec": {"gatewayClassName": "orchestra", "listeners": [
                           {"name": "http", "protocol": "HTTP", "port": 8089}]}})
        assert (await c.get(GW_REF, namespace="shop")).spec.selector
        await c.delete("namespace/shop")
        await c.wait_for("namespace/shop", "Deleted", timeout=10)
        for ref in (GW_REF, "virtualservice/bookinfo"):
            with pytest.raises(oc.NotFound):
                await c.get(ref, namespace="shop")
        kept = await c.get("gateways.gateway.networking.k8s.io/bookinfo-gateway")
        assert kept.spec.gateway_class_name == "orchestra"
