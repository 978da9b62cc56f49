"""The pod garbage collector (PodGC) as kube-controller-manager runs it: orphans of a
deleted node after the 40 s quarantine (Failed with DisruptionTarget first), terminated
pods beyond the threshold (evicted, then oldest first), unscheduled terminating pods and
terminating pods on an out-of-service node. Fake runtime, on a ManualClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.loops._context import Context
from orchestra.loops._engine import Informers
from orchestra.loops._podgc import PodGC, out_of_service
from orchestra.objects import Node, Pod
from orchestra.objects._scalars import parse_time

pytestmark = pytest.mark.anyio

FAKE = "fake.orchestra.dev/"
FINALIZER = "example.com/hold"
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0.005)


async def eventually(check: Callable[[], Any], *, within: float = 10.0) -> Any:
    """Poll ``check`` until truthy (the cluster's loops run meanwhile)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def pod(name: str, *, node: str | None = None, finalizers: tuple[str, ...] = (),
        annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}], **spec}
    if node:
        body["nodeName"] = node
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


async def fail_node(cluster: oc.Cluster, clock: oc.ManualClock, name: str) -> Any:
    """Stop ``name``'s kubelet and let 60 s pass: the node lifecycle controller marks it
    Ready=Unknown (grace period 40 s, checked every 5 s); returns the Node."""
    await cluster.fail_node(name)
    for _ in range(12):
        await clock.advance(5)
        await settle(5)
    node = await cluster.get(f"node/{name}")
    assert node.condition("Ready").status == "Unknown"
    return node


def get(cluster: oc.Cluster, name: str) -> Pod | None:
    return cluster.store.get_or_none("Pod", name)  # type: ignore[return-value]


def condition(p: Pod, type_: str) -> Any:
    return next((c for c in (p.status.conditions or ()) if c.type == type_), None)


class Recorder:
    """Every change to pods, in order: (type, name, phase, deleting)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None, bool]] = []

    async def run(self, cluster: oc.Cluster) -> None:
        async for ev in cluster.store.watch("Pod"):
            p = ev.object
            self.seen.append((ev.type, p.metadata.name, p.status.phase if p.status else None,
                              p.metadata.deletion_timestamp is not None))

    def of(self, name: str) -> list[tuple[str, str | None, bool]]:
        return [(t, ph, d) for t, n, ph, d in self.seen if n == name]


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", nodes=2, clock=oc.ManualClock()) as c:
        yield c


async def test_orphans_are_failed_then_force_deleted_after_the_quarantine(
        cluster: oc.Cluster) -> None:
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    rec = Recorder()
    async with anyio.create_task_group() as tg:
        tg.start_soon(rec.run, cluster)
        await cluster.apply(pod("held", node="ghost", finalizers=(FINALIZER,)))
        await cluster.apply(pod("free", node="ghost"))
        await cluster.apply(pod("fine", node="node-1"))
        await settle()
        await clock.advance(39.5)
        await settle()
        held = get(cluster, "held")
        assert held is not None and held.status.phase == "Pending"
        assert held.metadata.deletion_timestamp is None
        assert get(cluster, "free") is not None
        await clock.advance(0.5)
        await eventually(lambda: get(cluster, "free") is None)
        # marked Failed before it was deleted, and deleted with no grace period
        assert rec.of("free")[-2:] == [("MODIFIED", "Failed", False), ("DELETED", "Failed", False)]
        held = await eventually(lambda: (p := get(cluster, "held")) is not None
                                and p.metadata.deletion_timestamp is not None and p)
        assert held.status.phase == "Failed"
        assert held.metadata.deletion_grace_period_seconds == 0
        c = condition(held, "DisruptionTarget")
        assert (c.status, c.reason, c.message) == (
            "True", "DeletionByPodGC", "PodGC: node no longer exists")
        assert parse_time(c.last_transition_time) == pytest.approx(clock.now(), abs=1)
        fine = get(cluster, "fine")
        assert fine is not None and fine.metadata.deletion_timestamp is None
        assert ('pod_gc_collector_force_delete_pods_total{namespace="default",'
                'reason="orphaned"} 2.0') in cluster.metrics_text()
        # the finalizer's owner lets it go; nothing else happens to it
        await cluster.patch("pod/held", {"metadata": {"finalizers": None}})
        await eventually(lambda: get(cluster, "held") is None)
        assert ("MODIFIED", "Pending", False) not in rec.of("held")[-2:]
        tg.cancel_scope.cancel()


async def test_a_node_back_within_the_quarantine_keeps_its_pods(cluster: oc.Cluster) -> None:
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    await cluster.apply(pod("early", node="late"))
    await settle()
    await clock.advance(30)
    await settle()
    await cluster.add_node("late")
    await clock.advance(30)
    await settle()
    early = get(cluster, "early")
    assert early is not None and early.metadata.deletion_timestamp is None
    # gone again: a new quarantine, counted from when it went
    await cluster.remove_node("late")
    await settle()
    await clock.advance(39)
    await settle()
    assert get(cluster, "early") is not None
    await clock.advance(1)
    await eventually(lambda: get(cluster, "early") is None)


async def test_a_removed_nodes_running_pods_are_collected(cluster: oc.Cluster) -> None:
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    await cluster.apply(pod("on2", node="node-2", finalizers=(FINALIZER,)))
    await eventually(lambda: (p := get(cluster, "on2")) is not None
                     and p.status.phase == "Running")
    await cluster.remove_node("node-2")
    assert cluster.store.get_or_none("Node", "node-2") is None
    assert cluster.store.get_or_none("Lease", "node-2", namespace="kube-node-lease") is None
    await settle()
    await clock.advance(39)
    await settle()
    on2 = get(cluster, "on2")
    assert on2 is not None and on2.status.phase == "Running"  # no kubelet left to end it
    await clock.advance(1)
    on2 = await eventually(lambda: (p := get(cluster, "on2")) is not None
                           and p.metadata.deletion_timestamp is not None and p)
    assert on2.status.phase == "Failed"
    assert condition(on2, "DisruptionTarget").reason == "DeletionByPodGC"
    with pytest.raises(oc.NotFound, match='nodes "node-2" not found'):
        await cluster.remove_node("node-2")
    await cluster.add_node("node-2")  # the name can come back


async def _terminate(cluster: oc.Cluster, name: str, *, evicted: bool = False) -> None:
    """A pod that has ended: run to completion, or (evicted) Failed as the kubelet's
    eviction leaves it."""
    if evicted:
        await cluster.apply(pod(name, schedulerName="nobody"))
        p = get(cluster, name)
        assert p is not None
        cluster.store.update(p.model_copy(update={"status": p.status.model_copy(update={
            "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory."})}))
    else:
        await cluster.apply(pod(name, node="node-1", restartPolicy="Never",
                                annotations={FAKE + "exit-after": "1s"}))
        await eventually(lambda: (p := get(cluster, name)) is not None
                         and p.status.phase == "Running")
        clock = cluster.clock
        assert isinstance(clock, oc.ManualClock)
        await clock.advance(1)
        await eventually(lambda: (p := get(cluster, name)) is not None
                         and p.status.phase == "Succeeded")


async def test_terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock,
                          terminated_pod_gc_threshold=3) as cluster:
        await cluster.apply(pod("running", node="node-1"))
        for name in ("t1", "t2", "t3"):
            await _terminate(cluster, name)
            await clock.advance(2)
        await settle()
        assert all(get(cluster, n) for n in ("running", "t1", "t2", "t3"))  # at the threshold
        await _terminate(cluster, "t4")
        await eventually(lambda: get(cluster, "t1") is None)
        await settle()
        assert all(get(cluster, n) for n in ("running", "t2", "t3", "t4"))
        await clock.advance(2)
        await _terminate(cluster, "evicted", evicted=True)  # the newest, yet first to go
        await eventually(lambda: get(cluster, "evicted") is None)
        await settle()
        assert all(get(cluster, n) for n in ("running", "t2", "t3", "t4"))
        await clock.advance(2)
        await _terminate(cluster, "t5")
        await eventually(lambda: get(cluster, "t2") is None)
        await settle()
        assert all(get(cluster, n) for n in ("running", "t3", "t4", "t5"))
        running = get(cluster, "running")
        assert running is not None and running.status.phase == "Running"
        text = cluster.metrics_text()
        assert ('pod_gc_collector_force_delete_pods_total{namespace="default",'
                'reason="terminated"} 3.0') in text
        assert "pod_gc_collector_force_delete_pod_errors_total" in text


async def test_a_zero_threshold_keeps_every_terminated_pod() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock,
                          terminated_pod_gc_threshold=0) as cluster:
        for name in ("t1", "t2", "t3"):
            await _terminate(cluster, name)
        await _terminate(cluster, "evicted", evicted=True)
        await clock.advance(60)
        await settle()
        assert all(get(cluster, n) for n in ("t1", "t2", "t3", "evicted"))


def test_the_default_threshold_is_kube_controller_managers() -> None:
    def threshold(**options: Any) -> int:
        store = oc.Store()
        ctx = Context(store, Informers(store), oc.ManualClock(), None, None,  # type: ignore[arg-type]
                      options=options)
        return PodGC(ctx).threshold

    assert threshold() == 12500
    assert threshold(terminated_pod_gc_threshold=7) == 7


async def test_an_unscheduled_pod_being_deleted_is_failed_and_force_deleted(
        cluster: oc.Cluster) -> None:
    await cluster.apply(pod("waiting", schedulerName="nobody", finalizers=(FINALIZER,)))
    await settle()
    await cluster.delete("pod/waiting")
    p = await eventually(lambda: (p := get(cluster, "waiting")) is not None
                         and p.status.phase == "Failed" and p)
    assert p.metadata.deletion_timestamp is not None
    assert condition(p, "DisruptionTarget") is None  # only orphans get it
    await cluster.patch("pod/waiting", {"metadata": {"finalizers": None}})
    await eventually(lambda: get(cluster, "waiting") is None)


async def test_terminating_pods_on_an_out_of_service_node_are_force_deleted() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=2, clock=clock, lease_interval=10,
                          node_monitor_grace_period=40, node_monitor_period=5) as cluster:
        forever = [{"operator": "Exists"}]  # no taint eviction: only PodGC may end them
        await cluster.apply(pod("stuck", node="node-2", tolerations=forever,
                                terminationGracePeriodSeconds=30))
        await cluster.apply(pod("kept", node="node-2", tolerations=forever))
        await eventually(lambda: all((p := get(cluster, n)) is not None
                                     and p.status.phase == "Running" for n in ("stuck", "kept")))
        node = await fail_node(cluster, clock, "node-2")
        await cluster.delete("pod/stuck")
        await clock.advance(60)  # far past its grace period: no kubelet confirms it
        await settle()
        stuck = get(cluster, "stuck")
        assert stuck is not None and stuck.status.phase == "Running"
        await cluster.patch("node/node-2", {"spec": {"taints": [
            *[t.to_dict() for t in node.spec.taints or ()],
            {"key": OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoSchedule"}]}})
        await eventually(lambda: get(cluster, "stuck") is None)
        kept = get(cluster, "kept")  # not being deleted: left alone
        assert kept is not None and kept.metadata.deletion_timestamp is None


def test_out_of_service_means_not_ready_and_tainted() -> None:
    def node(ready: str | None, taint: str | None) -> Node:
        conds = [{"type": "Ready", "status": ready}] if ready else []
        taints = [{"key": taint, "effect": "NoExecute"}] if taint else []
        return Node.model_validate({"metadata": {"name": "n"}, "spec": {"taints": taints},
                                    "status": {"conditions": conds}})

    assert out_of_service(node("False", OUT_OF_SERVICE))
    assert out_of_service(node("Unknown", OUT_OF_SERVICE))
    assert out_of_service(node(None, OUT_OF_SERVICE))
    assert not out_of_service(node("True", OUT_OF_SERVICE))
    assert not out_of_service(node("False", "node.kubernetes.io/unreachable"))


async def test_the_non_graceful_node_shutdown_taint_ends_pods_at_once() -> None:
    """The docs' ``node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`` on a node
    that is down: the taint evicts its pods (no default toleration covers it), and PodGC
    force-deletes them instead of leaving them Terminating; no 300 s wait."""
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=2, clock=clock, lease_interval=10,
                          node_monitor_grace_period=40, node_monitor_period=5) as cluster:
        await cluster.apply(pod("web", node="node-2"))
        await cluster.apply(pod("held", node="node-2", finalizers=(FINALIZER,)))
        await eventually(lambda: all((p := get(cluster, n)) is not None
                                     and p.status.phase == "Running" for n in ("web", "held")))
        node = await fail_node(cluster, clock, "node-2")
        web = get(cluster, "web")
        assert web is not None and web.metadata.deletion_timestamp is None  # 300 s to go
        await cluster.patch("node/node-2", {"spec": {"taints": [
            *[t.to_dict() for t in node.spec.taints or ()],
            {"key": OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoExecute"}]}})
        for _ in range(3):
            await clock.advance(5)
            await settle(5)
        await eventually(lambda: get(cluster, "web") is None)
        assert any(e.reason == "TaintManagerEviction" for e in cluster.events())
        held = await eventually(lambda: (p := get(cluster, "held")) is not None
                                and p.status.phase == "Failed" and p)
        assert held.metadata.deletion_grace_period_seconds == 0
        c = condition(held, "DisruptionTarget")  # the taint manager's, PodGC adds none
        assert (c.reason, c.message) == ("DeletionByTaintManager",
                                         "Taint manager: deleting due to NoExecute taint")
