"""Garbage collection follows ownerReferences for every registered kind: dependents of a
deleted owner of any kind (namespaced or cluster-scoped) go, with Background, Foreground
and Orphan propagation, as Kubernetes' garbage collector does."""

from __future__ import annotations

from typing import Any

import pytest

import orchestra as oc
from orchestra.loops._gc import collected_kinds
from orchestra.objects._base import KINDS
from tests.behaviour._servers import eventually

pytestmark = pytest.mark.anyio

OWNERS: dict[str, dict[str, Any]] = {
    "Ingress": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "owner"}, "spec": {"defaultBackend": {
                    "service": {"name": "web", "port": {"number": 80}}}}},
    "PersistentVolumeClaim": {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "owner"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}},
    "ConfigMap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}},
    "Lease": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
              "metadata": {"name": "owner"}, "spec": {"holderIdentity": "x"}},
    "PodDisruptionBudget": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                            "metadata": {"name": "owner"}, "spec": {"minAvailable": 1}},
    # cluster-scoped owners of namespaced dependents
    "PriorityClass": {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                      "metadata": {"name": "owner"}, "value": 10},
    "PersistentVolume": {"apiVersion": "v1", "kind": "PersistentVolume",
                         "metadata": {"name": "owner"},
                         "spec": {"capacity": {"storage": "1Gi"},
                                  "accessModes": ["ReadWriteOnce"],
                                  "hostPath": {"path": "/tmp/orchestra-gc-test"}}},
}


def dependents(owner: Any) -> list[dict[str, Any]]:
    """Dependents of several kinds, each blocking its owner's foreground deletion."""
    ref = {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.metadata.name,
           "uid": owner.metadata.uid, "blockOwnerDeletion": True}
    meta = {"ownerReferences": [ref]}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dep-cm", **meta}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dep-secret", **meta}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": "dep-ing", **meta},
         "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dep-pod", **meta},
         "spec": {"terminationGracePeriodSeconds": 1,
                  "containers": [{"name": "c", "image": "busybox"}]}},
    ]


DEPENDENT_REFS = ["configmap/dep-cm", "secret/dep-secret", "ingress/dep-ing", "pod/dep-pod"]


def present(cluster: oc.Cluster, refs: list[str]) -> list[str]:
    return [ref for ref in refs if cluster.store.get_or_none(ref) is not None]


def test_every_registered_kind_but_events_is_collected() -> None:
    assert set(collected_kinds()) == set(KINDS) - {"Event"}
    assert set(OWNERS) <= set(collected_kinds())


@pytest.mark.parametrize("kind", sorted(OWNERS))
@pytest.mark.parametrize("propagation", ["Background", "Foreground", "Orphan"])
async def test_dependents_of_any_kind_follow_their_owner(kind: str, propagation: str) -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        owner = (await cluster.apply(OWNERS[kind]))[0]
        await cluster.apply(dependents(owner))
        await cluster.wait_for("pod/dep-pod", "Ready", timeout=30)
        owner_ref = f"{kind.lower()}/owner"
        await cluster.delete(owner_ref, propagation=propagation)
        if propagation == "Foreground":
            # The owner waits, marked, until its blocking dependents are gone.
            held = await cluster.get(owner_ref)
            assert held.metadata.deletion_timestamp is not None
            assert "foregroundDeletion" in (held.metadata.finalizers or ())
            assert present(cluster, DEPENDENT_REFS)
        await cluster.wait_for(owner_ref, "Deleted", timeout=30)
        if propagation == "Orphan":
            # Orphaned: every dependent stays, without its reference to the owner.
            for ref in DEPENDENT_REFS:
                dep = await cluster.get(ref)
                assert not dep.metadata.owner_references, ref
            return
        await eventually(lambda: not present(cluster, DEPENDENT_REFS), timeout=30)
        assert present(cluster, DEPENDENT_REFS) == []


async def test_a_dependent_with_another_live_owner_only_loses_the_reference() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        a = (await cluster.apply(OWNERS["Ingress"]))[0]
        b = (await cluster.apply({**OWNERS["ConfigMap"], "metadata": {"name": "keeper"}}))[0]
        refs = [{"apiVersion": o.api_version, "kind": o.kind, "name": o.metadata.name,
                 "uid": o.metadata.uid} for o in (a, b)]
        await cluster.apply({"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": "shared", "ownerReferences": refs}})
        await cluster.delete("ingress/owner")
        await eventually(lambda: [r.kind for r in cluster.store.get(
            "secret/shared").metadata.owner_references or ()] == ["ConfigMap"], timeout=30)


async def test_background_collection_needs_no_event_from_the_dependents() -> None:
    """Only the owner's deletion happens; its dependents (of kinds no controller
    touches) are collected because the owner's kind is watched too."""
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        owner = (await cluster.apply(OWNERS["PersistentVolumeClaim"]))[0]
        ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "owner",
               "uid": owner.metadata.uid}
        await cluster.apply([
            {**OWNERS["Ingress"], "metadata": {"name": "dep", "ownerReferences": [ref]}},
            {**OWNERS["Lease"], "metadata": {"name": "dep", "ownerReferences": [ref]}},
        ])
        refs = ["ingress/dep", "lease/dep"]
        assert present(cluster, refs) == refs
        await cluster.delete("persistentvolumeclaim/owner")
        await eventually(lambda: not present(cluster, refs), timeout=30)


async def test_an_owner_of_a_kind_nobody_serves_is_not_taken_for_gone() -> None:
    """As Kubernetes' collector, which cannot map such a reference: the dependent stays
    (a dangling reference to a known kind, beside it, is collected)."""
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w",
                   "uid": "00000000-0000-0000-0000-000000000001"}
        gone = {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                "uid": "00000000-0000-0000-0000-000000000002"}
        await cluster.apply([
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "widget-dep", "ownerReferences": [unknown]}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "orphan", "ownerReferences": [gone]}},
        ])
        await eventually(lambda: not present(cluster, ["configmap/orphan"]), timeout=30)
        # Make the collector look at it again, then let a later orphan be collected
        # after it: by then any (wrong) collection of it would have happened too.
        await cluster.patch("configmap/widget-dep", {"metadata": {"labels": {"again": "1"}}})
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "orphan2", "ownerReferences": [gone]}})
        await eventually(lambda: not present(cluster, ["configmap/orphan2"]), timeout=30)
        assert present(cluster, ["configmap/widget-dep"]) == ["configmap/widget-dep"]
