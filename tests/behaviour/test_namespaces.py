"""Deleting a Namespace, as Kubernetes' namespace controller does it: everything in it
goes (every kind), the deletion conditions say how it is going, ``spec.finalizers`` is
cleared and the namespace removed; nothing new may be created in it meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects._base import KINDS
from tests.behaviour._servers import eventually

pytestmark = pytest.mark.anyio

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}


def content(ns: str) -> list[dict[str, Any]]:
    """One or more objects of many kinds, owners with their dependents."""
    meta = {"namespace": ns}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", **meta},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": template}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", **meta},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", **meta},
         "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", **meta},
         "stringData": {"k": "v"}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", **meta},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
             {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "pdb", **meta},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    ]


def everything(cluster: oc.Cluster, ns: str) -> dict[str, int]:
    """Every object of every registered namespaced kind in ``ns``, counted by kind."""
    out: dict[str, int] = {}
    for info in KINDS.values():
        if info.namespaced:
            n = len(cluster.store.list(info.kind, namespace=ns))
            if n:
                out[info.kind] = n
    return out


def conditions(ns: Any) -> dict[str, tuple[str, str | None, str | None]]:
    return {c.type: (c.status, c.reason, c.message) for c in ns.status.conditions or ()}


async def test_an_empty_namespace_is_removed() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(NS)
        assert (await cluster.get("namespace/team")).status.phase == "Active"
        await cluster.delete("namespace/team")
        await cluster.wait_for("namespace/team", "Deleted", timeout=30)
        assert everything(cluster, "team") == {}


async def test_deleting_a_namespace_deletes_every_kind_and_reports_progress() -> None:
    async with oc.Cluster(runtime="fake", nodes=2) as cluster:
        await cluster.apply(NS)
        await cluster.apply({**NS, "metadata": {"name": "other"}})
        await cluster.apply(content("team") + content("other"))
        # A finalizer nobody serves holds one ConfigMap, so the namespace stays
        # Terminating long enough to see how its deletion goes.
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "held", "namespace": "team", "finalizers": ["example.com/hold"]}})
        await cluster.wait_for("deployment/web", "Available", namespace="team", timeout=30)
        before = everything(cluster, "team")
        assert {"Deployment", "ReplicaSet", "Pod", "Service", "ConfigMap", "Secret", "Job",
                "PodDisruptionBudget"} <= set(before), before
        other = everything(cluster, "other")
        watch = cluster.watch("namespaces", resource_version=cluster.store.resource_version)

        deleted = await cluster.delete("namespace/team")
        assert deleted is not None and deleted.status.phase == "Terminating"
        with pytest.raises(oc.Forbidden) as refused:
            await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "late", "namespace": "team"}})
        assert str(refused.value) == (
            'configmaps "late" is forbidden: unable to create new content in namespace '
            "team because it is being terminated")

        await eventually(lambda: everything(cluster, "team") == {"ConfigMap": 1}, timeout=30)
        ns = await cluster.get("namespace/team")
        assert ns.status.phase == "Terminating"
        assert ns.spec.finalizers == ("kubernetes",)
        assert conditions(ns) == {
            "NamespaceDeletionDiscoveryFailure": (
                "False", "ResourcesDiscovered", "All resources successfully discovered"),
            "NamespaceDeletionGroupVersionParsingFailure": (
                "False", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
            "NamespaceDeletionContentFailure": (
                "False", "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization"),
            "NamespaceContentRemaining": (
                "True", "SomeResourcesRemain",
                "Some resources are remaining: configmaps. has 1 resource instances"),
            "NamespaceFinalizersRemaining": (
                "True", "SomeFinalizersRemain", "Some content in the namespace has "
                "finalizers remaining: example.com/hold in 1 resource instances"),
        }
        assert [c.type for c in ns.status.conditions] == [
            "NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
            "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
            "NamespaceFinalizersRemaining"]

        await cluster.patch("configmap/held", {"metadata": {"finalizers": None}},
                            namespace="team")
        await cluster.wait_for("namespace/team", "Deleted", timeout=30)
        assert everything(cluster, "team") == {}
        assert everything(cluster, "other") == other  # another namespace is untouched

        seen: list[tuple[str, Any]] = []
        async with asyncio.timeout(5):
            async for ev in watch:
                if ev.object.metadata.name == "team":
                    seen.append((ev.type, ev.object))
                    if ev.type == "DELETED":
                        break
        await watch.aclose()  # type: ignore[attr-defined]
        last = seen[-1][1]
        assert seen[-1][0] == "DELETED" and not last.spec.finalizers  # finalized first
        # While it emptied, the conditions went from content remaining to removed.
        final = conditions(last)
        assert final["NamespaceContentRemaining"] == (
            "False", "ContentRemoved", "All content successfully removed")
        assert final["NamespaceFinalizersRemaining"] == (
            "False", "ContentHasNoFinalizers", "All content-preserving finalizers finished")
        # The name is free again.
        await cluster.apply(NS)
        assert (await cluster.get("namespace/team")).status.phase == "Active"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_deleting_a_namespace_stops_its_processes() -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(NS)
        command = ["sh", "-c", "echo $$$$ > pid; exec sleep 1000"]
        template = {"metadata": {"labels": {"app": "s"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": command}]}}
        await cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "sleepers", "namespace": "team"},
                             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "s"}},
                                      "template": template}})
        await cluster.wait_for("deployment/sleepers", "Available", namespace="team", timeout=60)
        pids = []
        for pod in await cluster.list("pods", namespace="team"):
            for _ in range(100):
                r = await cluster.exec(pod, ["cat", "pid"])
                if r.exit_code == 0 and r.stdout.strip():
                    break
                await asyncio.sleep(0.05)
            pids.append(int(r.stdout))
        assert len(pids) == 2 and all(alive(p) for p in pids)
        await cluster.delete("namespace/team")
        await cluster.wait_for("namespace/team", "Deleted", timeout=60)
        assert everything(cluster, "team") == {}
        assert not [p for p in pids if alive(p)]


async def test_a_content_deletion_failure_is_reported_and_retried() -> None:
    """An object whose deletion is refused (here by an admission hook) keeps the namespace
    Terminating with NamespaceDeletionContentFailure saying why; once the refusal ends,
    the next pass empties and removes the namespace."""
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        refuse = True

        def hold(op: str, new: Any, old: Any) -> None:
            if op == "DELETE" and refuse and old.metadata.name == "stuck":
                raise oc.Forbidden('configmaps "stuck" is forbidden: held by a test')

        cluster.store.add_admission(hold, kinds=["ConfigMap"])
        await cluster.apply(NS)
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "stuck", "namespace": "team"}})
        await cluster.delete("namespace/team")

        def failing() -> Any:
            ns = cluster.store.get_or_none("Namespace", "team")
            got = conditions(ns) if ns is not None else {}
            return got if got.get("NamespaceDeletionContentFailure", ("",))[0] == "True" \
                else None

        got = await eventually(failing, timeout=30)
        assert got["NamespaceDeletionContentFailure"] == (
            "True", "ContentDeletionFailed", "Failed to delete all resource types, 1 "
            'remaining: configmaps "stuck" is forbidden: held by a test')
        assert got["NamespaceContentRemaining"] == (
            "True", "SomeResourcesRemain",
            "Some resources are remaining: configmaps. has 1 resource instances")
        assert got["NamespaceFinalizersRemaining"][0] == "False"
        refuse = False
        await cluster.wait_for("namespace/team", "Deleted", timeout=30)
        assert everything(cluster, "team") == {}


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_the_system_namespaces_may_not_be_deleted(name: str) -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        with pytest.raises(oc.Forbidden) as err:
            await cluster.delete(f"namespace/{name}")
        assert str(err.value) == (f'namespaces "{name}" is forbidden: this namespace may not '
                                  "be deleted")
        ns = await cluster.get(f"namespace/{name}")
        assert ns.metadata.deletion_timestamp is None and ns.status.phase == "Active"
