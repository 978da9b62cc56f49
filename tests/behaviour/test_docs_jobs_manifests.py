"""Every ``tests/manifests/docs/jobs-*.yaml`` (Kubernetes-docs manifests for Jobs,
rollout history and HPAs) loads unchanged and every workload in it progresses on the
fake runtime: Jobs start pods (or finish), DaemonSets and StatefulSets become ready,
Deployments available, HorizontalPodAutoscalers report on their target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects import load
from tests.behaviour.test_workloads import eventually

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"
FILES = sorted(DOCS.glob("jobs-*.yaml"))


def _progressed(cluster: oc.Cluster, obj: Any) -> bool:
    cur = cluster.store.get_or_none(obj.kind, obj.metadata.name,
                                    namespace=obj.metadata.namespace or "default")
    if cur is None:
        return False
    st = cur.__dict__.get("status")
    if obj.kind == "Job":
        done = any(c.type in ("Complete", "Failed") and c.status == "True"
                   for c in (st.conditions or ())) if st else False
        return bool(st and ((st.active or 0) > 0 or done))
    if obj.kind == "DaemonSet":
        return bool(st and st.desired_number_scheduled and
                    st.number_ready == st.desired_number_scheduled)
    if obj.kind == "StatefulSet":
        return bool(st and st.ready_replicas == cur.spec.replicas)
    if obj.kind == "Deployment":
        return bool(st and st.available_replicas == cur.spec.replicas)
    if obj.kind == "HorizontalPodAutoscaler":
        return bool(st and (st.current_replicas or 0) >= 1)
    return True


def test_the_directory_has_the_manifests() -> None:
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
async def test_docs_manifest_progresses(path: Path) -> None:
    objects = load(path)
    assert objects
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply(path)
        for obj in objects:
            await eventually(cluster, lambda o=obj: _progressed(cluster, o),  # type: ignore[misc]
                             within=30)
