"""The Ingress and Gateway API suite, shared by every runtime it runs on: the versioned
app as ``reviews-v1``/``v2``/``v3`` (a Deployment and a Service each) behind the built-in
Ingress controller (its checks in :mod:`tests.traffic._ingress_checks`) and a Gateway
``web``, whose checks, here, route by path, header, query and method, with weights,
header modifiers, redirects, rewrites, request mirrors (bodies and all) and TLS, and read
the status conditions with their reasons. Each check starts from what :func:`reviews` and
:func:`web_gateway` apply and :func:`ready` waited for."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import orchestra as oc
from tests.net._http import (
    Container,
    get,
    https_get,
    make_cert,
    peer_cert,
    python_app,
    same_cert,
    seen,
    version_of,
)

GW = "gateway.networking.k8s.io/v1"
GATEWAY_REF = "gateways.gateway.networking.k8s.io/web"
VERSIONS = ("v1", "v2", "v3")


def app(version: str, name: str = "reviews",
        container: Container = python_app) -> list[dict[str, Any]]:
    """A Deployment running the versioned app and a Service ``<name>-<version>``."""
    labels = {"app": name, "version": version}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": f"{name}-{version}"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container(version, 8080)],
                                        "terminationGracePeriodSeconds": 1}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-{version}"},
         "spec": {"selector": labels,
                  "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}},
    ]


def reviews(container: Container = python_app) -> list[dict[str, Any]]:
    return [o for v in VERSIONS for o in app(v, container=container)]


def web_gateway() -> dict[str, Any]:
    return {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "web"},
            "spec": {"gatewayClassName": "orchestra", "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80},
                {"name": "shop", "protocol": "HTTP", "port": 80,
                 "hostname": "*.shop.example.com"},
                {"name": "open", "protocol": "HTTP", "port": 8081,
                 "allowedRoutes": {"namespaces": {"from": "All"}}}]}}


async def ready(cluster: oc.Cluster) -> None:
    for v in VERSIONS:
        await cluster.wait_for(f"deployment/reviews-{v}", "Available", timeout=60)
        # Available says the pod is Ready; its address reaches Endpoints just after
        await cluster.wait_for(f"endpoints/reviews-{v}", lambda e: any(
            s.addresses for s in e.subsets or ()), timeout=30)


# -- Gateway API --------------------------------------------------------------------------

def route(name: str, rules: list[dict[str, Any]], *, parents: list[dict[str, Any]] | None = None,
          hostnames: list[str] | None = None, namespace: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": parents or [{"name": "web", "namespace": "default"}],
                            "rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": GW, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ref(svc: str, weight: int | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": svc, "port": 80, **kw}
    if weight is not None:
        out["weight"] = weight
    return out


def cond(conds: Any, type_: str) -> tuple[str, str]:
    c = next(c for c in conds if c.type == type_)
    return c.status, c.reason


async def parent_conditions(cluster: oc.Cluster, name: str, namespace: str = "default",
                            index: int = 0) -> Any:
    r = await cluster.wait_for(f"httproute/{name}", lambda r: bool(
        r.status and len(r.status.parents) > index), timeout=10, namespace=namespace)
    return r.status.parents[index].conditions


async def class_and_gateway_status(cluster: oc.Cluster) -> None:
    cls = await cluster.wait_for("gatewayclass/orchestra",
                                 lambda c: bool(c.status and c.status.conditions), timeout=10)
    assert cls.spec.controller_name == "orchestra.dev/gateway-controller"
    assert cond(cls.status.conditions, "Accepted") == ("True", "Accepted")
    await cluster.apply(route("r", [{"backendRefs": [ref("reviews-v1")]}]))
    gw = await cluster.wait_for(GATEWAY_REF, lambda g: bool(
        g.status and g.status.listeners and g.status.listeners[0].attached_routes == 1),
        timeout=10)
    assert cond(gw.status.conditions, "Accepted") == ("True", "Accepted")
    assert cond(gw.status.conditions, "Programmed") == ("True", "Programmed")
    assert [(a.type, a.value) for a in gw.status.addresses] == [("IPAddress", "127.0.0.1")]
    by_name = {ls.name: ls for ls in gw.status.listeners}
    assert by_name["http"].attached_routes == 1
    assert by_name["shop"].attached_routes == 1  # no route hostname: every listener
    assert by_name["open"].attached_routes == 1
    for ls in gw.status.listeners:
        assert [(k.group, k.kind) for k in ls.supported_kinds] == [
            ("gateway.networking.k8s.io", "HTTPRoute")]
        assert cond(ls.conditions, "Accepted") == ("True", "Accepted")
        assert cond(ls.conditions, "Programmed") == ("True", "Programmed")
        assert cond(ls.conditions, "ResolvedRefs") == ("True", "ResolvedRefs")
        assert cond(ls.conditions, "Conflicted") == ("False", "NoConflicts")
    conds = await parent_conditions(cluster, "r")
    assert cond(conds, "Accepted") == ("True", "Accepted")
    assert cond(conds, "ResolvedRefs") == ("True", "ResolvedRefs")
    assert all(c.observed_generation == 1 and c.last_transition_time for c in conds)
    addr = cluster.endpoint(GATEWAY_REF, 80)
    status, _, body = await asyncio.to_thread(get, addr, "/", host="any.example.com")
    assert status == 200 and version_of(body) == "v1"


async def matches_filters_and_weights(cluster: oc.Cluster) -> None:
    await cluster.apply(route("shop", [
        {"backendRefs": [ref("reviews-v1")]},  # first, yet it matches last (precedence)
        {"matches": [{"headers": [{"name": "End-User", "value": "jason"}]}],
         "backendRefs": [ref("reviews-v2")]},
        {"matches": [{"queryParams": [{"name": "version", "value": "3"}]},
                     {"method": "DELETE"}],
         "backendRefs": [ref("reviews-v3")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {
             "scheme": "https", "path": {"type": "ReplacePrefixMatch",
                                         "replacePrefixMatch": "/new"},
             "statusCode": 301}}]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/app"}}],
         "filters": [{"type": "URLRewrite", "urlRewrite": {
             "hostname": "internal.example.com",
             "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}},
                     {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                         "set": [{"name": "x-env", "value": "canary"}],
                         "add": [{"name": "x-added", "value": "1"}],
                         "remove": ["x-secret"]}},
                     {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                         "set": [{"name": "x-served-by", "value": "orchestra"}]}}],
         "backendRefs": [ref("reviews-v1")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/split"}}],
         "backendRefs": [ref("reviews-v1", 80), ref("reviews-v2", 20), ref("reviews-v3", 0)]},
    ], hostnames=["bookinfo.example.com"]))
    conds = await parent_conditions(cluster, "shop")
    assert cond(conds, "Accepted") == ("True", "Accepted")
    addr = cluster.endpoint(GATEWAY_REF, 80)
    host = "bookinfo.example.com"

    def run() -> dict[str, int]:
        assert version_of(get(addr, "/", host=host)[2]) == "v1"
        assert version_of(get(addr, "/", host=host, headers={"end-user": "jason"})[2]) == "v2"
        assert version_of(get(addr, "/p?version=3", host=host)[2]) == "v3"
        assert version_of(get(addr, "/p", host=host, method="DELETE")[2]) == "v3"
        assert get(addr, "/", host="other.example.com")[0] == 404
        status, hdrs, _ = get(addr, "/old/page?q=1", host=host)
        assert status == 301
        assert hdrs["location"] == "https://bookinfo.example.com/new/page?q=1"
        status, hdrs, body = get(addr, "/app/items", host=host, headers={"x-secret": "s"})
        info = seen(body)
        assert (info["path"], info["host"]) == ("/items", "internal.example.com")
        assert info["headers"]["x-env"] == "canary" and info["headers"]["x-added"] == "1"
        assert "x-secret" not in info["headers"]
        assert hdrs["x-served-by"] == "orchestra"
        counts = {"v1": 0, "v2": 0, "v3": 0}
        conn = http.client.HTTPConnection(*addr, timeout=5)
        try:
            for _ in range(1000):
                counts[version_of(get(addr, "/split", host=host, conn=conn)[2])] += 1
        finally:
            conn.close()
        return counts

    counts = await asyncio.to_thread(run)
    # 1000 draws at p=0.2: mean 200, sd 12.6; +-5 sd. Weight 0 gets nothing.
    assert 137 <= counts["v2"] <= 263 and counts["v3"] == 0, counts
    stats = cluster.traffic_stats("httproute/shop")
    assert stats["httproute/default/shop/rule5"]["requests"] == 1000
    assert {b["cluster"] for b in stats["httproute/default/shop/rule5"]["backends"].values()} \
        == {"default/reviews-v1:80", "default/reviews-v2:80"}


async def route_conditions_and_reference_grants(cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "other"}})
    await cluster.apply(route("missing", [{"backendRefs": [ref("nope")]}]))
    conds = await parent_conditions(cluster, "missing")
    assert cond(conds, "Accepted") == ("True", "Accepted")
    assert cond(conds, "ResolvedRefs") == ("False", "BackendNotFound")
    addr = cluster.endpoint(GATEWAY_REF, 80)
    assert (await asyncio.to_thread(get, addr, "/", host="x"))[0] == 500

    await cluster.apply(route("nosection", [{"backendRefs": [ref("reviews-v1")]}],
                              parents=[{"name": "web", "sectionName": "nope"}]))
    conds = await parent_conditions(cluster, "nosection")
    assert cond(conds, "Accepted") == ("False", "NoMatchingParent")

    await cluster.apply(route("badhost", [{"backendRefs": [ref("reviews-v1")]}],
                              parents=[{"name": "web", "sectionName": "shop"}],
                              hostnames=["elsewhere.example.org"]))
    conds = await parent_conditions(cluster, "badhost")
    assert cond(conds, "Accepted") == ("False", "NoMatchingListenerHostname")

    # from another namespace: only the listener that allows All namespaces takes it
    await cluster.apply(route("remote", [{
        "matches": [{"path": {"type": "PathPrefix", "value": "/remote"}}],
        "backendRefs": [ref("reviews-v2", namespace="default")]}], namespace="other",
        parents=[{"name": "web", "namespace": "default", "sectionName": "http"},
                 {"name": "web", "namespace": "default", "sectionName": "open"}]))
    c0 = await parent_conditions(cluster, "remote", "other", 0)
    c1 = await parent_conditions(cluster, "remote", "other", 1)
    assert cond(c0, "Accepted") == ("False", "NotAllowedByListeners")
    assert cond(c1, "Accepted") == ("True", "Accepted")
    assert cond(c1, "ResolvedRefs") == ("False", "RefNotPermitted")
    await cluster.apply({"apiVersion": "gateway.networking.k8s.io/v1beta1",
                         "kind": "ReferenceGrant",
                         "metadata": {"name": "from-other", "namespace": "default"},
                         "spec": {"from": [{"group": "gateway.networking.k8s.io",
                                            "kind": "HTTPRoute", "namespace": "other"}],
                                  "to": [{"group": "", "kind": "Service"}]}})

    async def resolved() -> bool:
        r = await cluster.get("httproute/remote", namespace="other")
        return cond(r.status.parents[1].conditions, "ResolvedRefs") == ("True", "ResolvedRefs")

    for _ in range(200):
        if await resolved():
            break
        await asyncio.sleep(0.05)
    assert await resolved()
    open_addr = cluster.endpoint(GATEWAY_REF, 8081)
    status, _, body = await asyncio.to_thread(get, open_addr, "/remote", host="x")
    assert status == 200 and version_of(body) == "v2"


async def https_listener_terminates_tls_from_a_secret(cluster: oc.Cluster) -> None:
    crt, key = make_cert("secure.example.com")
    await cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": "secure-tls"},
                         "data": {"tls.crt": base64.b64encode(crt).decode(),
                                  "tls.key": base64.b64encode(key).decode()}})
    await cluster.apply([
        {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "tls"},
         "spec": {"gatewayClassName": "orchestra", "listeners": [
             {"name": "https", "protocol": "HTTPS", "port": 8443,
              "hostname": "secure.example.com",
              "tls": {"mode": "Terminate", "certificateRefs": [{"name": "secure-tls"}]}},
             {"name": "broken", "protocol": "HTTPS", "port": 8444,
              "tls": {"certificateRefs": [{"name": "absent"}]}}]}},
        route("secure", [{"backendRefs": [ref("reviews-v3")]}],
              parents=[{"name": "tls", "sectionName": "https"}])])
    gw = await cluster.wait_for("gateways.gateway.networking.k8s.io/tls", lambda g: bool(
        g.status and g.status.listeners and g.status.listeners[0].attached_routes == 1),
        timeout=10)
    by_name = {ls.name: ls for ls in gw.status.listeners}
    assert cond(by_name["https"].conditions, "ResolvedRefs") == ("True", "ResolvedRefs")
    assert cond(by_name["broken"].conditions, "ResolvedRefs") == (
        "False", "InvalidCertificateRef")
    assert cond(by_name["broken"].conditions, "Programmed") == ("False", "Invalid")
    addr = cluster.endpoint("gateways.gateway.networking.k8s.io/tls", 8443)

    def run() -> None:
        assert same_cert(peer_cert(addr, "secure.example.com"), crt)
        status, body = https_get(addr, "secure.example.com", cafile_pem=crt)
        assert status == 200 and version_of(body) == "v3"

    await asyncio.to_thread(run)
    with pytest.raises(ValueError, match="not programmed"):
        cluster.endpoint("gateways.gateway.networking.k8s.io/tls", 8444)


async def request_mirror_copies_requests_with_their_body(cluster: oc.Cluster) -> None:
    await cluster.apply(route("mirror", [{
        "backendRefs": [ref("reviews-v1")],
        "filters": [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "reviews-v2", "port": 80}}}]}]))
    addr = cluster.endpoint(GATEWAY_REF, 80)
    bodies = [random.randbytes(30_000) for _ in range(5)]

    def posts() -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + 10
        while get(addr, "/warmup")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        return [get(addr, "/copied", method="POST", body=b)[::2] for b in bodies]

    got = await asyncio.to_thread(posts)
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [(s, version_of(b), seen(b)["sha"]) for s, b in got] == [
        (200, "v1", sha) for sha in shas]  # the answer is the route's own
    shadow = cluster.endpoint("service/reviews-v2", 80)
    mirrored: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # mirrors are fire-and-forget: wait for them
        mirrored = json.loads((await asyncio.to_thread(get, shadow, "/bodies"))[2]).get(
            "/copied", [])
        if len(mirrored) >= 5:
            break
        await asyncio.sleep(0.05)
    assert sorted(mirrored) == sorted(shas)


Check = Callable[[oc.Cluster], Awaitable[None]]
GATEWAY_CHECKS: tuple[Check, ...] = (
    class_and_gateway_status, matches_filters_and_weights,
    route_conditions_and_reference_grants, https_listener_terminates_tls_from_a_secret,
    request_mirror_copies_requests_with_their_body)
"""The Gateway API checks, for tests parametrized over them (ids: their names); they need
:func:`web_gateway` applied."""

