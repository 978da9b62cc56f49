"""NetworkPolicy enforced by the bridge network (root, containerd): the upstream netpol
e2e model (namespaces x, y, z; pods a, b, c serving ports 80 and 81), and for each
policy case every (from, to, port) pair probed with a real TCP connection from inside
the source pod's network namespace, compared with ``cluster.reachability``: zero
disagreements."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.netpol._model import (
    ALL,
    NAMESPACES,
    PODS,
    PORTS,
    disagreements,
    model_objects,
    policy,
    ready_model,
)

pytestmark = pytest.mark.anyio

SERVE = "httpd -p 81 -h / && exec httpd -f -p 80 -h /"
PROBE = """
import asyncio, json, sys
async def one(ip, port):
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(ip, port), 1.5)
        w.close()
        return True
    except (OSError, asyncio.TimeoutError):
        return False
async def main():
    targets = json.loads(sys.argv[1])
    print(json.dumps(await asyncio.gather(*(one(ip, port) for ip, port in targets))))
asyncio.run(main())
"""


@pytest.fixture
async def cluster(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1, dns_upstreams=[],
                          runtime_options={"address": containerd_socket,
                                           "image_archives": [busybox_archive]}) as c:
        await c.apply(model_objects("busybox", ["sh", "-c", SERVE]))
        await ready_model(c)
        yield c


async def probe_all(cluster: oc.Cluster) -> dict[tuple[str, str, int, str], bool]:
    pods: dict[str, Any] = {}
    for ns in NAMESPACES:
        for p in PODS:
            pods[f"{ns}/{p}"] = await cluster.get("pod", p, namespace=ns)
    targets = [(key, port) for key in ALL for port in PORTS]
    netns = getattr(cluster.network, "_netns_path", None)
    assert netns is not None

    async def from_pod(src: str) -> dict[tuple[str, str, int, str], bool]:
        path = netns(pods[src].metadata.uid)
        wire = json.dumps([(pods[k].status.pod_ip, port) for k, port in targets])
        proc = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={path}", sys.executable, "-c", PROBE, wire,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return {(src, k, port, "TCP"): ok
                for (k, port), ok in zip(targets, json.loads(out), strict=True)}

    results: dict[tuple[str, str, int, str], bool] = {}
    for part in await asyncio.gather(*(from_pod(src) for src in ALL)):
        results.update(part)
    return results


async def agree(cluster: oc.Cluster) -> dict[tuple[str, str, int, str], bool]:
    """Probe until the kernel agrees with the evaluator (rules load within ~100 ms;
    bounded at a few rounds), and return the probed table."""
    want = await cluster.reachability(ports=PORTS)
    probed: dict[tuple[str, str, int, str], bool] = {}
    for _ in range(3):
        probed = await probe_all(cluster)
        if not disagreements(probed, want):
            break
    assert disagreements(probed, want) == []
    return probed


CASES: dict[str, list[dict[str, Any]]] = {
    "deny-all-ingress": [policy("deny", "x", {"podSelector": {},
                                              "policyTypes": ["Ingress"]})],
    "allow-from-namespace": [policy("from-y", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]})],
    "allow-from-pod-label": [policy("from-b", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]})],
    "egress-deny-but-one": [policy("egress", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}},
                            "namespaceSelector": {}}], "ports": [{"port": 80}]}]})],
    "named-port": [policy("named", "y", {
        "podSelector": {}, "ingress": [{"ports": [{"port": "serve-81"}]}]})],
    "end-port": [policy("range", "z", {
        "podSelector": {"matchLabels": {"pod": "c"}},
        "ingress": [{"ports": [{"port": 81, "endPort": 85}]}]})],
}


async def test_probe_matrix_agrees_with_reachability(cluster: oc.Cluster) -> None:
    assert getattr(cluster.network, "enforces_network_policy", None) is True
    baseline = await agree(cluster)
    assert all(baseline.values()), "without policies every pair connects"
    for name, objs in CASES.items():
        applied = await cluster.apply(objs)
        probed = await agree(cluster)
        assert not all(probed.values()), f"{name}: the policy denied nothing"
        for obj in applied:
            await cluster.delete(f"networkpolicy/{obj.metadata.name}",
                                 namespace=obj.metadata.namespace)
    assert all((await agree(cluster)).values())


async def test_ip_block_except_in_the_kernel(cluster: oc.Cluster) -> None:
    yb = (await cluster.get("pod/b", namespace="y")).status.pod_ip
    cidr = getattr(cluster.network, "pod_cidr", None)
    await cluster.apply(policy("ipblock", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": cidr, "except": [f"{yb}/32"]}}]}]}))
    probed = await agree(cluster)
    assert probed[("y/b", "x/a", 80, "TCP")] is False
    assert probed[("y/c", "x/a", 80, "TCP")] is True


async def test_dns_egress_is_controlled_by_policy(cluster: oc.Cluster) -> None:
    """As on Kubernetes: an egress deny cuts a pod off from the cluster DNS; a rule
    allowing port 53 lets it resolve again."""
    await cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "web", "namespace": "x"}, "spec": {"selector": {"pod": "b"},
                                                   "ports": [{"port": 80}]}})
    ip = (await cluster.get("svc/web", namespace="x")).spec.cluster_ip

    async def lookup() -> bool:
        r = await cluster.exec("pod/a", ["timeout", "2", "nslookup",
                                         "web.x.svc.cluster.local"], namespace="x")
        return r.exit_code == 0 and ip in r.stdout

    assert await lookup()
    await cluster.apply(policy("deny-egress", "x", {"podSelector": {},
                                                    "policyTypes": ["Egress"]}))
    for _ in range(20):  # bounded: the rules load within ~100 ms
        if not await lookup():
            break
    assert not await lookup()
    await cluster.apply(policy("dns", "x", {"podSelector": {}, "egress": [{"ports": [
        {"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}))
    for _ in range(20):
        if await lookup():
            break
    assert await lookup()
