"""The scheduler loop's volume steps (kube-scheduler's VolumeBinding plugin around the
pure pipeline in ``orchestra.scheduler``):

- PreFilter (:func:`volume_facts`): a pod whose claim does not exist, is being deleted,
  or is unbound with ``Immediate`` binding is not scheduled at all, with Kubernetes'
  message; otherwise the claims become :class:`~orchestra.scheduler.VolumeFacts` for the
  VolumeBinding filter (bound volumes' node affinity; for a ``WaitForFirstConsumer``
  claim, whether the node has a matching Available volume or the class a provisioner).
- PreBind (:func:`bind_volumes`): once a node is chosen, each waiting claim is either
  matched to a volume there (the volume's ``claimRef`` is set; the PV controller
  completes the binding) or annotated ``volume.kubernetes.io/selected-node`` for its
  provisioner. The kubelet starts the pod's containers only when every claim is bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestra.loops._context import Context
from orchestra.loops._ephemeral import ephemeral_claim_name
from orchestra.loops._pvmatch import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    NO_PROVISIONER,
    SELECTED_NODE,
    WAIT_FOR_FIRST_CONSUMER,
    find_best,
    node_allows,
)
from orchestra.scheduler import VolumeFacts
from orchestra.scheduler._messages import UNBOUND_IMMEDIATE_CLAIMS


class VolumeRejected(Exception):
    """The pod cannot be scheduled until its claims change; ``str()`` is the reason."""


def pod_claims(pod: Any) -> list[tuple[str, bool]]:
    """The claims a pod's volumes name, each with whether it is a generic ephemeral
    volume's (``<pod>-<volume>``, made by the ephemeral volume controller)."""
    out = []
    for v in pod.spec.volumes or ():
        if v.persistent_volume_claim is not None:
            out.append((v.persistent_volume_claim.claim_name, False))
        elif v.ephemeral is not None and v.ephemeral.volume_claim_template is not None:
            out.append((ephemeral_claim_name(pod, v), True))
    return out


def claim_names(pod: Any) -> list[str]:
    return [name for name, _ in pod_claims(pod)]


def _owned_by(claim: Any, pod: Any) -> bool:
    return any(r.controller and r.uid == pod.metadata.uid
               for r in claim.metadata.owner_references or ())


def _delayed(store: Any, claim: Any) -> Any | None:
    """The claim's StorageClass if it delays binding (``WaitForFirstConsumer``)."""
    name = claim.spec.storage_class_name
    sc = store.get_or_none("StorageClass", name, namespace=None) if name else None
    return sc if sc is not None and sc.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER \
        else None


def _allows(pv: Any) -> Callable[[str, Any], bool]:
    return lambda node, labels: node_allows(pv, node, labels)


def _can_bind(claim: Any, volumes: list[Any]) -> Callable[[str, Any], bool]:
    return lambda node, labels: find_best(claim, volumes, delay=True,
                                          node=(node, labels)) is not None


def volume_facts(store: Any, pod: Any) -> VolumeFacts | None:
    """What the pod's claims ask of a node; raises VolumeRejected (see module doc)."""
    claims = pod_claims(pod)
    if not claims:
        return None
    ns = pod.metadata.namespace or "default"
    bound: list[Callable[[str, Any], bool]] = []
    unbound: list[Callable[[str, Any], bool]] = []
    immediate = False
    for name, ephemeral in claims:
        claim = store.get_or_none("PersistentVolumeClaim", name, namespace=ns)
        if claim is None:
            raise VolumeRejected(
                f'waiting for ephemeral volume controller to create the '
                f'persistentvolumeclaim "{name}"' if ephemeral else
                f'persistentvolumeclaim "{name}" not found')
        if ephemeral and not _owned_by(claim, pod):
            raise VolumeRejected(f"PVC {ns}/{name} was not created for pod "
                                 f"{ns}/{pod.metadata.name} (pod is not owner)")
        if claim.metadata.deletion_timestamp is not None:
            raise VolumeRejected(f'persistentvolumeclaim "{name}" is being deleted')
        volume = claim.spec.volume_name
        if volume and claim.annotations.get(BIND_COMPLETED) is not None:
            pv = store.get_or_none("PersistentVolume", volume, namespace=None)
            if pv is None:
                raise VolumeRejected(f'persistentvolumeclaim "{name}" bound to non-existent '
                                     f'persistentvolume "{volume}"')
            if pv.spec.node_affinity is not None:
                bound.append(_allows(pv))
            continue
        sc = _delayed(store, claim)
        if sc is None:
            immediate = True
            continue
        if sc.provisioner != NO_PROVISIONER:
            continue  # the provisioner makes a volume wherever the pod goes
        unbound.append(_can_bind(claim, list(store.list("PersistentVolume"))))
    if immediate:
        raise VolumeRejected(UNBOUND_IMMEDIATE_CLAIMS)
    return VolumeFacts(bound=tuple(bound), unbound=tuple(unbound))


def bind_volumes(store: Any, pod: Any, node_name: str) -> None:
    """Bind or hand over each claim of ``pod`` that waited for its node (see module doc)."""
    from orchestra.objects import ObjectReference

    ns = pod.metadata.namespace or "default"
    node = store.get_or_none("Node", node_name, namespace=None)
    labels = dict((node.metadata.labels or {}) if node is not None else {})
    for name in claim_names(pod):
        claim = store.get_or_none("PersistentVolumeClaim", name, namespace=ns)
        if claim is None or claim.spec.volume_name or _delayed(store, claim) is None:
            continue
        pv = find_best(claim, store.list("PersistentVolume"), delay=True,
                       node=(node_name, labels))
        if pv is not None:
            if pv.spec.claim_ref is None:
                ref = ObjectReference(
                    api_version="v1", kind="PersistentVolumeClaim", namespace=ns, name=name,
                    uid=claim.metadata.uid, resource_version=claim.metadata.resource_version)
                store.update(pv.model_copy(update={
                    "metadata": pv.metadata.model_copy(update={"annotations": {
                        **pv.annotations, BOUND_BY_CONTROLLER: "yes"}}),
                    "spec": pv.spec.model_copy(update={"claim_ref": ref})}))
            continue
        if claim.annotations.get(SELECTED_NODE) != node_name:
            store.update(claim.model_copy(update={
                "metadata": claim.metadata.model_copy(update={"annotations": {
                    **claim.annotations, SELECTED_NODE: node_name}})}))


def watch_volumes(ctx: Context, retry: Callable[[], None]) -> None:
    """Call ``retry`` (look at unschedulable pods again) when claims, volumes or classes
    change, as kube-scheduler's queue moves pods on those events."""
    for kind in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass"):
        ctx.informers[kind].add_handler(lambda t, o, old: retry())
