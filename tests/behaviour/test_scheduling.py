"""Scheduling: unschedulable pods wait with kube-scheduler's message and are placed once
the cluster changes; nodeSelector, taints and tolerations, MostAllocated bin-packing."""

from __future__ import annotations

from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment

pytestmark = pytest.mark.anyio

GPU = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def pod(name: str, *, cpu: str | None = None, **spec: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [c], "terminationGracePeriodSeconds": 1, **spec}}


def scheduled_cond(p: Any) -> Any:
    return next((c for c in (p.status.conditions if p.status else ()) or ()
                 if c.type == "PodScheduled"), None)


async def test_a_pod_that_fits_nowhere_waits_with_the_kubernetes_message() -> None:
    nodes = [oc.NodeSpec(f"gpu-{i}", cpu="8", taints=[GPU]) for i in (1, 2)]
    nodes += [oc.NodeSpec(f"small-{i}", cpu="1") for i in (1, 2, 3)]
    async with oc.Cluster(runtime="fake", nodes=nodes) as cluster:
        await cluster.apply(pod("big", cpu="2"))
        p = await cluster.wait_for("pod/big", lambda p: scheduled_cond(p) is not None,
                                   timeout=10)
        cond = scheduled_cond(p)
        assert cond.status == "False"
        assert cond.reason == "Unschedulable"
        expected = ("0/5 nodes are available: 2 node(s) had untolerated taint "
                    "{dedicated: gpu}, 3 Insufficient cpu.")
        assert cond.message.startswith(expected), cond.message
        assert p.status.phase == "Pending" and not p.spec.node_name
        events = [e for e in cluster.events("pod/big") if e.reason == "FailedScheduling"]
        assert events and events[0].type == "Warning"
        assert events[0].message.startswith(expected)

        await cluster.add_node(oc.NodeSpec("large", cpu="4"))
        p = await cluster.wait_for("pod/big", "Ready", timeout=10)
        assert p.spec.node_name == "large"
        assert scheduled_cond(p).status == "True"
        assert any(e.reason == "Scheduled" and "to large" in e.message
                   for e in cluster.events("pod/big"))


async def test_node_selector_and_tolerations() -> None:
    nodes = [oc.NodeSpec("plain"), oc.NodeSpec("ssd", labels={"disk": "ssd"}),
             oc.NodeSpec("gpu", taints=[GPU])]
    async with oc.Cluster(runtime="fake", nodes=nodes) as cluster:
        await cluster.apply([
            pod("wants-ssd", nodeSelector={"disk": "ssd"}),
            pod("wants-gpu", nodeSelector={"kubernetes.io/hostname": "gpu"},
                tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                              "effect": "NoSchedule"}]),
            pod("no-toleration", nodeSelector={"kubernetes.io/hostname": "gpu"}),
            pod("no-match", nodeSelector={"disk": "nvme"}),
        ])
        assert (await cluster.wait_for("pod/wants-ssd", "Ready", timeout=10)
                ).spec.node_name == "ssd"
        assert (await cluster.wait_for("pod/wants-gpu", "Ready", timeout=10)
                ).spec.node_name == "gpu"
        p = await cluster.wait_for("pod/no-toleration", lambda p: scheduled_cond(p)
                                   is not None, timeout=10)
        assert scheduled_cond(p).message.startswith(
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
            "2 node(s) didn't match Pod's node affinity/selector."), scheduled_cond(p).message
        p = await cluster.wait_for("pod/no-match", lambda p: scheduled_cond(p)
                                   is not None, timeout=10)
        assert scheduled_cond(p).message.startswith(
            # kube-scheduler's filter order: TaintToleration runs before NodeAffinity
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
            "2 node(s) didn't match Pod's node affinity/selector."), \
            scheduled_cond(p).message
        # labelling a node makes the pod schedulable
        await cluster.patch("node/plain", {"metadata": {"labels": {"disk": "nvme"}}},
                            namespace="")
        assert (await cluster.wait_for("pod/no-match", "Ready", timeout=10)
                ).spec.node_name == "plain"


async def test_least_allocated_spreads_and_most_allocated_packs() -> None:
    for strategy in ("LeastAllocated", "MostAllocated"):
        async with oc.Cluster(runtime="fake", nodes=[oc.NodeSpec(f"n{i}", cpu="4")
                                                     for i in range(4)],
                              scheduler=strategy) as cluster:
            await cluster.apply(deployment(replicas=8, requests={"cpu": "1"}))
            await cluster.wait_for("deployment/web", "Available", timeout=30)
            used = {p.spec.node_name for p in await cluster.list("pods", selector="app=web")}
            if strategy == "MostAllocated":
                assert len(used) == 2, used  # 8 x 1 cpu on 4-cpu nodes: the lower bound
            else:
                assert len(used) == 4, used
