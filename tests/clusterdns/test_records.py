"""The cluster DNS server answers Kubernetes' DNS-based service discovery records, from
the host (``cluster.resolve`` and a plain DNS client against ``cluster.dns_address``),
on the fake runtime with the loopback network (real addresses, no processes)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import anyio
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio


def service(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def pod(name: str, labels: dict[str, str], *, namespace: str = "default",
        ready: bool = True, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "app",
                                 "ports": [{"name": "web", "containerPort": 8080}]}
    annotations = {}
    if not ready:
        container["readinessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1}
        annotations["fake.orchestra.dev/probe-fail"] = "readiness"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": annotations},
            "spec": {"containers": [container], **spec}}


async def query(cluster: oc.Cluster, name: str, rdtype: str = "A", *,
                tcp: bool = False) -> dns.message.Message:
    host, port = cluster.dns_address
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(q, host, port=port, timeout=5)
    return await dns.asyncquery.udp(q, host, port=port, timeout=5)


async def resolved(cluster: oc.Cluster, name: str, rdtype: str = "A",
                   namespace: str = "default", want: Any = bool) -> list[str]:
    """Poll ``cluster.resolve`` until ``want(answers)``: the records follow the store
    through a loop (bounded poll; the bound is generous, the target is 100 ms)."""
    answers: list[str] = []
    try:
        with anyio.fail_after(5):
            while True:
                answers = sorted(await cluster.resolve(name, namespace=namespace,
                                                       type=rdtype))
                if want(answers):
                    return answers
                await anyio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"{name} {rdtype}: last answers {answers}")


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", network="loopback", nodes=1,
                          dns_upstreams=[]) as c:
        yield c


async def ready_ip(cluster: oc.Cluster, name: str, namespace: str = "default") -> str:
    p = await cluster.wait_for(f"pod/{name}", lambda p: p.status is not None and
                               bool(p.status.pod_ip), timeout=10, namespace=namespace)
    return str(p.status.pod_ip)


async def test_cluster_ip_service_by_every_name_a_pod_uses(cluster: oc.Cluster) -> None:
    await cluster.apply(service("backend", {"selector": {"app": "b"},
                                            "ports": [{"port": 80}]}))
    ip = (await cluster.get("svc/backend")).spec.cluster_ip
    for name in ("backend", "backend.default", "backend.default.svc",
                 "backend.default.svc.cluster.local", "backend.default.svc.cluster.local."):
        assert await resolved(cluster, name) == [ip], name
    # another namespace's pods find it by namespace, not by the bare name
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    assert await cluster.resolve("backend", namespace="other") == []
    assert await cluster.resolve("backend.default", namespace="other") == [ip]
    # a plain DNS client: authoritative, TTL 30, over UDP and TCP
    for tcp in (False, True):
        r = await query(cluster, "backend.default.svc.cluster.local.", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
        assert [(rr.ttl, [rd.to_text() for rd in rr]) for rr in r.answer] == [(30, [ip])]


async def test_nxdomain_versus_nodata_with_the_soa(cluster: oc.Cluster) -> None:
    await cluster.apply(service("backend", {"ports": [{"port": 80}]}))
    await resolved(cluster, "backend")
    nodata = await query(cluster, "backend.default.svc.cluster.local.", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    nx = await query(cluster, "nope.default.svc.cluster.local.")
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.answer == []
    for r in (nodata, nx):
        (soa,) = r.authority
        assert soa.rdtype == dns.rdatatype.SOA and soa.name.to_text() == "cluster.local."
        assert soa[0].minimum == 30 and soa.ttl == 30
    # a name that exists only as a parent of records (an empty non-terminal) is NODATA
    ent = await query(cluster, "default.svc.cluster.local.")
    assert ent.rcode() == dns.rcode.NOERROR and ent.answer == []
    assert (await query(cluster, "nope.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN
    apex = await query(cluster, "cluster.local.", "SOA")
    assert [rr.rdtype for rr in apex.answer] == [dns.rdatatype.SOA]


async def test_headless_service_answers_ready_endpoints(cluster: oc.Cluster) -> None:
    await cluster.apply([
        service("db", {"clusterIP": "None", "selector": {"app": "db"},
                       "ports": [{"name": "pg", "port": 5432, "targetPort": 8080}]}),
        pod("a", {"app": "db"}), pod("b", {"app": "db"}), pod("sick", {"app": "db"},
                                                            ready=False)])
    a, b, sick = [await ready_ip(cluster, n) for n in ("a", "b", "sick")]
    assert await resolved(cluster, "db", want=lambda x: len(x) == 2) == sorted([a, b])
    # each endpoint by its dashed address, and SRV per endpoint sharing weight 100
    dashed = a.replace(".", "-")
    assert await resolved(cluster, f"{dashed}.db") == [a]
    srv = await resolved(cluster, "_pg._tcp.db", "SRV")
    assert sorted(srv) == sorted(
        f"0 50 8080 {ip.replace('.', '-')}.db.default.svc.cluster.local." for ip in (a, b))
    # publishNotReadyAddresses: the unready pod too
    await cluster.patch("svc/db", {"spec": {"publishNotReadyAddresses": True}})
    assert await resolved(cluster, "db", want=lambda x: len(x) == 3) == sorted([a, b, sick])
    # an endpoint that goes away leaves DNS
    await cluster.delete("pod/b")
    assert await resolved(cluster, "db", want=lambda x: len(x) == 2) == sorted([a, sick])


async def test_statefulset_pods_by_hostname_and_subdomain(cluster: oc.Cluster) -> None:
    labels = {"app": "web"}
    await cluster.apply([
        service("web", {"clusterIP": "None", "selector": labels,
                        "ports": [{"name": "http", "port": 80}]}),
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
         "spec": {"serviceName": "web", "replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "c", "image": "app"}]}}}}])
    await cluster.wait_for("statefulset/web", lambda s: s.status is not None and
                           (s.status.ready_replicas or 0) == 2, timeout=20)
    for i in range(2):
        ip = await ready_ip(cluster, f"web-{i}")
        assert await resolved(cluster, f"web-{i}.web") == [ip]
        assert await resolved(cluster, f"web-{i}.web.default.svc.cluster.local") == [ip]
        ptr = await resolved(cluster, ipaddress.ip_address(ip).reverse_pointer + ".", "PTR")
        assert ptr == [f"web-{i}.web.default.svc.cluster.local."]
    srv = await resolved(cluster, "_http._tcp.web", "SRV", want=lambda x: len(x) == 2)
    assert srv == [f"0 50 80 web-{i}.web.default.svc.cluster.local." for i in range(2)]


async def test_hostname_needs_a_headless_service_named_by_the_subdomain(
        cluster: oc.Cluster) -> None:
    await cluster.apply([
        service("other", {"clusterIP": "None", "selector": {"app": "x"},
                          "ports": [{"port": 80}]}),
        pod("x", {"app": "x"}, hostname="box", subdomain="sub")])
    ip = await ready_ip(cluster, "x")
    # the Service "other" selects the pod but is not its subdomain: dashed name only
    assert await resolved(cluster, f"{ip.replace('.', '-')}.other") == [ip]
    assert await cluster.resolve("box.other") == []
    assert await cluster.resolve("box.sub") == []
    await cluster.apply(service("sub", {"clusterIP": "None", "selector": {"app": "x"},
                                        "ports": [{"port": 80}]}))
    assert await resolved(cluster, "box.sub") == [ip]


async def test_srv_and_ptr_of_a_cluster_ip_service(cluster: oc.Cluster) -> None:
    await cluster.apply(service("api", {"ports": [{"name": "http", "port": 80},
                                                  {"name": "dns", "port": 53,
                                                   "protocol": "UDP"},
                                                  {"name": "grpc", "port": 9090}]}))
    ip = (await cluster.get("svc/api")).spec.cluster_ip
    fqdn = "api.default.svc.cluster.local."
    assert await resolved(cluster, "_http._tcp.api", "SRV") == [f"0 100 80 {fqdn}"]
    assert await resolved(cluster, "_dns._udp.api", "SRV") == [f"0 100 53 {fqdn}"]
    assert await cluster.resolve("_dns._tcp.api", type="SRV") == []
    reverse = ipaddress.ip_address(ip).reverse_pointer + "."
    assert await resolved(cluster, reverse, "PTR") == [fqdn]


async def test_pod_records_and_pod_ptr(cluster: oc.Cluster) -> None:
    await cluster.apply(pod("p", {"app": "p"}, namespace="default"))
    ip = await ready_ip(cluster, "p")
    dashed = ip.replace(".", "-")
    assert await resolved(cluster, f"{dashed}.default.pod.cluster.local") == [ip]
    assert await resolved(cluster, ipaddress.ip_address(ip).reverse_pointer + ".", "PTR") \
        == [f"{dashed}.default.pod.cluster.local."]
    nodata = await query(cluster, f"{dashed}.default.pod.cluster.local.", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    bad = await query(cluster, "not-an-ip.default.pod.cluster.local.")
    assert bad.rcode() == dns.rcode.NXDOMAIN


async def test_external_name_is_a_cname(cluster: oc.Cluster) -> None:
    await cluster.apply([service("ext", {"type": "ExternalName",
                                         "externalName": "db.example.test"}),
                         service("alias", {"type": "ExternalName",
                                           "externalName": "backend.default.svc.cluster.local"}),
                         service("backend", {"ports": [{"port": 80}]})])
    assert await resolved(cluster, "ext", "CNAME") == ["db.example.test."]
    r = await query(cluster, "ext.default.svc.cluster.local.")
    assert [(rr.rdtype, rr[0].to_text()) for rr in r.answer] == \
        [(dns.rdatatype.CNAME, "db.example.test.")]
    # a target inside the zone is followed in the same answer
    ip = (await cluster.get("svc/backend")).spec.cluster_ip
    await resolved(cluster, "backend")
    assert await resolved(cluster, "alias") == [ip]


async def test_records_follow_service_changes(cluster: oc.Cluster) -> None:
    await cluster.apply(service("backend", {"ports": [{"port": 80}]}))
    ip = (await cluster.get("svc/backend")).spec.cluster_ip
    assert await resolved(cluster, "backend") == [ip]
    await cluster.delete("svc/backend")
    assert await resolved(cluster, "backend", want=lambda x: x == []) == []
    assert (await query(cluster, "backend.default.svc.cluster.local.")).rcode() == \
        dns.rcode.NXDOMAIN


async def test_cluster_domain_option() -> None:
    async with oc.Cluster(runtime="fake", network="loopback", nodes=1,
                          cluster_domain="corp.example", dns_upstreams=[]) as cluster:
        await cluster.apply(service("backend", {"ports": [{"port": 80}]}))
        ip = (await cluster.get("svc/backend")).spec.cluster_ip
        assert await resolved(cluster, "backend") == [ip]
        assert await resolved(cluster, "backend.default.svc.corp.example.") == [ip]
        r = await query(cluster, "backend.default.svc.cluster.local.")
        assert r.rcode() == dns.rcode.SERVFAIL  # outside the zone: forwarded, no upstream


async def test_dns_address_is_a_loopback_address_serving_udp_and_tcp(
        cluster: oc.Cluster) -> None:
    host, _ = cluster.dns_address
    assert ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    assert (await query(cluster, "cluster.local.", "SOA", tcp=True)).answer
