"""The Istio traffic suite, shared by every runtime it runs on: a productpage -> reviews
v1/v2/v3 -> ratings shaped app (tiny servers that print their version, see
``tests/net/_http.py``'s ``python_app`` and ``tests/containerd/_bookinfo.py``'s
``shell_app``), Istio's bookinfo samples, and the checks (weighted splits, header routes,
faults, timeouts, retries, mirroring, consistent hashing, outlier detection), with
statistical bounds where the behaviour is random. Each check starts from what
:func:`bookinfo` applies and :func:`ready` waited for."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects._registry import load
from tests.net._http import Container, get, https_get, make_cert, python_app, seen, version_of

DOCS = Path(__file__).resolve().parent.parent / "manifests" / "docs"
GW_REF = "gateways.networking.istio.io/bookinfo-gateway"
PORT = 9080
DEPLOYMENTS = ("productpage-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1")


def app(name: str, version: str, container: Container = python_app) -> list[dict[str, Any]]:
    labels = {"app": name, "version": version}
    return [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": f"{name}-{version}"},
             "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [container(version, PORT)],
                                            "terminationGracePeriodSeconds": 1}}}}]


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}}


def bookinfo(container: Container = python_app) -> list[Any]:
    """The app's Deployments and Services; :func:`samples` adds Istio's objects."""
    apps = [app(*d.split("-"), container=container) for d in DEPLOYMENTS]
    return [*(o for objs in apps for o in objs),
            service("productpage"), service("reviews"), service("ratings")]


def samples() -> list[Any]:
    """Istio's bookinfo DestinationRules and its gateway with its VirtualService."""
    return [*load(DOCS / "istio-destination-rule-all.yaml"),
            *load(DOCS / "istio-bookinfo-gateway.yaml")]


async def ready(cluster: oc.Cluster) -> None:
    for d in DEPLOYMENTS:
        await cluster.wait_for(f"deployment/{d}", "Available", timeout=60)
    want = {"productpage": 1, "reviews": 3, "ratings": 1}
    for svc, n in want.items():  # Available can precede the Endpoints update
        await cluster.wait_for(f"endpoints/{svc}", lambda e, n=n: sum(
            len(s.addresses or ()) for s in e.subsets or ()) == n, timeout=30)


def through_gateway(path: str, name: str | None = None) -> list[Any]:
    """A docs sample made to serve at the bookinfo gateway too (``gateways``: the
    gateway and mesh), hosts unchanged plus ``*``: the ingress reaches the same rules."""
    out = []
    for obj in load(DOCS / path):
        d = obj.to_dict()
        if d["kind"] == "VirtualService":
            d["spec"]["gateways"] = ["bookinfo-gateway", "mesh"]
            d["spec"]["hosts"] = [*d["spec"]["hosts"], "*"]
            d["metadata"]["name"] = name or d["metadata"]["name"]
        out.append(d)
    return out


def vs(name: str, http: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name},
            "spec": {"hosts": ["*"], "gateways": ["bookinfo-gateway"], "http": http}}


def dest(host: str, subset: str | None = None, weight: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"destination": {"host": host}}
    if subset:
        d["destination"]["subset"] = subset
    if weight is not None:
        d["weight"] = weight
    return d


def rule(host: str, policy: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": name or host},
            "spec": {"host": host, "trafficPolicy": policy}}


async def gateway(cluster: oc.Cluster, path: str = "/", *, want: int | None = 200,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The gateway's answer to ``path``, waiting (bounded) until it is ``want``."""
    deadline = time.monotonic() + 10
    while True:
        try:
            addr = cluster.endpoint(GW_REF, 80)
            status, _, body = await asyncio.to_thread(get, addr, path, headers=headers)
        except (ValueError, OSError):
            status, body = 0, b""
        if want is None or status == want or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.05)


def many(addr: tuple[str, int], n: int, path: str = "/",
         headers: dict[str, str] | None = None) -> list[tuple[int, bytes, float]]:
    """``n`` requests on one kept-alive connection: status, body, seconds each."""
    conn = http.client.HTTPConnection(*addr, timeout=10)
    out = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            status, _, body = get(addr, path, headers=headers, conn=conn)
            out.append((status, body, time.monotonic() - t0))
    finally:
        conn.close()
    return out


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """Whether ``count`` of ``n`` is within ``sigmas`` binomial deviations of ``n*p``."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


async def to(cluster: oc.Cluster, host: str, policy: dict[str, Any]) -> None:
    """Route the gateway's ``/`` to ``host`` (every version) under ``policy``."""
    if cluster.store.get_or_none("VirtualService", "bookinfo") is not None:
        await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(rule(host, policy))
    await cluster.apply(vs("all", [{"route": [{"destination": {"host": host}}]}]))
    await gateway(cluster, "/")


async def pod_addr(cluster: oc.Cluster, deployment: str) -> tuple[str, int]:
    pods = await cluster.list("pods", selector=f"app=reviews,version={deployment}")
    return (pods[0].status.pod_ip, PORT)


async def counts(cluster: oc.Cluster, svc: str) -> dict[str, int]:
    """How many requests each path got, as the (single) pod behind ``svc`` counted."""
    _, _, body = await asyncio.to_thread(get, cluster.endpoint(f"service/{svc}"), "/counts")
    out: dict[str, int] = json.loads(body)
    return out


Caller = Callable[[oc.Cluster, str, dict[str, str] | None], Awaitable[list[str]]]
"""Sends 30 requests for ``/`` to a Service (a connection each: L4 balances connections)
with those headers; returns the version of each answer, or its status when not 200."""


async def from_host(cluster: oc.Cluster, svc: str,
                    headers: dict[str, str] | None) -> list[str]:
    """A :data:`Caller` from the embedding process, at ``cluster.endpoint``."""
    addr = cluster.endpoint(f"service/{svc}")

    def batch() -> list[tuple[int, bytes]]:
        return [get(addr, "/", headers=headers)[::2] for _ in range(30)]

    return [version_of(b) if s == 200 else str(s) for s, b in await asyncio.to_thread(batch)]


async def through_service(cluster: oc.Cluster, svc: str, done: Any,
                          headers: dict[str, str] | None = None,
                          caller: Caller = from_host) -> list[str]:
    """What answers at the Service, polled (bounded) until ``done`` holds for the
    answers of one :data:`Caller` batch."""
    deadline = time.monotonic() + 10
    while True:
        try:
            versions = await caller(cluster, svc, headers)
        except (OSError, ValueError, http.client.HTTPException):
            versions = []
        if done(versions) or time.monotonic() > deadline:
            return versions
        await asyncio.sleep(0.05)


# -- the checks ---------------------------------------------------------------------------

async def bookinfo_gateway_sample_routes_productpage(cluster: oc.Cluster) -> None:
    status, body = await gateway(cluster, "/productpage")
    assert status == 200 and seen(body)["path"] == "/productpage"
    assert version_of(body) == "v1"
    status, body = await gateway(cluster, "/static/css/app.css")
    assert status == 200 and seen(body)["path"] == "/static/css/app.css"
    status, _ = await gateway(cluster, "/reviews", want=404)
    assert status == 404  # no route for it


async def weighted_split_90_10(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(through_gateway("istio-virtual-service-reviews-90-10.yaml"))
    status, _ = await gateway(cluster, "/", want=200)
    assert status == 200
    n = 2000
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), n)
    versions = [version_of(b) for s, b, _ in got if s == 200]
    assert len(versions) == n
    v2 = versions.count("v2")
    assert versions.count("v1") + v2 == n
    assert within(v2, n, 0.10), v2


async def header_match_sends_jason_to_v2(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(through_gateway("istio-virtual-service-reviews-test-v2.yaml"))
    await gateway(cluster, "/")
    addr = cluster.endpoint(GW_REF, 80)
    jason = await asyncio.to_thread(many, addr, 20, "/", {"end-user": "jason"})
    others = await asyncio.to_thread(many, addr, 20, "/", {"end-user": "mary"})
    anon = await asyncio.to_thread(many, addr, 20, "/")
    assert {version_of(b) for _, b, _ in jason} == {"v2"}
    assert {version_of(b) for _, b, _ in others} == {"v1"}
    assert {version_of(b) for _, b, _ in anon} == {"v1"}


async def fault_abort_sample_and_at_half(cluster: oc.Cluster, n: int = 2000) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(through_gateway("istio-virtual-service-ratings-test-abort.yaml"))
    status, body = await gateway(cluster, "/", headers={"end-user": "jason"}, want=500)
    assert status == 500 and body == b"fault filter abort"
    status, body = await gateway(cluster, "/", want=200)
    assert version_of(body) == "v1"
    await cluster.apply(vs("ratings", [{"fault": {"abort": {
        "httpStatus": 418, "percentage": {"value": 50}}}, "route": [dest("ratings", "v1")]}]))
    await gateway(cluster, "/", want=418)
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), n)
    codes = [s for s, _, _ in got]
    assert set(codes) == {200, 418}
    assert within(codes.count(418), n, 0.5), codes.count(418)


async def fixed_delay_is_measured(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("delay", [{"fault": {"delay": {
        "fixedDelay": "0.3s", "percentage": {"value": 100.0}}},
        "route": [dest("ratings")]}]))
    await gateway(cluster, "/")
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 3)
    assert all(s == 200 and took >= 0.3 for s, _, took in got), got


async def timeout_cuts_a_slow_backend(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("slow", [{"timeout": "0.2s", "route": [dest("ratings")]}]))
    await gateway(cluster, "/")
    status, body = await gateway(cluster, "/slow/2000", want=None)
    assert status == 504 and body == b"upstream request timeout"
    status, _ = await gateway(cluster, "/slow/10", want=None)
    assert status == 200


async def retries_hide_a_backend_failing_every_other_request(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("flaky", [{"match": [{"uri": {"exact": "/flaky"}}],
                                      "retries": {"attempts": 3, "retryOn": "5xx"},
                                      "route": [dest("ratings")]},
                                     {"route": [dest("reviews", "v3")]}]))
    await gateway(cluster, "/")
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 20, "/flaky")
    assert [s for s, _, _ in got] == [200] * 20
    assert (await counts(cluster, "ratings"))["/flaky"] == 40  # every other try retried
    # without retries the failures show
    await cluster.apply(vs("flaky", [{"match": [{"uri": {"exact": "/flaky"}}],
                                      "retries": {"attempts": 0},
                                      "route": [dest("ratings")]},
                                     {"route": [dest("reviews", "v3")]}]))
    await asyncio.sleep(0.3)
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 20, "/flaky")
    assert [s for s, _, _ in got].count(503) == 10


async def mirror_copies_requests_to_a_shadow(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("mirror", [{"route": [dest("reviews", "v1")],
                                       "mirror": {"host": "ratings"},
                                       "mirrorPercentage": {"value": 100.0}}]))
    await gateway(cluster, "/warmup")
    got = await asyncio.to_thread(many, cluster.endpoint(GW_REF, 80), 20, "/mirrored")
    assert {(s, version_of(b)) for s, b, _ in got} == {(200, "v1")}
    shadow: dict[str, int] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # mirrors are fire-and-forget: wait for them
        shadow = await counts(cluster, "ratings")
        if shadow.get("/mirrored", 0) >= 20:
            break
        await asyncio.sleep(0.05)
    assert shadow.get("/mirrored") == 20


async def retries_and_mirrors_carry_the_request_body(cluster: oc.Cluster) -> None:
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


async def unknown_subset_and_gateway_are_warning_events(cluster: oc.Cluster) -> None:
    await cluster.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                         "metadata": {"name": "broken"},
                         "spec": {"hosts": ["reviews"], "gateways": ["nowhere"],
                                  "http": [{"route": [dest("reviews", "v9")]}]}})
    deadline = time.monotonic() + 10
    reasons: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        reasons = {(e.type, e.message) for e in cluster.events("virtualservice/broken")}
        if len(reasons) >= 2:
            break
        await asyncio.sleep(0.05)
    assert ("Warning", 'Referenced gateway not found: "nowhere"') in reasons
    assert ("Warning", 'Referenced host+subset in destinationrule not found: '
            '"reviews+v9"') in reasons
    vs_obj = await cluster.wait_for("virtualservice/broken", lambda v: bool(
        v.status and v.status.get("validationMessages")), timeout=10)
    assert [(m["type"]["code"], m["level"]) for m in vs_obj.status["validationMessages"]] \
        == [("IST0101", "ERROR"), ("IST0101", "ERROR")]
    await cluster.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                         "metadata": {"name": "broken"},
                         "spec": {"hosts": ["reviews"], "gateways": ["bookinfo-gateway"],
                                  "http": [{"route": [dest("reviews", "v1")]}]}})
    fixed = await cluster.wait_for("virtualservice/broken", lambda v: bool(
        v.status and not v.status.get("validationMessages")
        and v.status.get("observedGeneration") == "2"), timeout=10)
    assert fixed.metadata.generation == 2



async def mesh_header_route_and_fault_samples(cluster: oc.Cluster,
                                              caller: Caller = from_host) -> None:
    """Istio's samples unchanged (no gateway: the mesh), at the Services' ClusterIPs."""
    jason = {"end-user": "jason"}
    await cluster.apply(load(DOCS / "istio-virtual-service-reviews-test-v2.yaml"))
    got = await through_service(cluster, "reviews", lambda v: set(v) == {"v2"}, jason, caller)
    assert set(got) == {"v2"}
    got = await through_service(cluster, "reviews", lambda v: set(v) == {"v1"}, None, caller)
    assert set(got) == {"v1"}
    await cluster.apply(load(DOCS / "istio-virtual-service-ratings-test-abort.yaml"))
    got = await through_service(cluster, "ratings", lambda v: set(v) == {"500"}, jason, caller)
    assert set(got) == {"500"}
    got = await through_service(cluster, "ratings", lambda v: set(v) == {"v1"}, None, caller)
    assert set(got) == {"v1"}



async def https_server_terminates_tls_with_the_credential_secret(cluster: oc.Cluster) -> None:
    cert, key = make_cert("httpbin.example.com")
    await cluster.apply([
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "httpbin-credential"},
         "data": {"tls.crt": base64.b64encode(cert).decode(),
                  "tls.key": base64.b64encode(key).decode()}},
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "mygateway"},
         "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
             {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
              "tls": {"mode": "SIMPLE", "credentialName": "httpbin-credential"},
              "hosts": ["httpbin.example.com"]}]}},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "httpbin"},
         "spec": {"hosts": ["httpbin.example.com"], "gateways": ["mygateway"],
                  "http": [{"match": [{"uri": {"prefix": "/status"}}],
                            "route": [dest("ratings")]}]}}])
    deadline = time.monotonic() + 10
    status, body = 0, b""
    while time.monotonic() < deadline:
        try:
            addr = cluster.endpoint("gateways.networking.istio.io/mygateway", 443)
            status, body = await asyncio.to_thread(https_get, addr, "httpbin.example.com",
                                                   "/status/418", cert)
            if status == 418:
                break
        except (ValueError, OSError):
            pass
        await asyncio.sleep(0.05)
    assert status == 418 and version_of(body) == "v1"  # verified against the Secret's cert
    other = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
             "metadata": {"name": "elsewhere"},
             "spec": {"selector": {"istio": "egressgateway"}, "servers": [
                 {"port": {"number": 80, "name": "http", "protocol": "HTTP"},
                  "hosts": ["*"]}]}}
    await cluster.apply(other)
    with pytest.raises(ValueError, match="selects no gateway of this cluster"):
        cluster.endpoint("gateways.networking.istio.io/elsewhere", 80)


async def service_entry_static_endpoints_are_a_destination(cluster: oc.Cluster) -> None:
    (pod,) = await cluster.list("pods", selector="app=ratings")
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply([
        {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
         "metadata": {"name": "legacy"},
         "spec": {"hosts": ["legacy.example.internal"], "location": "MESH_INTERNAL",
                  "resolution": "STATIC",
                  "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                  "endpoints": [{"address": pod.status.pod_ip, "ports": {"http": 9080}}]}},
        vs("legacy", [{"route": [{"destination": {"host": "legacy.example.internal",
                                                  "port": {"number": 80}}}]}])])
    status, body = await gateway(cluster, "/legacy")
    assert status == 200 and version_of(body) == "v1" and seen(body)["path"] == "/legacy"
    assert not [e for e in cluster.events("virtualservice/legacy") if e.type == "Warning"]

Check = Callable[[oc.Cluster], Awaitable[None]]
CHECKS: tuple[Check, ...] = (
    bookinfo_gateway_sample_routes_productpage, weighted_split_90_10,
    header_match_sends_jason_to_v2, fault_abort_sample_and_at_half, fixed_delay_is_measured,
    timeout_cuts_a_slow_backend, retries_hide_a_backend_failing_every_other_request,
    mirror_copies_requests_to_a_shadow, retries_and_mirrors_carry_the_request_body,
    unknown_subset_and_gateway_are_warning_events,
    https_server_terminates_tls_with_the_credential_secret,
    service_entry_static_endpoints_are_a_destination)
"""Every check of the suite, for a test parametrized over them (ids: their names)."""

