"""Which PersistentVolume may back which claim: the PV controller's matching rules, shared
by the binder (``_pvbinder``) and the scheduler's volume checks (``_volumebinding``).

As Kubernetes' ``findMatchingVolume``: a volume pre-bound to the claim (``claimRef``
naming it) wins; otherwise, among Available volumes with no ``claimRef``, of the claim's
storage class, matching its selector, volume mode and access modes (every mode the claim
asks for), with at least the requested capacity and (when a node is given) whose node
affinity admits that node, the smallest. With delayed binding (``WaitForFirstConsumer``)
and no node chosen yet only pre-bound volumes are considered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestra.objects._quantity import Quantity
from orchestra.objects._selector import Selector
from orchestra.scheduler._info import node_selector_term

BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
NO_PROVISIONER = "kubernetes.io/no-provisioner"  # a class whose volumes are made by hand
PV_PROTECTION = "kubernetes.io/pv-protection"


def requested(claim: Any) -> Quantity:
    res = claim.spec.resources
    value = ((res.requests if res else None) or {}).get("storage")
    return Quantity(value) if value is not None else Quantity(0)


def capacity(pv: Any) -> Quantity:
    value = (pv.spec.capacity or {}).get("storage")
    return Quantity(value) if value is not None else Quantity(0)


def class_of(obj: Any) -> str:
    return obj.spec.storage_class_name or ""


def bound_to(pv: Any, claim: Any) -> bool:
    """Whether ``pv``'s claimRef names ``claim`` (a ref without uid is a pre-binding)."""
    ref = pv.spec.claim_ref
    if ref is None or ref.name != claim.metadata.name or \
            (ref.namespace or "") != (claim.metadata.namespace or ""):
        return False
    return not ref.uid or ref.uid == claim.metadata.uid


def mismatch(pv: Any, claim: Any) -> str | None:
    """Why ``pv`` cannot satisfy ``claim`` (Kubernetes' ``checkVolumeSatisfyClaim``
    words), or None."""
    if capacity(pv) < requested(claim):
        return "requested PV is too small"
    if class_of(pv) != class_of(claim):
        return "storageClassName does not match"
    if (pv.spec.volume_mode or "Filesystem") != (claim.spec.volume_mode or "Filesystem"):
        return "incompatible volumeMode"
    if not set(claim.spec.access_modes or ()) <= set(pv.spec.access_modes or ()):
        return "incompatible accessMode"
    return None


def node_allows(pv: Any, node: str, labels: Mapping[str, str]) -> bool:
    """Whether the volume's required node affinity admits the node (any term matches)."""
    aff = pv.spec.node_affinity
    req = aff.required if aff is not None else None
    if req is None:
        return True
    return any(node_selector_term(t)(node, labels) for t in req.node_selector_terms)


def find_best(claim: Any, volumes: Iterable[Any], *, delay: bool = False,
              node: tuple[str, Mapping[str, str]] | None = None) -> Any | None:
    """The volume to bind ``claim`` to, or None (see the module docstring)."""
    want = requested(claim)
    sel = (Selector.from_label_selector(claim.spec.selector)
           if claim.spec.selector is not None else None)
    best: Any = None
    for pv in volumes:
        if pv.metadata.deletion_timestamp is not None:
            continue
        if pv.spec.claim_ref is not None and not bound_to(pv, claim):
            continue
        if mismatch(pv, claim) is not None:
            continue
        if node is not None and not node_allows(pv, *node):
            continue
        if pv.spec.claim_ref is not None:  # pre-bound to this claim
            return pv
        if delay and node is None:
            continue
        if (pv.status.phase if pv.status else "") != "Available":
            continue
        if sel is not None and not sel.matches(pv.metadata.labels or {}):
            continue
        if capacity(pv) < want:
            continue
        if best is None or capacity(pv) < capacity(best):
            best = pv
    return best
