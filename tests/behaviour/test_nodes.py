"""Nodes: a failed node goes NotReady, is tainted, and its pods move elsewhere; cordon,
uncordon and drain (with PodDisruptionBudgets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment, ready

pytestmark = pytest.mark.anyio

UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def live(pods: list[Any]) -> list[Any]:
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def taint_keys(node: Any) -> set[tuple[str, str]]:
    return {(t.key, t.effect) for t in node.spec.taints or ()}


async def test_failed_node_goes_not_ready_and_its_pods_are_replaced_elsewhere() -> None:
    clock = oc.ScaledClock(100)
    async with oc.Cluster(runtime="fake", nodes=3, clock=clock, node_monitor_grace_period=40,
                          lease_interval=10) as cluster:
        await cluster.apply(deployment(replicas=6))
        await cluster.wait_for("deployment/web", "Available", timeout=600)
        pods = await cluster.list("pods", selector="app=web")
        victims = {p.metadata.name for p in pods if p.spec.node_name == "node-2"}
        assert victims, "the spreading scheduler puts pods on every node"
        # admission gave every pod the default 300 s tolerations
        tols = {(t.key, t.toleration_seconds) for t in pods[0].spec.tolerations}
        assert (UNREACHABLE, 300) in tols
        assert ("node.kubernetes.io/not-ready", 300) in tols

        failed_at = clock.monotonic()
        await cluster.fail_node("node-2")
        node = await cluster.wait_for("node/node-2", lambda n: n.condition("Ready").status
                                      == "Unknown", timeout=300)
        notready_at = clock.monotonic()
        cond = node.condition("Ready")
        assert cond.reason == "NodeStatusUnknown"
        assert cond.message == "Kubelet stopped posting node status."
        # the last renewal was at most one lease interval before the failure
        assert notready_at - failed_at >= 40 - 10 - 1
        node = await cluster.wait_for("node/node-2", lambda n: {
            (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} <= taint_keys(n),
            timeout=60)
        assert any(e.reason == "NodeNotReady" for e in cluster.events("node/node-2"))

        # The pods stay until their 300 s toleration runs out, then are replaced.
        await asyncio.sleep(0.5)  # 50 clock seconds
        still = {p.metadata.name for p in live(await cluster.list("pods", selector="app=web"))}
        assert victims <= still

        def replaced(d: Any) -> bool:
            pods = live(cluster.store.list("Pod", selector="app=web"))
            return (len(pods) == 6 and all(ready(p) for p in pods)
                    and all(p.spec.node_name != "node-2" for p in pods))

        await cluster.wait_for("deployment/web", replaced, timeout=1200)
        evicted_at = clock.monotonic()
        assert evicted_at - notready_at >= 300 - 10
        assert any(e.reason == "TaintManagerEviction" for e in cluster.events())
        new = live(await cluster.list("pods", selector="app=web"))
        assert {p.spec.node_name for p in new} == {"node-1", "node-3"}


async def test_cordon_keeps_new_pods_off_the_node_and_uncordon_reverts(
        cluster: oc.Cluster) -> None:
    await cluster.cordon("node-1")
    node = await cluster.wait_for("node/node-1", lambda n: (UNSCHEDULABLE, "NoSchedule")
                                  in taint_keys(n), timeout=10)
    assert node.spec.unschedulable is True
    await cluster.apply(deployment(replicas=6))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    pods = await cluster.list("pods", selector="app=web")
    assert "node-1" not in {p.spec.node_name for p in pods}
    await cluster.uncordon("node-1")
    node = await cluster.wait_for("node/node-1", lambda n: (UNSCHEDULABLE, "NoSchedule")
                                  not in taint_keys(n), timeout=10)
    assert not node.spec.unschedulable
    await cluster.scale("deployment/web", 12)
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    pods = await cluster.list("pods", selector="app=web")
    assert "node-1" in {p.spec.node_name for p in pods}


async def test_drain_evicts_pods_and_they_come_back_elsewhere(cluster: oc.Cluster) -> None:
    await cluster.apply(deployment(replicas=6))
    await cluster.wait_for("deployment/web", "Available", timeout=30)
    on_node = [p for p in await cluster.list("pods", selector="app=web")
               if p.spec.node_name == "node-3"]
    assert on_node
    await cluster.drain("node-3", timeout=30)
    node = await cluster.get("node/node-3")
    assert node.spec.unschedulable is True
    assert not [p for p in await cluster.list("pods", selector="app=web")
                if p.spec.node_name == "node-3"]
    d = await cluster.wait_for("deployment/web", "Available", timeout=30)
    assert d.status.available_replicas == 6
    pods = live(await cluster.list("pods", selector="app=web"))
    assert len(pods) == 6 and "node-3" not in {p.spec.node_name for p in pods}


def pdb(min_available: int) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web"},
            "spec": {"minAvailable": min_available,
                     "selector": {"matchLabels": {"app": "web"}}}}


async def test_drain_honours_a_pod_disruption_budget() -> None:
    clock = oc.ScaledClock(20)
    async with oc.Cluster(runtime="fake", nodes=3, clock=clock) as cluster:
        await cluster.apply(deployment(replicas=3))
        await cluster.wait_for("deployment/web", "Available", timeout=60)
        await cluster.apply(pdb(3))
        await cluster.wait_for("pdb/web", lambda p: p.status is not None
                               and p.status.current_healthy == 3, timeout=60)
        victim = next(p for p in await cluster.list("pods", selector="app=web")
                      if p.spec.node_name == "node-1")
        with pytest.raises(oc.Timeout) as err:
            await cluster.drain("node-1", timeout=20)
        assert victim.metadata.name in str(err.value)
        assert "disruption budget" in str(err.value)
        assert victim.metadata.name in {p.metadata.name for p in
                                        await cluster.list("pods", selector="app=web")}
        await cluster.uncordon("node-1")

        await cluster.apply(pdb(2))
        await cluster.wait_for("pdb/web", lambda p: p.status is not None
                               and p.status.disruptions_allowed == 1, timeout=60)
        await cluster.drain("node-1", timeout=120)
        await cluster.wait_for("deployment/web", "Available", timeout=120)
        pods = live(await cluster.list("pods", selector="app=web"))
        assert len(pods) == 3 and "node-1" not in {p.spec.node_name for p in pods}
