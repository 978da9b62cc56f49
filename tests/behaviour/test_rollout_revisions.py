"""``rollout_history`` / ``rollout_undo`` for DaemonSets and StatefulSets, read from their
ControllerRevisions as kubectl does (docs manifests, fake runtime)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.objects import DaemonSet
from tests.behaviour._util import ready
from tests.behaviour.test_workloads import eventually

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).parent.parent / "manifests" / "docs"
FLUENTD = "quay.io/fluentd_elasticsearch/fluentd"
CAUSE = "kubernetes.io/change-cause"


def _images(cluster: oc.Cluster, selector: str, namespace: str) -> set[str] | None:
    live = [p for p in cluster.store.list("Pod", namespace=namespace, selector=selector)
            if p.metadata.deletion_timestamp is None]
    if not live or not all(ready(p) for p in live):
        return None
    return {p.spec.containers[0].image for p in live}


def _has_images(cluster: oc.Cluster, selector: str, namespace: str, want: set[str]) -> bool:
    return _images(cluster, selector, namespace) == want


async def test_daemonset_history_and_undo_from_controller_revisions(
        caplog: pytest.LogCaptureFixture) -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply(DOCS / "jobs-daemonset-fluentd.yaml")
        ref, ns, sel = "ds/fluentd-elasticsearch", "kube-system", "name=fluentd-elasticsearch"
        await eventually(cluster, lambda: _images(cluster, sel, ns) == {f"{FLUENTD}:v2.5.2"})
        history = await cluster.rollout_history(ref, namespace=ns)
        assert [(h["revision"], h["change_cause"]) for h in history] == [(1, None)]
        with pytest.raises(oc.NotFound, match=r"^unable to find specified revision 0 in "
                                              r"history$"):
            await cluster.rollout_undo(ref, namespace=ns)

        def bump(ds: DaemonSet) -> None:
            ds.metadata.annotations = {CAUSE: "image updated to v2.6.0"}
            ds.spec.template.spec.containers[0].image = f"{FLUENTD}:v2.6.0"

        await cluster.edit(ref, bump, namespace=ns)
        await eventually(cluster, lambda: _images(cluster, sel, ns) == {f"{FLUENTD}:v2.6.0"})
        history = await cluster.rollout_history(ref, namespace=ns)
        assert [(h["revision"], h["change_cause"]) for h in history] == [
            (1, None), (2, "image updated to v2.6.0")]
        assert history[0]["template"]["spec"]["containers"][0]["image"] == f"{FLUENTD}:v2.5.2"

        with caplog.at_level(logging.INFO, logger="orchestra.rollout"):
            ds = await cluster.rollout_undo(ref, namespace=ns)
        assert "daemonset.apps/fluentd-elasticsearch rolled back" in caplog.messages
        assert ds.spec.template.spec.containers[0].image == f"{FLUENTD}:v2.5.2"
        await eventually(cluster, lambda: _images(cluster, sel, ns) == {f"{FLUENTD}:v2.5.2"})
        # The revision rolled back to becomes the newest, as Kubernetes renumbers it.
        history = await cluster.rollout_history(ref, namespace=ns)
        assert [h["revision"] for h in history] == [2, 3]

        with pytest.raises(oc.NotFound, match=r"^unable to find specified revision 9 in "
                                              r"history$"):
            await cluster.rollout_undo(ref, to_revision=9, namespace=ns)
        before = cluster.store.get(ref, namespace=ns).metadata.resource_version
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="orchestra.rollout"):
            same = await cluster.rollout_undo(ref, to_revision=3, namespace=ns)
        assert same.metadata.resource_version == before
        assert caplog.messages == ["daemonset.apps/fluentd-elasticsearch skipped rollback "
                                   "(current template already matches revision 3)"]
        await cluster.rollout_undo(ref, to_revision=2, namespace=ns)
        await eventually(cluster, lambda: _images(cluster, sel, ns) == {f"{FLUENTD}:v2.6.0"})


async def test_statefulset_history_and_undo_to_a_revision() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply(DOCS / "jobs-statefulset-web.yaml")
        ref, nginx = "sts/web", "registry.k8s.io/nginx-slim"
        await eventually(cluster, lambda: _images(cluster, "app=nginx", "default")
                         == {f"{nginx}:0.21"})
        for tag in ("0.22", "0.23"):
            await cluster.patch(ref, {"metadata": {"annotations": {CAUSE: f"to {tag}"}},
                                      "spec": {"template": {"spec": {"containers": [
                                          {"name": "nginx", "image": f"{nginx}:{tag}"}]}}}})
            await eventually(cluster, functools.partial(
                _has_images, cluster, "app=nginx", "default", {f"{nginx}:{tag}"}))
        history = await cluster.rollout_history(ref)
        assert [(h["revision"], h["change_cause"]) for h in history] == [
            (1, None), (2, "to 0.22"), (3, "to 0.23")]
        assert all(h["controllerrevision"].startswith("web-") for h in history)
        sts = await cluster.rollout_undo(ref, to_revision=1)
        assert sts.spec.template.spec.containers[0].image == f"{nginx}:0.21"
        await eventually(cluster, lambda: _images(cluster, "app=nginx", "default")
                         == {f"{nginx}:0.21"})
        assert [h["revision"] for h in await cluster.rollout_history(ref)] == [2, 3, 4]


async def test_rollout_of_a_kind_without_history_is_refused() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "c"}, "data": {}})
        with pytest.raises(oc.Invalid, match='no rollbacker has been implemented for '
                                             '"ConfigMap"'):
            await cluster.rollout_undo("cm/c")
        with pytest.raises(oc.Invalid, match='no history viewer has been implemented for '
                                             '"ConfigMap"'):
            await cluster.rollout_history("cm/c")
