"""Storage admission plugins.

- DefaultStorageClass: a claim created without ``storageClassName`` gets the cluster's
  default StorageClass (the one annotated ``storageclass.kubernetes.io/is-default-class:
  "true"``; the newest if several are). An explicit ``storageClassName: ""`` means "no
  class" and is kept, as in Kubernetes.
- StorageObjectInUseProtection: a new claim gets the ``kubernetes.io/pvc-protection``
  finalizer, a new volume ``kubernetes.io/pv-protection`` (``loops._pvprotection``
  removes them once nothing uses the object).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestra.loops._pvmatch import PV_PROTECTION, PVC_PROTECTION

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects._base import KubeObject


def default_storage_class_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op != "CREATE" or new is None:
            return None
        spec: Any = getattr(new, "spec", None)
        if spec is None or spec.storage_class_name is not None:
            return None
        defaults = [sc for sc in store.list("StorageClass") if getattr(sc, "is_default", False)]
        if not defaults:
            return None
        chosen = max(defaults, key=lambda sc: (sc.metadata.creation_timestamp or "",
                                               sc.metadata.name or ""))
        return new.model_copy(update={"spec": spec.model_copy(update={
            "storage_class_name": chosen.metadata.name})})

    return hook


def _protect(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
    if op != "CREATE" or new is None:
        return None
    finalizer = PVC_PROTECTION if new.kind == "PersistentVolumeClaim" else PV_PROTECTION
    have = tuple(new.metadata.finalizers or ())
    if finalizer in have:
        return None
    return new.model_copy(update={"metadata": new.metadata.model_copy(
        update={"finalizers": (*have, finalizer)})})


def install(store: Store) -> None:
    store.add_admission(default_storage_class_hook(store), kinds=["PersistentVolumeClaim"])
    store.add_admission(_protect, kinds=["PersistentVolumeClaim", "PersistentVolume"])
