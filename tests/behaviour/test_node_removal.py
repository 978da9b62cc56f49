"""A node removed for good (``cluster.remove_node``): its Node and Lease go, its kubelet
stops, and its pods stay bound to it until the pod garbage collector, 40 s later, marks
them Failed (DisruptionTarget, DeletionByPodGC) and force-deletes them; a Job then
replaces its pod, with ``podReplacementPolicy: Failed`` too. On every runtime."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.runtime import State
from tests.behaviour._util import MakeCluster
from tests.behaviour.test_workloads import eventually

pytestmark = pytest.mark.anyio

JOB = "batch.kubernetes.io/job-name=work"


def job(policy: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work"},
            "spec": {"podReplacementPolicy": policy, "backoffLimit": 3, "template": {
                "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                         "containers": [{"name": "main", "image": "busybox:1.36",
                                         "imagePullPolicy": "IfNotPresent",
                                         "command": ["sleep", "3600"]}]}}}}


def running(cluster: oc.Cluster) -> list[Any]:
    return [p for p in cluster.store.list("Pod", selector=JOB)
            if p.metadata.deletion_timestamp is None and p.status is not None
            and p.status.phase == "Running"]


@pytest.mark.parametrize("policy", ["TerminatingOrFailed", "Failed"])
async def test_a_jobs_pod_on_a_removed_node_is_replaced(make_cluster: MakeCluster,
                                                        policy: str) -> None:
    clock = oc.ScaledClock(20)
    async with make_cluster(nodes=2, clock=clock) as cluster:
        await cluster.apply(job(policy))
        [old] = await eventually(cluster, lambda: running(cluster), within=60)
        gone_node = old.spec.node_name
        seen: list[tuple[str, str, str | None]] = []

        async def record() -> None:
            async for ev in cluster.store.watch("Pod", selector=JOB):
                p = ev.object
                seen.append((ev.type, p.metadata.name, p.status.phase if p.status else None))

        async with anyio.create_task_group() as tg:
            tg.start_soon(record)
            removed_at = clock.monotonic()
            await cluster.remove_node(gone_node)
            assert cluster.store.get_or_none("Node", gone_node) is None
            [new] = await eventually(cluster, lambda: [
                p for p in running(cluster) if p.metadata.name != old.metadata.name],
                within=60)
            # not before the quarantine: until then the old pod looked alive
            assert clock.monotonic() - removed_at >= 40
            assert new.spec.node_name != gone_node
            await eventually(cluster, lambda: cluster.store.get_or_none(
                "Pod", old.metadata.name) is None, within=30)
            tg.cancel_scope.cancel()
        failed = [i for i, e in enumerate(seen) if e[1] == old.metadata.name
                  and e[2] == "Failed"]
        created = [i for i, e in enumerate(seen) if e[0] == "ADDED"
                   and e[1] == new.metadata.name]
        assert failed and created and failed[0] < created[0]  # Failed, then replaced
        j = await cluster.get("job/work")
        assert j.status.failed == 1 and j.status.active == 1
        assert not any(c.type == "Failed" and c.status == "True"
                       for c in j.status.conditions or ())


async def test_deleting_the_node_object_of_a_live_kubelet(make_cluster: MakeCluster) -> None:
    """Only the Node object goes (``kubectl delete node``): the kubelet keeps running its
    pod until PodGC force-deletes it, then stops its container, as a kubelet whose pod
    was deleted does."""
    clock = oc.ScaledClock(20)
    async with make_cluster(nodes=2, clock=clock) as cluster:
        await cluster.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stay"},
            "spec": {"nodeName": "node-2", "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}})
        pod = await cluster.wait_for("pod/stay", "Ready", timeout=60)
        cid = pod.status.container_statuses[0].container_id.partition("://")[2]
        deleted_at = clock.monotonic()
        await cluster.delete("node/node-2")
        await eventually(cluster, lambda: cluster.store.get_or_none("Pod", "stay") is None,
                         within=60)
        assert clock.monotonic() - deleted_at >= 40
        assert cluster.runtime is not None

        async def stopped() -> bool:
            try:
                st = await cluster.runtime.container_status(cid)  # type: ignore[union-attr]
            except oc.NotFound:
                return True
            return st.state is not State.RUNNING

        for _ in range(600):
            if await stopped():
                break
            await anyio.sleep(0.05)
        else:
            raise AssertionError(f"the container {cid} still runs")


async def test_a_pod_failure_policy_can_ignore_podgcs_disruption() -> None:
    """The docs' podFailurePolicy rule ``Ignore`` on ``DisruptionTarget``: the pod PodGC
    failed on a removed node is replaced without counting toward the backoffLimit."""
    spec = job("Failed")
    spec["spec"]["backoffLimit"] = 0
    spec["spec"]["podFailurePolicy"] = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    clock = oc.ScaledClock(20)
    async with oc.Cluster(runtime="fake", nodes=2, clock=clock) as cluster:
        await cluster.apply(spec)
        [old] = await eventually(cluster, lambda: running(cluster), within=60)
        await cluster.remove_node(old.spec.node_name)
        [new] = await eventually(cluster, lambda: [
            p for p in running(cluster) if p.metadata.name != old.metadata.name], within=60)
        await eventually(cluster, lambda: cluster.store.get_or_none(
            "Pod", old.metadata.name) is None, within=30)
        assert new.spec.node_name != old.spec.node_name
        j = await cluster.get("job/work")
        assert not j.status.failed and j.status.active == 1  # backoffLimit 0, not failed
        assert not any(c.type == "Failed" for c in j.status.conditions or ())
