"""Storage object in-use protection: the ``pvc-protection`` and ``pv-protection``
controllers.

Every claim and volume gets a finalizer when it is created (the
StorageObjectInUseProtection admission plugin, ``orchestra.admission._storage``), so
deleting one only marks it. These controllers drop the finalizer, letting the object go,
once nothing needs it: a claim when no scheduled pod that has not ended names it; a
volume when it is no longer ``Bound``.
"""

from __future__ import annotations

from typing import Any

from orchestra._errors import NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of
from orchestra.loops._pvmatch import PV_PROTECTION, PVC_PROTECTION
from orchestra.loops._volumebinding import claim_names


def claim_in_use(store: Any, claim: Any) -> bool:
    name = claim.metadata.name
    for pod in store.list("Pod", namespace=claim.metadata.namespace):
        if not pod.spec.node_name or (pod.status is not None and
                                      pod.status.phase in ("Succeeded", "Failed")):
            continue
        if name in claim_names(pod):
            return True
    return False


class StorageProtection:
    """Keys are ``claim/<namespace>/<name>`` and ``volume/<name>``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("storage-protection", self.reconcile, ctx.clock)
        ctx.informers["PersistentVolumeClaim"].add_handler(self._on_claim)
        ctx.informers["PersistentVolume"].add_handler(self._on_volume)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_claim(self, typ: str, claim: Any, old: Any) -> None:
        if typ != "DELETED" and claim.metadata.deletion_timestamp is not None:
            self.controller.enqueue(f"claim/{key_of(claim)}")

    def _on_volume(self, typ: str, pv: Any, old: Any) -> None:
        if typ != "DELETED" and pv.metadata.deletion_timestamp is not None:
            self.controller.enqueue(f"volume/{key_of(pv)}")

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        """A pod that ends or goes may free the claims it names."""
        ended = typ == "DELETED" or (pod.status is not None and
                                     pod.status.phase in ("Succeeded", "Failed"))
        if not ended:
            return
        ns = pod.metadata.namespace or "default"
        for name in claim_names(pod):
            self.controller.enqueue(f"claim/{ns}/{name}")

    async def reconcile(self, key: str) -> Result | None:
        store: Any = self.ctx.store
        what, _, rest = key.partition("/")
        if what == "claim":
            ns, _, name = rest.partition("/")
            obj = store.get_or_none("PersistentVolumeClaim", name, namespace=ns)
            finalizer = PVC_PROTECTION
            free = obj is not None and not claim_in_use(store, obj)
        else:
            obj = store.get_or_none("PersistentVolume", rest, namespace=None)
            finalizer = PV_PROTECTION
            free = obj is not None and (obj.status.phase if obj.status else "") != "Bound"
        if obj is None or obj.metadata.deletion_timestamp is None or not free or \
                finalizer not in (obj.metadata.finalizers or ()):
            return None
        rest_finalizers = tuple(f for f in obj.metadata.finalizers if f != finalizer)
        try:
            store.update(obj.model_copy(update={"metadata": obj.metadata.model_copy(
                update={"finalizers": rest_finalizers or None})}))
        except NotFound:
            pass
        return None


def setup(ctx: Context) -> list[Runnable]:
    p = StorageProtection(ctx)
    ctx.controllers["storage-protection"] = p.controller
    return [p.controller.run]


__all__ = ["StorageProtection", "claim_in_use", "setup"]
