"""DaemonSets, StatefulSets, CronJobs and HorizontalPodAutoscalers on the fake runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import MakeCluster, ready

pytestmark = pytest.mark.anyio


def _container(**extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"], **extra}


def daemonset(name: str = "agent", annotations: dict[str, str] | None = None,
              **spec: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"metadata": {"labels": {"app": name}},
                                "spec": {"containers": [_container()],
                                         "terminationGracePeriodSeconds": 0}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template,
                     **spec}}


def statefulset(name: str = "web", replicas: int = 3, annotations: dict[str, str] | None = None,
                **spec: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [_container(volumeMounts=[{"name": "www",
                                                          "mountPath": "/data"}])],
                 "terminationGracePeriodSeconds": 0}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": {"app": name}}, "template": template,
                     "volumeClaimTemplates": [{
                         "metadata": {"name": "www"},
                         "spec": {"accessModes": ["ReadWriteOnce"],
                                  "resources": {"requests": {"storage": "1Gi"}}}}],
                     **spec}}


async def eventually(cluster: oc.Cluster, check: Callable[[], Any], *, within: float = 20.0,
                     step: float | None = None) -> Any:
    """Poll ``check`` until truthy; on a ManualClock, advance it by ``step`` each round."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        if step is not None and isinstance(cluster.clock, oc.ManualClock):
            await cluster.clock.advance(step)
        else:
            await asyncio.sleep(0.02)


def _reasons(cluster: oc.Cluster, ref: str) -> list[str]:
    return [e.reason for e in cluster.events(ref)]


# -- DaemonSet ----------------------------------------------------------------------------


async def test_daemonset_runs_one_pod_per_node_and_follows_new_nodes() -> None:
    async with oc.Cluster(runtime="fake", nodes=3) as cluster:
        await cluster.apply(daemonset())
        ds = await cluster.wait_for("ds/agent", "Ready", timeout=20)
        assert ds.status.desired_number_scheduled == 3
        assert ds.status.current_number_scheduled == 3
        assert ds.status.number_ready == 3 and ds.status.number_available == 3
        assert ds.status.updated_number_scheduled == 3
        assert ds.status.number_misscheduled == 0
        assert ds.status.observed_generation == ds.metadata.generation
        pods = await cluster.list("pods", selector="app=agent")
        assert sorted(p.spec.node_name for p in pods) == ["node-1", "node-2", "node-3"]
        for p in pods:
            terms = p.spec.affinity.node_affinity \
                .required_during_scheduling_ignored_during_execution.node_selector_terms
            assert terms[0].match_fields[0].key == "metadata.name"
            assert list(terms[0].match_fields[0].values) == [p.spec.node_name]
            tols = {(t.key, t.effect): t for t in p.spec.tolerations}
            assert tols[("node.kubernetes.io/unreachable", "NoExecute")].toleration_seconds \
                is None
            assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tols
            assert "controller-revision-hash" in p.metadata.labels
        assert "SuccessfulCreate" in _reasons(cluster, "ds/agent")

        # A new node gets a pod; cordoning a node keeps its daemon pod.
        await cluster.cordon("node-1")
        await cluster.add_node(oc.NodeSpec("node-4"))

        def four() -> bool:
            d = cluster.store.get("ds/agent")
            return bool(d.status.desired_number_scheduled == 4 and d.status.number_ready == 4)

        await eventually(cluster, four)
        pods = await cluster.list("pods", selector="app=agent")
        assert sorted(p.spec.node_name for p in pods if p.metadata.deletion_timestamp is None
                      ) == ["node-1", "node-2", "node-3", "node-4"]

        # A node the template no longer selects loses its pod; a rolling update
        # replaces the rest, never more than maxUnavailable (1) at a time.
        await cluster.patch("node/node-4", {"metadata": {"labels": {"agent": "no"}}},
                            namespace="")
        spec = daemonset(annotations={"v": "2"})
        spec["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                "matchExpressions": [{"key": "agent", "operator": "NotIn",
                                      "values": ["no"]}]}]}}}
        await cluster.apply(spec)
        ds = await cluster.wait_for("ds/agent", "Ready", timeout=20)
        assert ds.status.desired_number_scheduled == 3
        h = cluster.store.list("ControllerRevision")

        def settled() -> bool:
            live = [p for p in cluster.store.list("Pod", selector="app=agent")
                    if p.metadata.deletion_timestamp is None]
            return len(live) == 3 and all(
                p.metadata.annotations.get("v") == "2" and ready(p) for p in live)

        await eventually(cluster, settled)
        live = [p for p in cluster.store.list("Pod", selector="app=agent")]
        assert "node-4" not in {p.spec.node_name for p in live}
        assert len(h) == 2  # one ControllerRevision per template


# -- StatefulSet --------------------------------------------------------------------------


async def _record(cluster: oc.Cluster, log: list[tuple[str, str, bool]], rv: str) -> None:
    async for ev in cluster.watch("pods", selector="app=web", resource_version=rv):
        p = ev.object
        kind = "DELETED" if ev.type == "DELETED" else (
            "TERMINATING" if p.metadata.deletion_timestamp is not None else ev.type)
        log.append((kind, p.metadata.name, ready(p)))


async def test_statefulset_orders_pods_claims_and_rolls_back_to_front() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        log: list[tuple[str, str, bool]] = []
        watcher = asyncio.create_task(_record(cluster, log, cluster.store.resource_version))
        await asyncio.sleep(0)
        await cluster.apply(statefulset(annotations={"fake.orchestra.dev/start-delay":
                                                     "50ms"}))
        sts = await cluster.wait_for("sts/web", "Ready", timeout=20)
        assert sts.status.replicas == 3 and sts.status.ready_replicas == 3
        assert sts.status.current_revision == sts.status.update_revision
        # OrderedReady: each pod is created only after the previous one is ready.
        added = [name for kind, name, _ in log if kind == "ADDED"]
        assert added == ["web-0", "web-1", "web-2"]
        for i in (1, 2):
            first_add = next(j for j, e in enumerate(log) if e[:2] == ("ADDED", f"web-{i}"))
            assert any(e[1] == f"web-{i - 1}" and e[2] for e in log[:first_add])
        for i in range(3):
            pod = await cluster.get(f"pod/web-{i}")
            assert pod.spec.hostname == f"web-{i}" and pod.spec.subdomain == "web"
            assert pod.metadata.labels["controller-revision-hash"] == \
                sts.status.update_revision
            assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
            claim = next(v for v in pod.spec.volumes if v.name == "www")
            assert claim.persistent_volume_claim.claim_name == f"www-web-{i}"
            pvc = await cluster.get(f"pvc/www-web-{i}")
            assert pvc.status.phase == "Bound"
            assert pvc.metadata.labels["app"] == "web"

        # Scale down: highest ordinal first, one at a time; claims stay.
        log.clear()
        await cluster.scale("sts/web", 1)
        await eventually(cluster, lambda: cluster.store.get("sts/web").status.replicas == 1
                         and cluster.store.get_or_none("Pod", "web-1", namespace="default")
                         is None)
        gone = [name for kind, name, _ in log if kind in ("TERMINATING", "DELETED")]
        assert gone.index("web-2") < gone.index("web-1")
        assert await cluster.get("pvc/www-web-2")

        # Rolling update with a partition: only ordinals >= partition move.
        await cluster.scale("sts/web", 3)
        await cluster.wait_for("sts/web", "Ready", timeout=20)
        await cluster.apply(statefulset(annotations={"v": "2"}, updateStrategy={
            "type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
        old_rev = (await cluster.get("sts/web")).status.current_revision

        def partitioned() -> Any:
            s = cluster.store.get("sts/web")
            return s.status.updated_replicas == 1 and s.status.ready_replicas == 3 and s

        sts = await eventually(cluster, partitioned)
        assert sts.status.current_revision == old_rev != sts.status.update_revision
        assert sts.status.current_replicas == 2
        revs = {i: cluster.store.get("Pod", f"web-{i}", namespace="default")
                .metadata.labels["controller-revision-hash"] for i in range(3)}
        assert revs == {0: old_rev, 1: old_rev, 2: sts.status.update_revision}
        log.clear()
        await cluster.patch("sts/web", {"spec": {"updateStrategy": {
            "rollingUpdate": {"partition": 0}}}})

        def rolled() -> Any:
            s = cluster.store.get("sts/web")
            return s.status.updated_replicas == 3 and s.status.ready_replicas == 3 and \
                s.status.current_revision == s.status.update_revision and s

        sts = await eventually(cluster, rolled)
        assert sts.status.current_replicas == 3
        terminated = [name for kind, name, _ in log if kind in ("TERMINATING", "DELETED")]
        assert "web-2" not in terminated  # already updated
        assert terminated.index("web-1") < terminated.index("web-0")
        watcher.cancel()


# -- CronJob ------------------------------------------------------------------------------


async def test_cronjob_runs_on_schedule_and_forbids_overlap() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock) as cluster:
        await cluster.apply({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                     "successfulJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"template": {
                         "metadata": {"annotations": {"fake.orchestra.dev/exit-after": "90s"}},
                         "spec": {"restartPolicy": "Never",
                                  "containers": [_container()]}}}}}})
        await clock.advance(1)
        assert cluster.store.list("Job") == []
        start = clock.now()
        first_due = (int(start // 60) + 1) * 60
        await clock.advance(first_due - start + 1)
        jobs = await eventually(cluster, lambda: cluster.store.list("Job"), step=1)
        assert [j.metadata.name for j in jobs] == [f"tick-{first_due // 60}"]
        assert jobs[0].metadata.annotations[
            "batch.kubernetes.io/cronjob-scheduled-timestamp"].endswith("Z")
        cj = await cluster.get("cj/tick")
        assert [a.name for a in cj.status.active] == [jobs[0].metadata.name]
        assert cj.status.last_schedule_time is not None
        # The next minute: the first Job still runs, so Forbid skips this run.
        await clock.advance(60)
        assert len(cluster.store.list("Job")) == 1
        assert "JobAlreadyActive" in _reasons(cluster, "cj/tick")
        # The first Job finishes at +90 s; the run after that starts a new Job.
        await eventually(cluster, lambda: len(cluster.store.list("Job")) >= 2, step=5,
                         within=30)
        await eventually(cluster, lambda: "SawCompletedJob" in _reasons(cluster, "cj/tick"),
                         step=1)
        cj = await cluster.get("cj/tick")
        assert cj.status.last_successful_time is not None
        assert "SuccessfulCreate" in _reasons(cluster, "cj/tick")
        # History limit 1: once the second Job completes, the first is deleted.
        await eventually(cluster, lambda: "SuccessfulDelete" in _reasons(cluster, "cj/tick"),
                         step=5, within=30)
        assert f"tick-{first_due // 60}" not in {j.metadata.name
                                                   for j in cluster.store.list("Job")}


# -- HorizontalPodAutoscaler --------------------------------------------------------------


def _hpa_deployment(cpu: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"},
                                               "annotations": {"fake.orchestra.dev/cpu": cpu}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [_container(resources={
                                               "requests": {"cpu": "100m"}})]}}}}


async def test_hpa_scales_up_on_cpu_and_down_after_stabilization() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=2, clock=clock) as cluster:
        await cluster.apply(_hpa_deployment("200m"))
        await eventually(cluster, lambda: ready_count(cluster) == 1, step=1)
        await cluster.apply({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}]}})
        # 200% of request against a 50% target: 4x, capped by the scale-up limit of 4.
        await eventually(cluster, lambda: cluster.store.get("deploy/web").spec.replicas == 4,
                         step=5)
        events = [e for e in cluster.events("hpa/web") if e.reason == "SuccessfulRescale"]
        assert events[0].message == ("New size: 4; reason: cpu resource utilization "
                                     "(percentage of request) above target")
        # Still 200% on 4 pods: 16 wanted, limited to maxReplicas.
        await eventually(cluster, lambda: cluster.store.get("deploy/web").spec.replicas == 5,
                         step=5)
        await eventually(cluster, lambda: ready_count(cluster) == 5, step=1)
        await clock.advance(15)
        hpa = await cluster.get("hpa/web")
        conds = {c.type: c for c in hpa.status.conditions}
        assert conds["ScalingActive"].reason == "ValidMetricFound"
        assert conds["ScalingLimited"].reason == "TooManyReplicas"
        assert hpa.status.current_metrics[0].resource.current.average_utilization == 200
        assert hpa.status.desired_replicas == 5 and hpa.status.current_replicas == 5
        lines = [" ".join(line.split()) for line in cluster.describe("hpa/web").splitlines()]
        for line in ("Reference: Deployment/web", "Metrics: ( current / target )",
                     "resource cpu on pods (as a percentage of request): 200% (200m) / 50%",
                     "Min replicas: 1", "Max replicas: 5", "Deployment pods: 5 current / 5 desired",
                     "Type Status Reason Message"):
            assert line in lines, line
        assert any(line.startswith("ScalingLimited True TooManyReplicas") for line in lines)

        # Usage drops: the HPA waits out the 300 s stabilization window, then scales in.
        await cluster.patch("deploy/web", {"spec": {"template": {"metadata": {
            "annotations": {"fake.orchestra.dev/cpu": "10m"}}}}})
        dropped = clock.monotonic()
        await eventually(cluster, lambda: cluster.store.get("deploy/web").spec.replicas == 1,
                         step=15, within=40)
        assert clock.monotonic() - dropped >= 285
        assert cluster.store.get("deploy/web").spec.replicas == 1
        assert any(e.message == "New size: 1; reason: All metrics below target"
                   for e in cluster.events("hpa/web"))


def ready_count(cluster: oc.Cluster) -> int:
    return sum(1 for p in cluster.store.list("Pod", selector="app=web")
               if p.metadata.deletion_timestamp is None and ready(p))


async def test_hpa_without_its_target_says_so_and_describes_its_behavior() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"}, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                         "type": "AverageValue", "averageValue": "100Mi"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}})
        await eventually(cluster, lambda: any(
            e.reason == "FailedGetScale" for e in cluster.events("hpa/web")))
        event = next(e for e in cluster.events("hpa/web") if e.reason == "FailedGetScale")
        assert event.message == 'deployments/scale.apps "web" not found'  # the API's words
        lines = cluster.describe("hpa/web").splitlines()
        assert lines[lines.index("Behavior:"):lines.index("Behavior:") + 12] == [
            "Behavior:",
            "  Scale Up:",
            "    Stabilization Window: 0 seconds",
            "    Select Policy: Max",
            "    Policies:",
            "      - Type: Pods     Value: 4    Period: 15 seconds",
            "      - Type: Percent  Value: 100  Period: 15 seconds",
            "  Scale Down:",
            "    Stabilization Window: 60 seconds",
            "    Select Policy: Max",
            "    Policies:",
            "      - Type: Percent  Value: 100  Period: 15 seconds",
        ]
        assert [line.split() for line in lines if "memory on pods" in line] == [
            ["resource", "memory", "on", "pods:", "<unknown>", "/", "100Mi"]]


async def test_apply_ignores_the_status_of_a_manifest_saved_from_a_cluster(
        make_cluster: MakeCluster) -> None:
    # `kubectl get -o yaml` output carries a status; the API server ignores it on create
    # and on update, so a pod saved as Succeeded still runs, and stays Running.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "saved"},
           "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                    "command": ["sleep", "3600"]}],
                    "terminationGracePeriodSeconds": 0},
           "status": {"phase": "Succeeded", "podIP": "10.9.9.9"}}
    async with make_cluster(nodes=1) as cluster:
        created = (await cluster.apply(pod))[0]
        assert created.status is None or created.status.phase != "Succeeded"
        await cluster.wait_for("pod/saved", "Ready", timeout=30)
        again = (await cluster.apply(pod))[0]
        assert again.status.phase == "Running" and again.status.pod_ip != "10.9.9.9"
        assert '"status"' not in again.annotations[
            "kubectl.kubernetes.io/last-applied-configuration"]
