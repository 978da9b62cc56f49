"""The ephemeral volume controller: generic ephemeral volumes (``ephemeral.
volumeClaimTemplate``) become claims owned by their pod.

As Kubernetes': the claim is ``<pod name>-<volume name>``, made from the template (its
labels and annotations, its spec) with the pod as controlling owner, so it binds and
provisions as any claim does and the garbage collector removes it with the pod. A claim
of that name the pod does not own is left alone: the scheduler then refuses the pod
("... was not created for pod ... (pod is not owner)").
"""

from __future__ import annotations

from typing import Any

from orchestra._errors import AlreadyExists
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key

COMPONENT = "ephemeral_volume"


def ephemeral_claim_name(pod: Any, volume: Any) -> str:
    return f"{pod.metadata.name}-{volume.name}"


class EphemeralVolumeController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("ephemeral-volume", self.reconcile, ctx.clock)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        if typ != "DELETED" and pod.metadata.deletion_timestamp is None and any(
                v.ephemeral is not None for v in pod.spec.volumes or ()):
            self.controller.enqueue(key_of(pod))

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects import PersistentVolumeClaim

        ns, name = split_key(key)
        store: Any = self.ctx.store
        pod = store.get_or_none("Pod", name, namespace=ns)
        if pod is None or pod.metadata.deletion_timestamp is not None:
            return None
        for vol in pod.spec.volumes or ():
            template = vol.ephemeral.volume_claim_template if vol.ephemeral else None
            if template is None:
                continue
            claim_name = ephemeral_claim_name(pod, vol)
            if store.get_or_none("PersistentVolumeClaim", claim_name, namespace=ns):
                continue
            meta: dict[str, Any] = {
                "name": claim_name, "namespace": ns,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": name,
                                     "uid": pod.metadata.uid, "controller": True,
                                     "blockOwnerDeletion": True}]}
            tmeta = template.metadata
            if tmeta is not None and tmeta.labels:
                meta["labels"] = dict(tmeta.labels)
            if tmeta is not None and tmeta.annotations:
                meta["annotations"] = dict(tmeta.annotations)
            try:
                store.create(PersistentVolumeClaim.model_validate(
                    {"metadata": meta, "spec": template.spec.to_dict()}))
            except AlreadyExists:
                continue
        return None


def setup(ctx: Context) -> list[Runnable]:
    c = EphemeralVolumeController(ctx)
    ctx.controllers["ephemeral-volume"] = c.controller
    return [c.controller.run]


__all__ = ["EphemeralVolumeController", "ephemeral_claim_name", "setup"]
