"""The PersistentVolume controller: binds claims to volumes and reclaims released ones.

As kube-controller-manager's ``persistentvolume-controller``, with one queue of claims and
one of volumes:

- An unbound claim binds to the volume ``_pvmatch.find_best`` picks: the volume gets
  ``claimRef`` (and ``pv.kubernetes.io/bound-by-controller: "yes"`` when the controller
  set it) and phase ``Bound``; the claim gets ``spec.volumeName``, the annotations
  ``pv.kubernetes.io/bind-completed`` and ``pv.kubernetes.io/bound-by-controller``, phase
  ``Bound`` and the volume's capacity and access modes.
- With no volume: a ``WaitForFirstConsumer`` claim whose pod is not scheduled waits
  (``WaitForFirstConsumer`` event); a claim with a class asks that class's provisioner
  (``volume.kubernetes.io/storage-provisioner`` annotation, ``ExternalProvisioning``
  event); a claim without a class stays Pending (``FailedBinding``).
- A volume without ``claimRef`` is ``Available``; one whose claim is gone is
  ``Released`` and then reclaimed by its policy: ``Retain`` keeps it Released, ``Delete``
  is done by the provisioner that made it (``pv.kubernetes.io/provisioned-by``); a
  volume no provisioner made cannot be deleted and goes ``Failed``.
- A bound claim whose volume disappears is ``Lost``.
"""

from __future__ import annotations

from typing import Any

from orchestra._errors import NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, split_key
from orchestra.loops._pvmatch import (
    BETA_STORAGE_PROVISIONER,
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    NO_PROVISIONER,
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    WAIT_FOR_FIRST_CONSUMER,
    bound_to,
    class_of,
    find_best,
    mismatch,
)
from orchestra.objects._scalars import format_time

COMPONENT = "persistentvolume-controller"


def external_provisioning(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation "
            f"is delayed, please verify that the provisioner is running and correctly "
            f"registered.")


class PersistentVolumeController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.claims = Controller("persistentvolume-binder", self.sync_claim, ctx.clock)
        self.volumes = Controller("persistentvolume", self.sync_volume, ctx.clock)
        ctx.informers["PersistentVolumeClaim"].add_handler(self._on_claim)
        ctx.informers["PersistentVolume"].add_handler(self._on_volume)
        ctx.informers["StorageClass"].add_handler(lambda t, o, old: self._pending_claims())

    def _on_claim(self, typ: str, claim: Any, old: Any) -> None:
        self.claims.enqueue_obj(claim)
        if claim.spec.volume_name:
            self.volumes.enqueue(claim.spec.volume_name)
        if typ == "DELETED":
            store: Any = self.ctx.store
            for pv in store.list("PersistentVolume"):
                if pv.spec.claim_ref is not None and bound_to(pv, claim):
                    self.volumes.enqueue_obj(pv)

    def _on_volume(self, typ: str, pv: Any, old: Any) -> None:
        self.volumes.enqueue_obj(pv)
        ref = pv.spec.claim_ref
        if ref is not None and ref.name:
            self.claims.enqueue(f"{ref.namespace or 'default'}/{ref.name}")
        if typ != "DELETED" and pv.status is not None and pv.status.phase == "Available":
            self._pending_claims()

    def _pending_claims(self) -> None:
        store: Any = self.ctx.store
        for claim in store.list("PersistentVolumeClaim"):
            if not claim.spec.volume_name:
                self.claims.enqueue_obj(claim)

    def _event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(obj, type_, reason, message, component=COMPONENT)

    # -- claims ---------------------------------------------------------------------------

    async def sync_claim(self, key: str) -> Result | None:
        ns, name = split_key(key)
        store: Any = self.ctx.store
        claim = store.get_or_none("PersistentVolumeClaim", name, namespace=ns)
        if claim is None or claim.metadata.deletion_timestamp is not None:
            return None
        if claim.annotations.get(BIND_COMPLETED) is not None:
            self._sync_bound_claim(claim)
            return None
        if claim.spec.volume_name:
            pv = store.get_or_none("PersistentVolume", claim.spec.volume_name, namespace=None)
            if pv is None:
                self._claim_status(claim, "Pending")
            elif pv.spec.claim_ref is None or bound_to(pv, claim):
                why = mismatch(pv, claim)
                if why is not None:
                    self._event(claim, "Warning", "VolumeMismatch",
                                f'Cannot bind to requested volume "{pv.metadata.name}": {why}')
                    self._claim_status(claim, "Pending")
                else:
                    self._bind(pv, claim)
            else:
                self._event(claim, "Warning", "FailedBinding",
                            f'volume "{pv.metadata.name}" already bound to a different claim.')
                self._claim_status(claim, "Pending")
            return None
        class_name = class_of(claim)
        sc = store.get_or_none("StorageClass", class_name, namespace=None) \
            if class_name else None
        delay = sc is not None and sc.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER
        selected = claim.annotations.get(SELECTED_NODE)
        node = None
        if selected:
            n = store.get_or_none("Node", selected, namespace=None)
            node = (selected, dict((n.metadata.labels or {}) if n is not None else {}))
        pv = find_best(claim, store.list("PersistentVolume"), delay=delay, node=node)
        if pv is not None:
            self._bind(pv, claim)
            return None
        if delay and not selected:
            self._event(claim, "Normal", "WaitForFirstConsumer",
                        "waiting for first consumer to be created before binding")
        elif class_name:
            if sc is None:
                self._event(claim, "Warning", "ProvisioningFailed",
                            f'storageclass.storage.k8s.io "{class_name}" not found')
            elif sc.provisioner == NO_PROVISIONER:  # an in-tree name with no plugin
                self._event(claim, "Warning", "ProvisioningFailed",
                            f"no volume plugin matched name: {sc.provisioner}")
            else:
                self._ask_provisioner(claim, sc.provisioner)
        else:
            self._event(claim, "Normal", "FailedBinding",
                        "no persistent volumes available for this claim and no storage "
                        "class is set")
        self._claim_status(claim, "Pending")
        return None

    def _ask_provisioner(self, claim: Any, provisioner: str) -> None:
        ann = claim.annotations
        if ann.get(STORAGE_PROVISIONER) != provisioner:
            claim = self.ctx.store.update(claim.model_copy(update={
                "metadata": claim.metadata.model_copy(update={"annotations": {
                    **ann, STORAGE_PROVISIONER: provisioner,
                    BETA_STORAGE_PROVISIONER: provisioner}})}))
        self._event(claim, "Normal", "ExternalProvisioning",
                    external_provisioning(provisioner))

    def _sync_bound_claim(self, claim: Any) -> None:
        store: Any = self.ctx.store
        name = claim.spec.volume_name
        if not name:
            if self._claim_status(claim, "Lost"):
                self._event(claim, "Warning", "ClaimLost",
                            "Bound claim has lost reference to PersistentVolume. Data on the "
                            "volume is lost!")
            return
        pv = store.get_or_none("PersistentVolume", name, namespace=None)
        if pv is None:
            if self._claim_status(claim, "Lost"):
                self._event(claim, "Warning", "ClaimLost",
                            "Bound claim has lost its PersistentVolume. Data on the volume "
                            "is lost!")
            return
        if pv.spec.claim_ref is None or bound_to(pv, claim):
            self._bind(pv, claim)
            return
        if self._claim_status(claim, "Lost"):
            self._event(claim, "Warning", "ClaimMisbound",
                        "Two claims are bound to the same volume, this one is bound incorrectly")

    def _bind(self, pv: Any, claim: Any) -> None:
        """Bind both halves, the volume first (as Kubernetes does), each write skipped when
        the object already says so."""
        from orchestra.objects import ObjectReference, PersistentVolumeClaimSpec

        store: Any = self.ctx.store
        ref = pv.spec.claim_ref
        if ref is None or ref.uid != claim.metadata.uid:
            ann = dict(pv.annotations)
            if ref is None:
                ann[BOUND_BY_CONTROLLER] = "yes"
            new_ref = ObjectReference(
                api_version="v1", kind="PersistentVolumeClaim",
                namespace=claim.metadata.namespace, name=claim.metadata.name,
                uid=claim.metadata.uid, resource_version=claim.metadata.resource_version)
            pv = store.update(pv.model_copy(update={
                "metadata": pv.metadata.model_copy(update={"annotations": ann}),
                "spec": pv.spec.model_copy(update={"claim_ref": new_ref})}))
        pv = self._volume_phase(pv, "Bound")
        ann = dict(claim.annotations)
        spec = claim.spec
        if spec.volume_name != pv.metadata.name or ann.get(BIND_COMPLETED) != "yes":
            if spec.volume_name != pv.metadata.name:
                ann[BOUND_BY_CONTROLLER] = "yes"
                spec = PersistentVolumeClaimSpec.model_validate(
                    {**spec.to_dict(), "volumeName": pv.metadata.name})
            ann[BIND_COMPLETED] = "yes"
            claim = store.update(claim.model_copy(update={
                "metadata": claim.metadata.model_copy(update={"annotations": ann}),
                "spec": spec}))
        self._claim_status(claim, "Bound", pv)

    def _claim_status(self, claim: Any, phase: str, pv: Any = None) -> bool:
        """Write the claim's phase (and, when Bound, the volume's modes and capacity);
        returns whether anything changed."""
        from orchestra.objects import PersistentVolumeClaimStatus

        st = claim.status.to_dict() if claim.status is not None else {}
        st["phase"] = phase
        if pv is not None:
            st["accessModes"] = list(pv.spec.access_modes or ())
            st["capacity"] = dict(pv.spec.capacity or {})
        elif phase == "Pending":
            st.pop("accessModes", None)
            st.pop("capacity", None)
        new = PersistentVolumeClaimStatus.model_validate(st)
        if new == claim.status:
            return False
        self.ctx.store.update(claim.model_copy(update={"status": new}))
        return True

    # -- volumes --------------------------------------------------------------------------

    async def sync_volume(self, key: str) -> Result | None:
        _, name = split_key(key)
        store: Any = self.ctx.store
        pv = store.get_or_none("PersistentVolume", name, namespace=None)
        if pv is None:  # (one being deleted still turns Released: pv-protection waits on it)
            return None
        ref = pv.spec.claim_ref
        if ref is None or not ref.uid:
            # Unbound, or pre-bound by the administrator and waiting for its claim.
            self._volume_phase(pv, "Available")
            if ref is not None:
                self.claims.enqueue(f"{ref.namespace or 'default'}/{ref.name}")
            return None
        claim = store.get_or_none("PersistentVolumeClaim", ref.name,
                                  namespace=ref.namespace or "default")
        if claim is not None and claim.metadata.uid != ref.uid:
            claim = None
        if claim is None:
            self._release(pv)
            return None
        if claim.spec.volume_name == pv.metadata.name:
            self._volume_phase(pv, "Bound")
        elif not claim.spec.volume_name:
            self.claims.enqueue_obj(claim)  # the claim's half of the binding is pending
        elif pv.annotations.get(BOUND_BY_CONTROLLER) == "yes":
            # The claim went to another volume: undo our half.
            ann = {k: v for k, v in pv.annotations.items() if k != BOUND_BY_CONTROLLER}
            pv = store.update(pv.model_copy(update={
                "metadata": pv.metadata.model_copy(update={"annotations": ann}),
                "spec": pv.spec.model_copy(update={"claim_ref": None})}))
            self._volume_phase(pv, "Available")
        return None

    def _release(self, pv: Any) -> None:
        phase = pv.status.phase if pv.status else ""
        if phase == "Failed":
            return
        if phase != "Released":
            pv = self._volume_phase(pv, "Released")
        policy = pv.spec.persistent_volume_reclaim_policy
        if policy == "Delete" and not pv.annotations.get(PROVISIONED_BY):
            message = (f'error getting deleter volume plugin for volume '
                       f'"{pv.metadata.name}": no deletable volume plugin matched')
            self._event(pv, "Warning", "VolumeFailedDelete", message)
            self._volume_phase(pv, "Failed", message)
        elif policy == "Recycle":
            message = "No recycler plugin found for the volume!"
            self._event(pv, "Warning", "VolumeFailedRecycle", message)
            self._volume_phase(pv, "Failed", message)
        # Retain: stays Released until an administrator clears claimRef. Delete of a
        # provisioned volume: its provisioner deletes it.

    def _volume_phase(self, pv: Any, phase: str, message: str | None = None) -> Any:
        from orchestra.objects import PersistentVolumeStatus

        st = pv.status
        if st is not None and st.phase == phase and st.message == message:
            return pv
        now = format_time(self.ctx.clock.now())
        new = PersistentVolumeStatus(phase=phase, message=message,
                                     last_phase_transition_time=now
                                     if st is None or st.phase != phase
                                     else st.last_phase_transition_time)
        try:
            return self.ctx.store.update(pv.model_copy(update={"status": new}))
        except NotFound:
            return pv


def setup(ctx: Context) -> list[Runnable]:
    c = PersistentVolumeController(ctx)
    ctx.controllers["persistentvolume-binder"] = c.claims
    ctx.controllers["persistentvolume"] = c.volumes
    return [c.claims.run, c.volumes.run]


__all__ = ["COMPONENT", "PersistentVolumeController", "external_provisioning", "setup"]
