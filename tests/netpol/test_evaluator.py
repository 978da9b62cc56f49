"""NetworkPolicy semantics on the fake runtime with the loopback network: the upstream
netpol e2e cases as truth tables from ``cluster.reachability`` (which must match
exactly), ``can_connect``, validation and defaults as the API server's, and the
loopback network saying it does not enforce policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.objects import NetworkPolicy
from tests.netpol._model import (
    ALL,
    disagreements,
    model_objects,
    policy,
    ready_model,
    table,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", network="loopback", nodes=1,
                          dns_upstreams=[]) as c:
        await c.apply(model_objects())
        await ready_model(c)
        yield c


async def check(cluster: oc.Cluster, want: Any, ports: tuple[int, ...] = (80, 81)) -> None:
    got = await cluster.reachability(ports=ports)
    assert got.keys() == table(want, ports).keys()
    assert disagreements(got, table(want, ports)) == []


async def test_no_policy_everything_reaches_everything(cluster: oc.Cluster) -> None:
    await check(cluster, lambda a, b, port: True)


async def test_deny_all_ingress(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("deny-all", "x", {"podSelector": {},
                                                 "policyTypes": ["Ingress"]}))
    await check(cluster, lambda a, b, port: not b.startswith("x/"))


async def test_allow_from_namespace_by_metadata_name(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("from-y", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]}))
    await check(cluster, lambda a, b, port: b != "x/a" or a.startswith("y/"))


async def test_allow_from_pod_label_and_from_pod_in_namespace(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("from-b", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}},
                              {"namespaceSelector": {"matchLabels": {"ns": "y"}},
                               "podSelector": {"matchLabels": {"pod": "c"}}}]}]}))
    await check(cluster, lambda a, b, port: b != "x/a" or a in ("x/b", "y/c"))


async def test_egress_deny_and_allow_one_port_to_one_pod(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("egress", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}},
                            "namespaceSelector": {}}],
                    "ports": [{"port": 80}]}]}))
    # no policyTypes with egress rules: Ingress and Egress; the policy has no ingress
    # rules, so x/a is isolated both ways
    stored = await cluster.get("networkpolicy/egress", namespace="x")
    assert stored.spec.policy_types == ("Ingress", "Egress")
    await check(cluster, lambda a, b, port: b != "x/a" and (
        a != "x/a" or (b.endswith("/b") and port == 80)))


async def test_ip_block_with_except(cluster: oc.Cluster) -> None:
    assert cluster.network is not None
    cidr = getattr(cluster.network, "pod_cidr", None)
    yb = (await cluster.get("pod/b", namespace="y")).status.pod_ip
    await cluster.apply(policy("ipblock", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": cidr, "except": [f"{yb}/32"]}}]}]}))
    await check(cluster, lambda a, b, port: b != "x/a" or a != "y/b")


async def test_named_port_and_end_port(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("named", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"ports": [{"port": "serve-81"}]}]}))
    await check(cluster, lambda a, b, port: b != "x/a" or port == 81)
    await cluster.apply(policy("named", "x", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"ports": [{"port": 81, "endPort": 90}]}]}))
    await check(cluster, lambda a, b, port: b != "x/a" or 81 <= port <= 90,
                ports=(80, 81, 85, 90, 91))
    # a named port resolves against the destination pod: UDP does not match TCP's name
    assert not await cluster.can_connect("y/a", "x/a", 80)
    assert await cluster.can_connect("y/a", "x/a", 85)
    assert not await cluster.can_connect("y/a", "x/a", 85, "UDP")


async def test_policies_add_up(cluster: oc.Cluster) -> None:
    await cluster.apply([
        policy("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]}),
        policy("from-z", "x", {"podSelector": {}, "ingress": [
            {"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}]}]}),
        policy("port-81", "x", {"podSelector": {"matchLabels": {"pod": "c"}},
                                "ingress": [{"ports": [{"port": 81}]}]})])
    await check(cluster, lambda a, b, port: not b.startswith("x/") or a.startswith("z/")
                or (b == "x/c" and port == 81))


async def test_egress_deny_all(cluster: oc.Cluster) -> None:
    await cluster.apply(policy("deny-egress", "y", {"podSelector": {},
                                                    "policyTypes": ["Egress"]}))
    await check(cluster, lambda a, b, port: not a.startswith("y/"))
    assert await cluster.can_connect("x/a", "y/a", 80)
    assert not await cluster.can_connect("a", "b", 80, namespace="y")


async def test_reachability_of_chosen_pods(cluster: oc.Cluster) -> None:
    got = await cluster.reachability(pods=["x/a", "y/b"], ports=(80,))
    assert got == {("x/a", "x/a", 80, "TCP"): True, ("x/a", "y/b", 80, "TCP"): True,
                   ("y/b", "x/a", 80, "TCP"): True, ("y/b", "y/b", 80, "TCP"): True}
    assert len(await cluster.reachability()) == len(ALL) ** 2


async def test_loopback_says_it_does_not_enforce(cluster: oc.Cluster) -> None:
    assert cluster.network is not None
    assert getattr(cluster.network, "enforces_network_policy", None) is False
    await cluster.apply(policy("deny-all", "x", {"podSelector": {}}))
    with anyio.fail_after(5):
        while True:
            events = [e for e in cluster.events("networkpolicy/deny-all", namespace="x")
                      if e.reason == "NotEnforced"]
            if events:
                break
            await anyio.sleep(0.01)
    (event,) = events
    assert event.type == "Warning"
    assert event.message == "NetworkPolicy is not enforced by the loopback network"


def invalid(spec: dict[str, Any]) -> str:
    with pytest.raises(oc.Invalid) as err:
        NetworkPolicy.model_validate({"metadata": {"name": "p", "namespace": "x"},
                                      "spec": spec})
    return str(err.value)


def test_validation_as_the_api_server() -> None:
    assert invalid({"ingress": [{"from": [{}]}]}).endswith(
        "spec.ingress[0].from[0]: Required value: must specify a peer")
    assert "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another " \
        "peer" in invalid({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                                   "podSelector": {}}]}]})
    assert "spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must " \
        "be a strict subset of `cidr`" in invalid(
            {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                             "except": ["11.0.0.0/16"]}}]}]})
    assert "spec.ingress[0].ports[0].endPort: Invalid value: 80: may not be specified " \
        "when `port` is non-numeric" in invalid(
            {"ingress": [{"ports": [{"port": "http", "endPort": 80}]}]})
    assert "spec.ingress[0].ports[0].endPort: Invalid value: 81: must be greater than or " \
        "equal to `port`" in invalid({"ingress": [{"ports": [{"port": 81, "endPort": 80}]}]})
    assert 'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported ' \
        'values: "SCTP", "TCP", "UDP"' in invalid({"ingress": [{"ports": [
            {"protocol": "ICMP"}]}]})
    assert 'spec.policyTypes[0]: Unsupported value: "Both": supported values: ' \
        '"Ingress", "Egress"' in invalid({"policyTypes": ["Both"]})


def test_defaults_and_yaml_round_trip() -> None:
    (p,) = oc.objects.load("""
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: test-network-policy, namespace: default}
spec:
  podSelector: {matchLabels: {role: db}}
  ingress:
  - from:
    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}
    - namespaceSelector: {matchLabels: {project: myproject}}
    - podSelector: {matchLabels: {role: frontend}}
    ports: [{protocol: TCP, port: 6379}]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/24}}]
    ports: [{port: 5978}]
""")
    d = p.to_dict()
    assert d["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert d["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 5978}]
    assert d["spec"]["ingress"][0]["from"][0]["ipBlock"]["except"] == ["172.17.1.0/24"]
    assert NetworkPolicy.model_validate(d).to_dict() == d
