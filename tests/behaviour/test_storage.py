"""Storage as Kubernetes does it (fake runtime): the PV controller's binding rules,
phases and reclaim, StorageClasses with the default class and the local provisioner,
and the scheduler's volume checks with their messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.objects import load
from tests.behaviour._servers import eventually

pytestmark = pytest.mark.anyio

NOT_HELPFUL = " preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
DOCS = Path(__file__).parent.parent / "manifests" / "docs"


def docs(name: str) -> list[Any]:
    return load(DOCS / f"storage-{name}.yaml")


def pv(name: str, size: str, *, cls: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",),
       path: str = "/tmp/orchestra-test-unused", **spec: Any) -> dict[str, Any]:
    labels = spec.pop("labels", None)
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, **({"labels": labels} if labels else {})},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes),
                     "storageClassName": cls, "hostPath": {"path": path}, **spec}}


def pvc(name: str, size: str, *, cls: str | None = "",
        modes: tuple[str, ...] = ("ReadWriteOnce",), **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"accessModes": list(modes),
                         "resources": {"requests": {"storage": size}}, **spec}
    if cls is not None:
        s["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": s}


def pod(name: str, *claims: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "volumeMounts": [{"name": f"v{i}", "mountPath":
                                                       f"/data{i}"}
                                                      for i in range(len(claims))]}],
                     "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                 for i, c in enumerate(claims)], **spec}}


def phase(cluster: oc.Cluster, kind: str, name: str, want: str) -> Any:
    obj = cluster.store.get_or_none(kind, name, namespace="default")
    return obj if obj is not None and obj.status.phase == want else None


def reasons(cluster: oc.Cluster, ref: str) -> list[tuple[str, str, str | None]]:
    return [(e.reason or "", e.type or "", e.message) for e in cluster.events(ref)]


def scheduled_message(cluster: oc.Cluster, name: str) -> str | None:
    p = cluster.store.get("Pod", name)
    cond = p.status.condition("PodScheduled") if p.status is not None else None
    return cond.message if cond is not None and cond.status == "False" else None


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="fake", nodes=2) as c:
        yield c


async def test_docs_volume_and_claim_bind_and_the_pod_runs(cluster: oc.Cluster) -> None:
    """task-pv-volume / task-pv-claim / task-pv-pod from "Configure a Pod to Use a
    PersistentVolume for Storage": both go Bound, with Kubernetes' annotations."""
    await cluster.apply(docs("task-pv-volume") + docs("task-pv-claim"))
    claim = await cluster.wait_for("pvc/task-pv-claim", "Bound", timeout=20)
    volume = await cluster.wait_for("pv/task-pv-volume", "Bound", timeout=20, namespace="")
    assert claim.spec.volume_name == "task-pv-volume"
    assert claim.annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert claim.annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert claim.status.capacity == {"storage": "10Gi"}
    assert claim.status.access_modes == ("ReadWriteOnce",)
    ref = volume.spec.claim_ref
    assert (ref.kind, ref.namespace, ref.name, ref.uid) == (
        "PersistentVolumeClaim", "default", "task-pv-claim", claim.metadata.uid)
    assert volume.annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert volume.status.last_phase_transition_time
    await cluster.apply(docs("task-pv-pod"))
    await cluster.wait_for("pod/task-pv-pod", "Running", timeout=20)


async def test_the_smallest_volume_that_fits_class_modes_mode_and_selector(
        cluster: oc.Cluster) -> None:
    await cluster.apply([
        pv("small", "1Gi"), pv("big", "10Gi"), pv("mid", "5Gi"),
        pv("rox", "4Gi", modes=("ReadOnlyMany",)), pv("fast", "4Gi", cls="fast"),
        pv("block", "4Gi", volumeMode="Block"), pv("labelled", "20Gi", labels={"tier": "gold"}),
    ])
    await eventually(lambda: all(phase(cluster, "PersistentVolume", n, "Available")
                                 for n in ("small", "big", "mid", "rox", "fast", "block")))
    await cluster.apply([
        pvc("plain", "3Gi"), pvc("fast-claim", "1Gi", cls="fast"),
        pvc("block-claim", "1Gi", volumeMode="Block"),
        pvc("rox-claim", "2Gi", modes=("ReadOnlyMany",)),
        pvc("gold", "1Gi", selector={"matchLabels": {"tier": "gold"}}),
    ])
    want = {"plain": "mid", "fast-claim": "fast", "block-claim": "block", "rox-claim": "rox",
            "gold": "labelled"}
    for claim, volume in want.items():
        got = await eventually(lambda c=claim: phase(cluster, "PersistentVolumeClaim", c,
                                                     "Bound"))
        assert got.spec.volume_name == volume, claim
    # Nothing left that fits 30Gi: Pending, and said so.
    await cluster.apply(pvc("huge", "30Gi"))
    await eventually(lambda: ("FailedBinding", "Normal",
                              "no persistent volumes available for this claim and no storage "
                              "class is set") in reasons(cluster, "pvc/huge"))
    assert cluster.store.get("pvc/huge").status.phase == "Pending"
    assert phase(cluster, "PersistentVolume", "big", "Available")
    assert phase(cluster, "PersistentVolume", "small", "Available")


async def test_a_claim_naming_its_volume_binds_to_it_or_says_why_not(
        cluster: oc.Cluster) -> None:
    await cluster.apply([pv("tiny", "1Gi"), pv("named", "5Gi")])
    await cluster.apply([pvc("wants-tiny", "2Gi", volumeName="tiny"),
                         pvc("wants-named", "1Gi", volumeName="named")])
    claim = await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "wants-named",
                                           "Bound"))
    assert claim.spec.volume_name == "named"
    assert "pv.kubernetes.io/bound-by-controller" not in claim.annotations
    await eventually(lambda: ("VolumeMismatch", "Warning",
                              'Cannot bind to requested volume "tiny": requested PV is too '
                              "small") in reasons(cluster, "pvc/wants-tiny"))
    assert phase(cluster, "PersistentVolume", "tiny", "Available")


async def test_retain_releases_and_an_administrator_makes_it_available_again(
        cluster: oc.Cluster) -> None:
    await cluster.apply([pv("keep", "1Gi"), pvc("c1", "1Gi")])
    first = await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "c1", "Bound"))
    await cluster.delete("pvc/c1")
    released = await eventually(lambda: phase(cluster, "PersistentVolume", "keep", "Released"))
    assert released.spec.claim_ref.uid == first.metadata.uid  # data kept for the old claim
    # A new claim of the same name does not get the released volume.
    await cluster.apply(pvc("c1", "1Gi"))
    await eventually(lambda: ("FailedBinding", "Normal",
                              "no persistent volumes available for this claim and no storage "
                              "class is set") in reasons(cluster, "pvc/c1"))
    assert phase(cluster, "PersistentVolume", "keep", "Released")
    await cluster.patch("pv/keep", {"spec": {"claimRef": None}}, namespace="")
    claim = await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "c1", "Bound"))
    assert claim.spec.volume_name == "keep"


async def test_delete_policy_without_a_provisioner_fails_and_a_lost_volume_loses_the_claim(
        cluster: oc.Cluster) -> None:
    await cluster.apply([pv("d", "1Gi", persistentVolumeReclaimPolicy="Delete"),
                         pv("gone", "1Gi", cls="x"), pvc("c", "1Gi"),
                         pvc("orphan", "1Gi", cls="x")])
    await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "c", "Bound"))
    await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "orphan", "Bound"))
    await cluster.delete("pvc/c")
    failed = await eventually(lambda: phase(cluster, "PersistentVolume", "d", "Failed"))
    message = ('error getting deleter volume plugin for volume "d": no deletable volume '
               "plugin matched")
    assert failed.status.message == message
    assert ("VolumeFailedDelete", "Warning", message) in reasons(cluster, "pv/d")
    # pv-protection keeps a bound volume; forcing it away (dropping the finalizer, as an
    # administrator might) loses the claim.
    await cluster.delete("pv/gone", namespace="")
    gone = await cluster.get("pv/gone", namespace="")
    assert gone.metadata.deletion_timestamp is not None
    assert gone.metadata.finalizers == ("kubernetes.io/pv-protection",)
    await cluster.patch("pv/gone", {"metadata": {"finalizers": None}}, namespace="")
    await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "orphan", "Lost"))
    assert ("ClaimLost", "Warning", "Bound claim has lost its PersistentVolume. Data on the "
            "volume is lost!") in reasons(cluster, "pvc/orphan")


async def test_the_scheduler_waits_for_missing_and_unbound_immediate_claims(
        cluster: oc.Cluster) -> None:
    await cluster.apply(pod("p", "data"))
    missing = ('0/2 nodes are available: persistentvolumeclaim "data" not found.' + NOT_HELPFUL)
    await eventually(lambda: scheduled_message(cluster, "p") == missing)
    assert ("FailedScheduling", "Warning", missing) in reasons(cluster, "pod/p")
    await cluster.apply(pvc("data", "1Gi"))
    await eventually(lambda: scheduled_message(cluster, "p") ==
                     "0/2 nodes are available: pod has unbound immediate "
                     "PersistentVolumeClaims." + NOT_HELPFUL)
    assert not cluster.store.get("pod/p").spec.node_name
    await cluster.apply(pv("vol", "1Gi"))
    await cluster.wait_for("pod/p", "Running", timeout=20)


async def test_volume_node_affinity_places_the_pod_or_says_it_conflicts(
        cluster: oc.Cluster, tmp_path: Path) -> None:
    on_node_2 = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}]}]}}
    await cluster.apply([pv("local", "1Gi", path=str(tmp_path), nodeAffinity=on_node_2),
                         pvc("data", "1Gi")])
    await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "data", "Bound"))
    for i in range(3):
        await cluster.apply(pod(f"p{i}", "data"))
    for i in range(3):
        p = await cluster.wait_for(f"pod/p{i}", "Running", timeout=20)
        assert p.spec.node_name == "node-2"
    await cluster.apply(pod("pinned", "data",
                            nodeSelector={"kubernetes.io/hostname": "node-1"}))
    await eventually(lambda: scheduled_message(cluster, "pinned") ==
                     "0/2 nodes are available: 1 node(s) didn't match Pod's node "
                     "affinity/selector, 1 node(s) had volume node affinity conflict."
                     + NOT_HELPFUL)


async def test_default_class_and_the_local_provisioner_wait_for_the_first_consumer(
        cluster: oc.Cluster) -> None:
    sc = await cluster.get("storageclass/standard")
    assert sc.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (sc.provisioner, sc.volume_binding_mode, sc.reclaim_policy) == (
        "orchestra.dev/local-path", "WaitForFirstConsumer", "Delete")
    await cluster.apply([pvc("dyn", "2Gi", cls=None), pvc("none", "1Gi", cls="")])
    assert (await cluster.get("pvc/dyn")).spec.storage_class_name == "standard"
    assert (await cluster.get("pvc/none")).spec.storage_class_name == ""  # "" is no class
    await eventually(lambda: ("WaitForFirstConsumer", "Normal",
                              "waiting for first consumer to be created before binding")
                     in reasons(cluster, "pvc/dyn"))
    assert not cluster.store.list("PersistentVolume")
    await cluster.apply(pod("user", "dyn"))
    running = await cluster.wait_for("pod/user", "Running", timeout=20)
    claim = await cluster.get("pvc/dyn")
    assert claim.status.phase == "Bound"
    assert claim.annotations["volume.kubernetes.io/selected-node"] == running.spec.node_name
    assert claim.annotations["volume.kubernetes.io/storage-provisioner"] == \
        "orchestra.dev/local-path"
    volume = await cluster.get("pv/" + claim.spec.volume_name)
    assert volume.metadata.name == f"pvc-{claim.metadata.uid}"
    assert volume.annotations["pv.kubernetes.io/provisioned-by"] == "orchestra.dev/local-path"
    assert volume.spec.capacity == {"storage": "2Gi"}
    assert volume.spec.persistent_volume_reclaim_policy == "Delete"
    term = volume.spec.node_affinity.required.node_selector_terms[0].match_expressions[0]
    assert (term.key, term.operator, term.values) == (
        "kubernetes.io/hostname", "In", (running.spec.node_name,))
    path = volume.spec.host_path.path
    assert await anyio.Path(path).is_dir()
    assert path.startswith(f"{cluster._state_dir}/volumes/")
    got = [r for r, _, _ in reasons(cluster, "pvc/dyn")]
    for r in ("ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"):
        assert r in got, r
    assert (("ProvisioningSucceeded", "Normal",
             f"Successfully provisioned volume {volume.metadata.name}")
            in reasons(cluster, "pvc/dyn"))
    assert ("ExternalProvisioning", "Normal",
            "Waiting for a volume to be created either by the external provisioner "
            "'orchestra.dev/local-path' or manually by the system administrator. If volume "
            "creation is delayed, please verify that the provisioner is running and "
            "correctly registered.") in reasons(cluster, "pvc/dyn")
    # Reclaim Delete: the volume and its directory go with the claim.
    await cluster.delete("pod/user", grace_period_seconds=0)
    await eventually(lambda: cluster.store.get_or_none("Pod", "user") is None)
    await cluster.delete("pvc/dyn")
    await eventually(lambda: not cluster.store.list("PersistentVolume"))
    assert not await anyio.Path(path).exists()


async def test_a_missing_class_is_reported(cluster: oc.Cluster) -> None:
    await cluster.apply(pvc("c", "1Gi", cls="gold"))
    await eventually(lambda: ("ProvisioningFailed", "Warning",
                              'storageclass.storage.k8s.io "gold" not found')
                     in reasons(cluster, "pvc/c"))
    # An Immediate class with a provisioner provisions at once, without a node.
    await cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                         "metadata": {"name": "gold"}, "provisioner": "orchestra.dev/local-path",
                         "reclaimPolicy": "Retain"})
    claim = await eventually(lambda: phase(cluster, "PersistentVolumeClaim", "c", "Bound"))
    volume = await cluster.get("pv/" + claim.spec.volume_name)
    assert volume.spec.node_affinity is None
    assert volume.spec.persistent_volume_reclaim_policy == "Retain"


async def test_docs_statefulset_claims_bind_through_the_provisioner(
        cluster: oc.Cluster) -> None:
    await cluster.apply(docs("statefulset-web"))
    await cluster.wait_for("sts/web", "Ready", timeout=30)
    for i in range(2):
        claim = await cluster.get(f"pvc/www-web-{i}")
        assert claim.status.phase == "Bound"
        assert claim.spec.storage_class_name == "standard"
        assert claim.annotations["pv.kubernetes.io/bind-completed"] == "yes"
        volume = await cluster.get("pv/" + claim.spec.volume_name)
        assert volume.annotations["pv.kubernetes.io/provisioned-by"] == \
            "orchestra.dev/local-path"
        node = cluster.store.get("Pod", f"web-{i}").spec.node_name
        term = volume.spec.node_affinity.required.node_selector_terms[0]
        assert term.match_expressions[0].values == (node,)


async def test_wait_for_first_consumer_without_provisioner_binds_a_volume_on_the_node(
        cluster: oc.Cluster, tmp_path: Path) -> None:
    """The docs' local-storage class (no provisioner): the claim waits; the scheduler
    puts the pod where a matching volume is and binds it there."""
    await cluster.apply(docs("storageclass"))
    on_node_2 = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]}]}]}}
    await cluster.apply([pv("local-2", "1Gi", cls="local-storage", path=str(tmp_path),
                            nodeAffinity=on_node_2),
                         pvc("c", "1Gi", cls="local-storage"), pvc("c2", "1Gi",
                                                                   cls="local-storage")])
    await eventually(lambda: ("WaitForFirstConsumer", "Normal",
                              "waiting for first consumer to be created before binding")
                     in reasons(cluster, "pvc/c"))
    assert phase(cluster, "PersistentVolume", "local-2", "Available")
    await cluster.apply(pod("p", "c"))
    running = await cluster.wait_for("pod/p", "Running", timeout=20)
    assert running.spec.node_name == "node-2"
    claim = await cluster.get("pvc/c")
    assert claim.spec.volume_name == "local-2"
    # The scheduler bound the volume itself: no node handed to a provisioner.
    assert "volume.kubernetes.io/selected-node" not in claim.annotations
    # No volume left for the second claim on any node.
    await cluster.apply(pod("q", "c2"))
    await eventually(lambda: scheduled_message(cluster, "q") ==
                     "0/2 nodes are available: 2 node(s) didn't find available persistent "
                     "volumes to bind." + NOT_HELPFUL)


async def test_describe_volume_and_class_as_kubectl_prints_them(cluster: oc.Cluster) -> None:
    await cluster.apply(docs("task-pv-volume") + docs("task-pv-claim") + [
        pvc("d", "1Gi", cls=None), pod("p", "d"),
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "zonal"}, "provisioner": "example.com/disk",
         "parameters": {"type": "ssd", "fs": "ext4"}, "allowVolumeExpansion": True,
         "mountOptions": ["debug"], "allowedTopologies": [{"matchLabelExpressions": [
             {"key": "topology.kubernetes.io/zone", "values": ["a", "b"]}]}]}])
    await eventually(lambda: phase(cluster, "PersistentVolume", "task-pv-volume", "Bound"))
    await cluster.wait_for("pod/p", "Running", timeout=20)
    assert cluster.describe("pv/task-pv-volume").splitlines() == [
        "Name:            task-pv-volume",
        "Labels:          type=local",
        "Annotations:     pv.kubernetes.io/bound-by-controller: yes",
        "Finalizers:      [kubernetes.io/pv-protection]",
        "StorageClass:    manual",
        "Status:          Bound",
        "Claim:           default/task-pv-claim",
        "Reclaim Policy:  Retain",
        "Access Modes:    RWO",
        "VolumeMode:      Filesystem",
        "Capacity:        10Gi",
        "Node Affinity:   <none>",
        "Message:",
        "Source:",
        "    Type:          HostPath (bare host directory volume)",
        "    Path:          /mnt/data",
        "    HostPathType:  <none>",
        "Events:            <none>",
    ]
    node = cluster.store.get("Pod", "p").spec.node_name
    name = cluster.store.get("pvc/d").spec.volume_name
    lines = cluster.describe(f"pv/{name}").splitlines()
    start = lines.index("Node Affinity:")
    assert lines[start:start + 3] == ["Node Affinity:", "  Required Terms:",
                                      f"    Term 0:        kubernetes.io/hostname in [{node}]"]
    assert cluster.describe("sc/zonal").splitlines() == [
        "Name:                  zonal",
        "IsDefaultClass:        No",
        "Annotations:           <none>",
        "Provisioner:           example.com/disk",
        "Parameters:            fs=ext4,type=ssd",
        "AllowVolumeExpansion:  True",
        "MountOptions:",
        "  debug",
        "ReclaimPolicy:      Delete",
        "VolumeBindingMode:  Immediate",
        "AllowedTopologies:",
        "  Term 0:           topology.kubernetes.io/zone in [a, b]",
        "Events:             <none>",
    ]
    text = cluster.describe("sc/standard")
    assert "IsDefaultClass:        Yes" in text.splitlines()


async def test_the_simulated_runtime_makes_no_host_directory_for_a_volume(
        cluster: oc.Cluster, tmp_path: Path) -> None:
    target = tmp_path / "never"
    await cluster.apply([pv("v", "1Gi", path=str(target)), pvc("c", "1Gi"), pod("p", "c")])
    await cluster.wait_for("pod/p", "Running", timeout=20)
    assert not await anyio.Path(target).exists()


async def test_a_claim_in_use_and_a_bound_volume_are_kept_until_released(
        cluster: oc.Cluster) -> None:
    """pvc-protection / pv-protection: deleting only marks them while needed."""
    await cluster.apply([pv("v", "1Gi"), pvc("c", "1Gi"), pod("p", "c")])
    await cluster.wait_for("pod/p", "Running", timeout=20)
    claim = await cluster.get("pvc/c")
    assert claim.metadata.finalizers == ("kubernetes.io/pvc-protection",)
    await cluster.delete("pvc/c")
    await cluster.delete("pv/v", namespace="")
    await anyio.sleep(0.3)  # the protection controllers had their chance to (wrongly) act
    claim = await cluster.get("pvc/c")
    assert claim.metadata.deletion_timestamp is not None and claim.status.phase == "Bound"
    assert (await cluster.get("pv/v", namespace="")).status.phase == "Bound"
    # The scheduler refuses a new pod naming the claim being deleted.
    await cluster.apply(pod("late", "c"))
    await eventually(lambda: scheduled_message(cluster, "late") ==
                     '0/2 nodes are available: persistentvolumeclaim "c" is being deleted.'
                     + NOT_HELPFUL)
    # The pod goes: the claim goes, the volume is released and then goes too.
    await cluster.delete("pod/p", grace_period_seconds=0)
    await eventually(lambda: cluster.store.get_or_none("PersistentVolumeClaim", "c") is None)
    await eventually(lambda: cluster.store.get_or_none("PersistentVolume", "v",
                                                       namespace=None) is None)


async def test_statefulset_when_scaled_delete_removes_the_scaled_down_pods_claims(
        cluster: oc.Cluster) -> None:
    (svc, sts) = docs("statefulset-web")
    d = sts.to_dict()
    d["spec"]["replicas"] = 3
    d["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenScaled": "Delete",
                                                         "whenDeleted": "Retain"}
    await cluster.apply([svc, d])
    await cluster.wait_for("sts/web", "Ready", timeout=30)
    volumes = {i: cluster.store.get(f"pvc/www-web-{i}").spec.volume_name for i in range(3)}
    await cluster.scale("sts/web", 1)
    await eventually(lambda: all(cluster.store.get_or_none("PersistentVolumeClaim",
                                                           f"www-web-{i}") is None
                                 for i in (1, 2)))
    await eventually(lambda: all(cluster.store.get_or_none("PersistentVolume", volumes[i],
                                                           namespace=None) is None
                                 for i in (1, 2)))  # reclaim Delete of the default class
    kept = await cluster.get("pvc/www-web-0")
    assert kept.status.phase == "Bound" and not kept.metadata.owner_references
    # Scaling up again makes fresh claims for the new pods.
    await cluster.scale("sts/web", 2)
    await cluster.wait_for("sts/web", "Ready", timeout=30)
    fresh = await cluster.get("pvc/www-web-1")
    assert fresh.status.phase == "Bound" and fresh.spec.volume_name != volumes[1]


async def test_docs_generic_ephemeral_volume_gets_a_claim_that_goes_with_its_pod(
        cluster: oc.Cluster) -> None:
    await cluster.apply(docs("ephemeral-pod"))
    claim = await eventually(lambda: cluster.store.get_or_none(
        "PersistentVolumeClaim", "my-app-scratch-volume"))
    owner = claim.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Pod", "my-app", True)
    assert claim.metadata.labels == {"type": "my-frontend-volume"}
    # Its class does not exist yet: the claim is an unbound immediate one.
    await eventually(lambda: scheduled_message(cluster, "my-app") ==
                     "0/2 nodes are available: pod has unbound immediate "
                     "PersistentVolumeClaims." + NOT_HELPFUL)
    await cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                         "metadata": {"name": "scratch-storage-class"},
                         "provisioner": "orchestra.dev/local-path",
                         "volumeBindingMode": "WaitForFirstConsumer"})
    await cluster.wait_for("pod/my-app", "Running", timeout=20)
    lines = cluster.describe("pod/my-app").splitlines()
    start = lines.index("  scratch-volume:")
    assert lines[start:start + 9] == [
        "  scratch-volume:",
        "    Type:          EphemeralVolume (an inline specification for a volume that gets "
        "created and deleted with the pod)",
        "    StorageClass:  scratch-storage-class",
        "    Volume:",
        "    Labels:        type=my-frontend-volume",
        "    Annotations:   <none>",
        "    Capacity:",
        "    Access Modes:",
        "    VolumeMode:    Filesystem",
    ]
    volume = (await cluster.get("pvc/my-app-scratch-volume")).spec.volume_name
    assert volume
    await cluster.delete("pod/my-app", grace_period_seconds=0)
    await eventually(lambda: cluster.store.get_or_none(
        "PersistentVolumeClaim", "my-app-scratch-volume") is None)
    await eventually(lambda: cluster.store.get_or_none("PersistentVolume", volume,
                                                       namespace=None) is None)


async def test_an_ephemeral_volume_waits_for_its_claim_and_refuses_someone_elses(
        cluster: oc.Cluster) -> None:
    ephemeral = {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}
    await cluster.apply(pvc("x-scratch", "1Gi", cls=None))  # not the pod's
    body = pod("x")
    body["spec"]["volumes"] = [ephemeral]
    await cluster.apply(body)
    await eventually(lambda: scheduled_message(cluster, "x") ==
                     "0/2 nodes are available: PVC default/x-scratch was not created for pod "
                     "default/x (pod is not owner)." + NOT_HELPFUL)


async def test_the_scheduler_names_an_ephemeral_claim_not_made_yet() -> None:
    from orchestra._store import Store
    from orchestra.loops._volumebinding import VolumeRejected, volume_facts
    from orchestra.objects import Pod

    body = pod("x")
    body["spec"]["volumes"] = [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {
        "spec": {"resources": {"requests": {"storage": "1Gi"}}}}}}]
    with pytest.raises(VolumeRejected) as err:
        volume_facts(Store(), Pod.model_validate(body))
    assert str(err.value) == ('waiting for ephemeral volume controller to create the '
                              'persistentvolumeclaim "x-scratch"')


async def test_a_class_without_provisioner_says_so_for_an_immediate_claim(
        cluster: oc.Cluster) -> None:
    await cluster.apply([{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                          "metadata": {"name": "manual-local"},
                          "provisioner": "kubernetes.io/no-provisioner"},
                         pvc("c", "1Gi", cls="manual-local")])
    await eventually(lambda: ("ProvisioningFailed", "Warning",
                              "no volume plugin matched name: kubernetes.io/no-provisioner")
                     in reasons(cluster, "pvc/c"))
    assert "volume.kubernetes.io/storage-provisioner" not in \
        cluster.store.get("pvc/c").annotations


async def test_without_a_default_class_a_claim_keeps_no_class_and_the_newest_default_wins(
        ) -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=1, clock=clock,
                          default_storage_class=False) as cluster:
        assert not cluster.store.list("StorageClass")
        await cluster.apply(pvc("plain", "1Gi", cls=None))
        assert (await cluster.get("pvc/plain")).spec.storage_class_name is None
        for name in ("older", "newer"):
            await cluster.apply({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": name, "annotations": {
                    "storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "example.com/x"})
            await clock.advance(2)
        await cluster.apply(pvc("classy", "1Gi", cls=None))
        assert (await cluster.get("pvc/classy")).spec.storage_class_name == "newer"
