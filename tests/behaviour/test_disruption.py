"""PodDisruptionBudgets: the status the disruption controller writes (expected pods from
the controllers' scale), the Eviction API (429 when the budget says no), and drain going
through it one pod at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment, ready

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"
VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."


def budget(name: str = "web", app: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}


async def until(cluster: oc.Cluster, check: Callable[[], Any], *, step: float = 0.5,
                rounds: int = 400) -> Any:
    """Advance the ManualClock by ``step`` until ``check()`` is truthy (bounded)."""
    clock = cluster.clock
    assert isinstance(clock, oc.ManualClock)
    for _ in range(rounds):
        value = check()
        if value:
            return value
        await clock.advance(step)
    raise AssertionError("condition not reached")


def status_of(cluster: oc.Cluster, name: str = "web") -> Any:
    pdb = cluster.store.get("pdb", name)
    return pdb.status


def settled(cluster: oc.Cluster, name: str = "web", **want: Any) -> Callable[[], bool]:
    def check() -> bool:
        st = status_of(cluster, name)
        return st is not None and all(getattr(st, k) == v for k, v in want.items())
    return check


def live_ready(cluster: oc.Cluster, app: str = "web") -> list[Any]:
    return [p for p in cluster.store.list("Pod", selector=f"app={app}")
            if p.metadata.deletion_timestamp is None and ready(p)]


async def test_status_counts_expected_pods_from_the_deployments_scale() -> None:
    async with oc.Cluster(runtime="fake", nodes=2, clock=oc.ManualClock()) as cluster:
        await cluster.apply(deployment(replicas=4,
                                       annotations={"fake.orchestra.dev/start-delay": "10s"}))
        await cluster.apply(budget(maxUnavailable=1))
        await until(cluster, settled(cluster, current_healthy=4))
        st = status_of(cluster)
        assert (st.expected_pods, st.desired_healthy, st.current_healthy,
                st.disruptions_allowed, st.observed_generation) == (4, 3, 4, 1, 1)
        cond = st.conditions[0]
        assert (cond.type, cond.status, cond.reason) == ("DisruptionAllowed", "True",
                                                         "SufficientPods")
        # A pod deleted behind the budget's back: the scale still says 4 are expected.
        victim = live_ready(cluster)[0]
        await cluster.delete("pod", victim.metadata.name)
        await until(cluster, settled(cluster, current_healthy=3))
        st = status_of(cluster)
        assert (st.expected_pods, st.desired_healthy, st.disruptions_allowed) == (4, 3, 0)
        assert (st.conditions[0].status, st.conditions[0].reason) == ("False",
                                                                      "InsufficientPods")
        await until(cluster, settled(cluster, current_healthy=4, disruptions_allowed=1))

        # A percentage minAvailable also counts from the scale (rounded up).
        await cluster.apply(budget("half", minAvailable="50%"))
        await until(cluster, settled(cluster, "half", current_healthy=4))
        st = status_of(cluster, "half")
        assert (st.expected_pods, st.desired_healthy, st.disruptions_allowed) == (4, 2, 2)
        await cluster.scale("deploy/web", 5)
        await until(cluster, settled(cluster, "half", expected_pods=5, current_healthy=5))
        assert status_of(cluster, "half").desired_healthy == 3

        # An integer minAvailable counts the pods there are.
        await cluster.apply(budget("three", minAvailable=3))
        await until(cluster, settled(cluster, "three", current_healthy=5))
        st = status_of(cluster, "three")
        assert (st.expected_pods, st.desired_healthy, st.disruptions_allowed) == (5, 3, 2)


async def test_expected_pods_come_from_the_scale_not_the_pods_there_are() -> None:
    """A quota lets only 3 of 4 replicas exist: the budget still expects 4, so with
    maxUnavailable 1 it allows no disruption (one replica is already missing)."""
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as cluster:
        await cluster.apply({"apiVersion": "v1", "kind": "ResourceQuota",
                             "metadata": {"name": "q"}, "spec": {"hard": {"pods": "3"}}})
        await cluster.apply(deployment(replicas=4))
        await cluster.apply(budget(maxUnavailable=1))
        await until(cluster, settled(cluster, current_healthy=3))
        st = status_of(cluster)
        assert (st.expected_pods, st.desired_healthy, st.disruptions_allowed) == (4, 3, 0)
        with pytest.raises(oc.TooManyRequests):
            await cluster.evict(live_ready(cluster)[0])


async def test_evict_spends_the_budget_and_refuses_with_429() -> None:
    async with oc.Cluster(runtime="fake", nodes=2, clock=oc.ManualClock()) as cluster:
        await cluster.apply(deployment(replicas=3,
                                       annotations={"fake.orchestra.dev/start-delay": "10s"}))
        await cluster.apply(budget(maxUnavailable=1))
        await until(cluster, settled(cluster, current_healthy=3, disruptions_allowed=1))
        first, second = live_ready(cluster)[:2]
        await cluster.evict(first)
        gone = cluster.store.get("pod", first.metadata.name)
        assert gone.metadata.deletion_timestamp is not None
        target = next(c for c in gone.status.conditions if c.type == "DisruptionTarget")
        assert (target.status, target.reason, target.message) == (
            "True", "EvictionByEvictionAPI", "Eviction API: evicting")
        st = status_of(cluster)
        assert st.disruptions_allowed == 0
        assert list(st.disrupted_pods) == [first.metadata.name]
        await until(cluster, settled(cluster, current_healthy=2))
        with pytest.raises(oc.TooManyRequests) as err:
            await cluster.evict(second.metadata.name)
        assert str(err.value) == VIOLATES
        assert err.value.causes == (
            "The disruption budget web needs 2 healthy pods and has 2 currently",)
        assert cluster.store.get("pod", second.metadata.name).metadata.deletion_timestamp \
            is None
        # Once the replacement is Ready (10 s start delay) the budget allows one again.
        await until(cluster, settled(cluster, current_healthy=3, disruptions_allowed=1))
        await cluster.evict(f"pod/{second.metadata.name}")
        with pytest.raises(oc.NotFound):
            await cluster.evict("nope")


async def test_unhealthy_pod_eviction_policy() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as cluster:
        await cluster.apply(deployment(replicas=2))
        sick_app = deployment("sick", replicas=2, annotations={
            "fake.orchestra.dev/probe-fail": "readiness"})
        sick_app["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
            "exec": {"command": ["true"]}, "periodSeconds": 1}
        await cluster.apply(sick_app)
        await cluster.apply(budget("sick", app="sick", minAvailable=1))
        await until(cluster, lambda: len([p for p in cluster.store.list(
            "Pod", selector="app=sick") if p.status.phase == "Running"]) == 2)
        await until(cluster, settled(cluster, "sick", expected_pods=2))
        assert status_of(cluster, "sick").current_healthy == 0
        sick = cluster.store.list("Pod", selector="app=sick")[0]
        # IfHealthyBudget (the default): the budget is not satisfied, so the unready pod
        # is guarded like a healthy one
        with pytest.raises(oc.TooManyRequests):
            await cluster.evict(sick)
        await cluster.patch("pdb/sick", {"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}})
        await until(cluster, lambda: status_of(cluster, "sick").observed_generation == 2)
        await cluster.evict(sick)
        assert cluster.store.get("pod", sick.metadata.name).metadata.deletion_timestamp


async def test_a_controller_without_scale_makes_the_budget_fail_safe() -> None:
    async with oc.Cluster(runtime="fake", nodes=2, clock=oc.ManualClock()) as cluster:
        await cluster.apply({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}})
        await cluster.apply(budget("agent", app="agent", maxUnavailable=1))
        cond = await until(cluster, lambda: (st := status_of(cluster, "agent")) is not None
                           and st.conditions and st.conditions[0].reason == "SyncFailed"
                           and st.conditions[0])
        assert cond.status == "False"
        assert cond.message == "daemonsets.apps does not implement the scale subresource"
        assert status_of(cluster, "agent").disruptions_allowed == 0
        assert any(e.reason == "CalculateExpectedPodCountFailed" for e in
                   cluster.events("pdb/agent"))
        # bare pods are left out of the count, with a warning
        await cluster.create({"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": "bare", "labels": {"app": "bare"}},
                              "spec": {"containers": [{"name": "a", "image": "busybox"}]}})
        await cluster.apply(budget("bare", app="bare", maxUnavailable=1))
        await until(cluster, lambda: any(e.reason == "UnmanagedPods"
                                         for e in cluster.events("pdb/bare")))
        assert status_of(cluster, "bare").expected_pods == 0
        # two budgets over one pod: the eviction subresource refuses
        await cluster.apply(budget("bare2", app="bare", minAvailable=0))
        with pytest.raises(oc.OrchestraError, match="more than one PodDisruptionBudget"):
            await cluster.evict("bare")


async def test_drain_keeps_max_unavailable_one_of_four(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    """The issue's reproduction: 4 replicas, maxUnavailable 1, drain: never fewer than 3
    Ready pods, and all 4 end on the other node."""
    caplog.set_level(logging.INFO, logger="orchestra.drain")
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as cluster:
        await cluster.apply(deployment(replicas=4,
                                       annotations={"fake.orchestra.dev/start-delay": "12s"}))
        await cluster.apply(budget(maxUnavailable=1))
        await until(cluster, settled(cluster, current_healthy=4, disruptions_allowed=1))
        await cluster.add_node("node-2")
        ready_now: dict[str, bool] = {p.metadata.name: True for p in live_ready(cluster)}
        lowest = [len(ready_now)]

        async def watch() -> None:
            async for ev in cluster.watch("Pod", selector="app=web",
                                          resource_version=cluster.store.list(
                                              "Pod")[-1].metadata.resource_version):
                p = ev.object
                ready_now[p.metadata.name] = (ev.type != "DELETED" and ready(p)
                                              and p.metadata.deletion_timestamp is None)
                lowest[0] = min(lowest[0], sum(ready_now.values()))

        watcher = asyncio.ensure_future(watch())
        drain = asyncio.ensure_future(cluster.drain("node-1", timeout=300))
        try:
            await until(cluster, drain.done, step=1)
            drain.result()
        finally:
            watcher.cancel()
            drain.cancel()
        assert lowest[0] == 3
        pods = await until(cluster, lambda: len(live_ready(cluster)) == 4 and live_ready(
            cluster))
        assert len(pods) == 4 and {p.spec.node_name for p in pods} == {"node-2"}
        lines = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("evicting pod default/web-") for m in lines)
        retry = [m for m in lines if "(will retry after 5s)" in m]
        assert retry and retry[0].startswith('error when evicting pods/"web-')
        assert retry[0].endswith(f'-n "default" (will retry after 5s): {VIOLATES}')
        assert lines[0] == "node/node-1 cordoned" and lines[-1] == "node/node-1 drained"
        assert len([m for m in lines if m.startswith("pod/web-")
                    and m.endswith(" evicted")]) == 4


async def test_the_docs_zookeeper_budget_holds_during_a_drain() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as cluster:
        await cluster.apply(str(DOCS / "sched-pdb-zookeeper.yaml"))
        await until(cluster, settled(cluster, "zk-pdb", current_healthy=3))
        st = status_of(cluster, "zk-pdb")
        assert (st.expected_pods, st.desired_healthy, st.disruptions_allowed) == (3, 2, 1)
        await cluster.add_node("node-2")
        drain = asyncio.ensure_future(cluster.drain("node-1", timeout=300))
        seen_low = 3
        try:
            for _ in range(600):
                if drain.done():
                    break
                seen_low = min(seen_low, len(live_ready(cluster, "zookeeper")))
                await cluster.clock.advance(0.5)  # type: ignore[attr-defined]
            drain.result()
        finally:
            drain.cancel()
        assert seen_low >= 2
        await until(cluster, lambda: len(live_ready(cluster, "zookeeper")) == 3)
        assert {p.spec.node_name for p in live_ready(cluster, "zookeeper")} == {"node-2"}


def test_sync_cluster_evicts() -> None:
    with oc.SyncCluster(runtime="fake", nodes=1) as cluster:
        cluster.apply(deployment(replicas=2))
        cluster.apply(budget(minAvailable=2))
        cluster.wait_for("pdb/web", lambda b: b.status is not None
                         and b.status.current_healthy == 2, timeout=30)
        name = cluster.list("pods", selector="app=web")[0].metadata.name
        with pytest.raises(oc.TooManyRequests, match="disruption budget"):
            cluster.evict(name)


async def test_a_recorded_eviction_stops_counting_after_two_minutes() -> None:
    """An entry of disruptedPods whose pod never began to go (its deletion failed, say)
    keeps the pod out of currentHealthy for DeletionTimeout (2 min), then is dropped."""
    async with oc.Cluster(runtime="fake", nodes=1, clock=oc.ManualClock()) as cluster:
        await cluster.apply(deployment(replicas=3))
        await cluster.apply(budget(minAvailable=1))
        await until(cluster, settled(cluster, current_healthy=3, disruptions_allowed=2))
        name = live_ready(cluster)[0].metadata.name
        stamp = oc.objects.format_time(cluster.clock.now())

        def record(pdb: Any) -> None:
            pdb.status.disrupted_pods = {name: stamp}
        await cluster.edit("pdb/web", record)
        await until(cluster, settled(cluster, current_healthy=2, disruptions_allowed=1))
        assert dict(status_of(cluster).disrupted_pods) == {name: stamp}
        await cluster.clock.advance(100)  # type: ignore[attr-defined]
        assert status_of(cluster).current_healthy == 2
        await until(cluster, settled(cluster, current_healthy=3, disruptions_allowed=2))
        assert status_of(cluster).disrupted_pods is None
