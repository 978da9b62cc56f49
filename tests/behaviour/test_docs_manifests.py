"""Every Kubernetes-docs-style manifest in tests/manifests/docs, applied together to one
cluster as a user would paste them in, loads unchanged and makes progress: each workload
gets its pods running (or done), each claim binds (or waits for its first consumer, as
the docs' classes do), each budget, quota and autoscaler gets its status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects import load

DOCS = Path(__file__).resolve().parents[1] / "manifests" / "docs"
MANIFESTS = sorted(DOCS.glob("*.yaml"))


def _running_or_done(pod: Any) -> bool:
    return pod.status is not None and pod.status.phase in ("Running", "Succeeded")


def _progressed(cluster: oc.Cluster, obj: Any) -> bool:
    """Whether ``obj`` (as stored now) shows the progress its kind makes."""
    kind, st = obj.kind, getattr(obj, "status", None)
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        want = obj.spec.replicas if obj.spec.replicas is not None else 1
        if st is not None and any(c.type == "ReplicaFailure" and c.status == "True"
                                  for c in st.conditions or ()):
            return (st.ready_replicas or 0) > 0  # as many as admission lets it have
        return st is not None and (st.ready_replicas or 0) >= want
    if kind == "DaemonSet":
        return st is not None and (st.desired_number_scheduled or 0) > 0 and \
            (st.number_ready or 0) == st.desired_number_scheduled
    if kind == "Job":
        if st is None:
            return False
        finished = any(c.type in ("Complete", "Failed") and c.status == "True"
                       for c in st.conditions or ())
        return (st.active or 0) > 0 or finished
    if kind == "Pod":
        return _running_or_done(obj)
    if kind == "PersistentVolumeClaim":
        return st is not None and st.phase == "Bound"
    if kind == "PersistentVolume":
        return st is not None and st.phase in ("Available", "Bound")
    if kind == "PodDisruptionBudget":
        return st is not None and st.observed_generation is not None and \
            (st.expected_pods or 0) > 0
    if kind == "ResourceQuota":
        return st is not None and st.hard is not None and st.used is not None
    if kind == "HorizontalPodAutoscaler":
        return st is not None and st.current_replicas is not None
    return True  # configuration and policy objects: being stored is their progress


def test_the_directory_holds_docs_manifests() -> None:
    assert len(MANIFESTS) >= 20, MANIFESTS
    kinds = {o.kind for path in MANIFESTS for o in load(path)}
    assert {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "PersistentVolume",
            "PersistentVolumeClaim", "StorageClass", "PodDisruptionBudget", "ResourceQuota",
            "PriorityClass", "HorizontalPodAutoscaler", "LimitRange"} <= kinds, kinds


@pytest.mark.anyio
async def test_every_docs_manifest_applied_together_makes_progress() -> None:
    nodes = [oc.NodeSpec(f"node-{i}", cpu="16", memory="64Gi") for i in range(1, 4)]
    async with oc.Cluster(runtime="fake", nodes=nodes) as cluster:
        # the class the docs' generic ephemeral volume example assumes the cluster has
        await cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                             "metadata": {"name": "scratch-storage-class"},
                             "provisioner": "orchestra.dev/local-path",
                             "volumeBindingMode": "WaitForFirstConsumer"})
        applied = await cluster.apply(DOCS)
        assert len(applied) >= 40
        stuck: dict[str, str] = {}
        for obj in applied:
            ns = obj.metadata.namespace or "default"
            ref = f"{obj.kind}/{obj.metadata.name}"
            try:  # (by the object itself: Istio's and the Gateway API's Gateway share a kind)
                await cluster.wait_for(obj, lambda o: _progressed(cluster, o),
                                       namespace=ns, timeout=30)
            except oc.Timeout as exc:
                stuck[f"{ns}/{ref}"] = str(exc)[:2000]
        assert not stuck, "\n\n".join(f"{k}:\n{v}" for k, v in stuck.items())
        # the claim the docs' pod mounts is bound to the docs' volume
        claim = await cluster.get("pvc/task-pv-claim")
        assert claim.spec.volume_name == "task-pv-volume"
        # the docs' pod quota lets two of the three replicas be, and the Deployment says why
        demo = await cluster.get("deploy/pod-quota-demo", namespace="quota-pod-example")
        failure = [c for c in demo.status.conditions if c.type == "ReplicaFailure"]
        assert demo.status.ready_replicas == 2 and failure, demo.status
        assert failure[0].reason == "FailedCreate"
        assert "exceeded quota: pod-demo, requested: pods=1, used: pods=2, limited: pods=2" \
            in failure[0].message
