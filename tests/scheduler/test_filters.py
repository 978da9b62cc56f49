"""Each filter on its own: which nodes a pod may land on."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.scheduler import Scheduler, Unschedulable
from orchestra.scheduler._framework import Code, Cycle
from orchestra.scheduler._info import PodFacts

from ._build import node, pod


def feasible(nodes: list[Any], p: Any, existing: list[Any] = ()) -> set[str]:  # type: ignore[assignment]
    """Names of the nodes that pass every filter (scheduling repeatedly is not needed)."""
    s = Scheduler(percentage_of_nodes_to_score=100)
    for n in nodes:
        s.add_node(n)
    for e in existing:
        s.add_pod(e)
    cycle = Cycle(PodFacts.of(p), s.cache)
    active = [f for f, pre in s._filter_plan if pre is None or pre(cycle).code is not Code.SKIP]
    out = set()
    for info in s.cache.order:
        if all(f.filter(cycle, info).ok for f in active):
            out.add(info.name)
    return out


# -- taints and tolerations --------------------------------------------------


def tainted(name: str, effect: str, key: str = "k", value: str = "v") -> Any:
    return node(name, taints=[{"key": key, "value": value, "effect": effect}])


@pytest.mark.parametrize("effect,filtered", [
    ("NoSchedule", True), ("NoExecute", True), ("PreferNoSchedule", False),
])
def test_untolerated_taint(effect: str, filtered: bool) -> None:
    got = feasible([tainted("t", effect), node("plain")], pod("p"))
    assert got == ({"plain"} if filtered else {"t", "plain"})


@pytest.mark.parametrize("toleration,tolerated", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, True),  # operator defaults to Equal; empty effect: all
    ({"key": "k", "operator": "Equal", "value": "other"}, False),
    ({"key": "k", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_toleration_matching(toleration: dict[str, str], tolerated: bool) -> None:
    got = feasible([tainted("t", "NoSchedule")], pod("p", tolerations=[toleration]))
    assert got == ({"t"} if tolerated else set())


def test_no_execute_needs_a_no_execute_toleration() -> None:
    tol = {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
    assert feasible([tainted("t", "NoExecute")], pod("p", tolerations=[tol])) == {"t"}
    tol = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    assert feasible([tainted("t", "NoExecute")], pod("p", tolerations=[tol])) == set()


def test_cordoned_node_unless_tolerated() -> None:
    nodes = [node("c", unschedulable=True), node("ok")]
    assert feasible(nodes, pod("p")) == {"ok"}
    tol = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
           "effect": "NoSchedule"}
    assert feasible(nodes, pod("p", tolerations=[tol])) == {"c", "ok"}


def test_node_name() -> None:
    s = Scheduler()
    s.add_node(node("a"))
    s.add_node(node("b"))
    assert s.schedule(pod("p", node_name="b")) == "b"
    with pytest.raises(Unschedulable) as err:
        s.schedule(pod("q", node_name="zzz"))
    assert err.value.reasons == {"node(s) didn't match the requested node name": 2}


# -- node selector and required node affinity --------------------------------


ZONES = [node("a", labels={"zone": "z1", "gen": "3"}), node("b", labels={"zone": "z2", "gen": "5"}),
         node("c", labels={"gen": "x"})]


def required(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)} if exprs else {}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}


def test_node_selector() -> None:
    assert feasible(ZONES, pod("p", nodeSelector={"zone": "z2"})) == {"b"}


@pytest.mark.parametrize("expr,expected", [
    ({"key": "zone", "operator": "In", "values": ["z1", "z2"]}, {"a", "b"}),
    ({"key": "zone", "operator": "NotIn", "values": ["z1"]}, {"b", "c"}),
    ({"key": "zone", "operator": "Exists"}, {"a", "b"}),
    ({"key": "zone", "operator": "DoesNotExist"}, {"c"}),
    ({"key": "gen", "operator": "Gt", "values": ["4"]}, {"b"}),
    ({"key": "gen", "operator": "Lt", "values": ["4"]}, {"a"}),
])
def test_required_node_affinity(expr: dict[str, Any], expected: set[str]) -> None:
    assert feasible(ZONES, pod("p", affinity=required(expr))) == expected


def test_node_affinity_terms_are_ored_and_match_fields() -> None:
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]},
        ]}}}
    assert feasible(ZONES, pod("p", affinity=aff)) == {"a", "c"}


# -- resources ---------------------------------------------------------------


def test_init_container_max_rule() -> None:
    # containers sum to 1 cpu, the largest init container wants 3: the pod needs 3.
    p = pod("p", containers=[{"cpu": "500m"}, {"cpu": "500m"}],
            init=[{"cpu": "3"}, {"cpu": "1"}])
    facts = PodFacts.of(p)
    assert facts.cpu == 3000
    assert feasible([node("two", cpu="2"), node("four", cpu="4")], p) == {"four"}


def test_sidecars_add_and_overhead() -> None:
    p = pod("p", containers=[{"cpu": "1", "memory": "1Gi"}], overhead={"cpu": "250m"})
    body = p.to_dict()
    body["spec"]["initContainers"] = [
        {"name": "side", "image": "x", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "500m"}}},
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "1"}}},
    ]
    facts = PodFacts.of(type(p).model_validate(body))
    # max(1 + 0.5 sidecar, 1 init + 0.5 sidecar started before it) + 0.25 overhead
    assert facts.cpu == 1750
    assert facts.memory == 1024**3


def test_limits_stand_in_for_missing_requests_and_defaults_for_scoring() -> None:
    p = pod("p", containers=[{}])
    facts = PodFacts.of(p)
    assert (facts.cpu, facts.memory) == (0, 0)
    assert (facts.nz_cpu, facts.nz_memory) == (100, 200 * 1024**2)


def test_extended_resources() -> None:
    nodes = [node("gpu", extra={"nvidia.com/gpu": "2"}), node("cpu")]
    p = pod("p", containers=[{"nvidia.com/gpu": "1"}])
    assert feasible(nodes, p) == {"gpu"}
    s = Scheduler()
    for n in nodes:
        s.add_node(n)
    s.schedule(p)
    s.schedule(pod("q", containers=[{"nvidia.com/gpu": "1"}]))
    with pytest.raises(Unschedulable) as err:
        s.schedule(pod("r", containers=[{"nvidia.com/gpu": "1"}]))
    assert err.value.reasons == {"Insufficient nvidia.com/gpu": 2}


def test_zero_request_fits_an_overcommitted_node() -> None:
    s = Scheduler()
    s.add_node(node("a", cpu="1"))
    s.add_pod(pod("hog", cpu="2", node_name="a"))
    assert s.schedule(pod("p")) == "a"


def test_host_ports() -> None:
    def with_port(name: str, node_name: str | None = None) -> Any:
        p = pod(name, node_name=node_name)
        body = p.to_dict()
        body["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
        return type(p).model_validate(body)

    got = feasible([node("a"), node("b")], with_port("p"), [with_port("e", "a")])
    assert got == {"b"}


# -- inter-pod affinity ------------------------------------------------------


def anti(app: str, key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def test_anti_affinity_spreads_replicas() -> None:
    s = Scheduler(seed=3)
    for i in range(3):
        s.add_node(node(f"n{i}"))
    placed = [s.schedule(pod(f"web-{i}", labels={"app": "web"}, affinity=anti("web")))
              for i in range(3)]
    assert sorted(placed) == ["n0", "n1", "n2"]
    with pytest.raises(Unschedulable) as err:
        s.schedule(pod("web-3", labels={"app": "web"}, affinity=anti("web")))
    assert err.value.message == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    )


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    existing = pod("db", labels={"app": "db"}, node_name="a", affinity=anti("web"))
    got = feasible([node("a"), node("b")], pod("w", labels={"app": "web"}), [existing])
    assert got == {"b"}


def test_required_affinity_co_locates() -> None:
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}]}}
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
             node("c", labels={"zone": "z2"})]
    cache = pod("cache", labels={"app": "cache"}, node_name="a")
    assert feasible(nodes, pod("w", affinity=aff), [cache]) == {"a", "b"}
    # No matching pod anywhere: unschedulable, unless the pod matches its own term.
    assert feasible(nodes, pod("w", affinity=aff)) == set()
    assert feasible(nodes, pod("w", labels={"app": "cache"}, affinity=aff)) == {"a", "b", "c"}


def test_anti_affinity_other_namespace_ignored() -> None:
    existing = pod("e", labels={"app": "web"}, namespace="other", node_name="a")
    got = feasible([node("a"), node("b")], pod("w", affinity=anti("web")), [existing])
    assert got == {"a", "b"}


# -- topology spread -----------------------------------------------------------


def spread(max_skew: int, when: str = "DoNotSchedule", key: str = "zone") -> list[dict[str, Any]]:
    return [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "web"}}}]


def test_topology_spread_max_skew() -> None:
    nodes = [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}),
             node("nolabel")]
    existing = [pod(f"e{i}", labels={"app": "web"}, node_name="a") for i in range(2)]
    p = pod("w", labels={"app": "web"}, topologySpreadConstraints=spread(1))
    # z1 has 2, z2 has 0: only z2 keeps the skew <= 1; a node without the key never fits.
    assert feasible(nodes, p, existing) == {"b"}
    p = pod("w", labels={"app": "web"}, topologySpreadConstraints=spread(3))
    assert feasible(nodes, p, existing) == {"a", "b"}


def test_topology_spread_keeps_zones_even() -> None:
    s = Scheduler(seed=5)
    for i in range(6):
        s.add_node(node(f"n{i}", labels={"zone": f"z{i % 3}"}))
    zones: dict[str, int] = {}
    for i in range(9):
        name = s.schedule(pod(f"w{i}", labels={"app": "web"},
                              topologySpreadConstraints=spread(1)))
        zone = f"z{int(name[1:]) % 3}"
        zones[zone] = zones.get(zone, 0) + 1
        assert max(zones.values()) - min(zones.values(), default=0) <= 1 or len(zones) < 3
    assert zones == {"z0": 3, "z1": 3, "z2": 3}
