"""The local dynamic provisioner, and the cluster's default StorageClass that uses it.

Like kind's and minikube's local-path provisioners: a claim handed to
``orchestra.dev/local-path`` (the PV controller sets ``volume.kubernetes.io/
storage-provisioner``) gets a directory of its own under the cluster's state directory and
a ``hostPath`` PersistentVolume ``pvc-<claim uid>`` pre-bound to it, which the PV
controller then binds. With ``WaitForFirstConsumer`` the provisioner waits for the
scheduler's choice (``volume.kubernetes.io/selected-node``) and pins the volume to that
node with ``nodeAffinity`` on ``kubernetes.io/hostname``. A released volume of reclaim
policy ``Delete`` that it made is removed, directory and object.

The default class is ``standard`` (``WaitForFirstConsumer``, reclaim ``Delete``, marked
``storageclass.kubernetes.io/is-default-class``), created at start unless the cluster
option ``default_storage_class`` is false.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

from orchestra._errors import AlreadyExists, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of
from orchestra.loops._pvmatch import (
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
    WAIT_FOR_FIRST_CONSUMER,
    requested,
)

PROVISIONER = "orchestra.dev/local-path"
DEFAULT_CLASS = "standard"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def default_storage_class() -> Any:
    from orchestra.objects import DEFAULT_STORAGE_CLASS_ANNOTATION, StorageClass

    return StorageClass.model_validate({
        "metadata": {"name": DEFAULT_CLASS,
                     "annotations": {DEFAULT_STORAGE_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
        "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER})


class LocalProvisioner:
    """Keys are ``claim/<namespace>/<name>`` and ``volume/<name>``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.root = os.path.join(ctx.state_dir, "volumes")
        self.controller = Controller("local-path-provisioner", self.reconcile, ctx.clock)
        ctx.informers["PersistentVolumeClaim"].add_handler(
            lambda t, o, old: self.controller.enqueue(f"claim/{key_of(o)}"))
        ctx.informers["PersistentVolume"].add_handler(
            lambda t, o, old: self.controller.enqueue(f"volume/{key_of(o)}"))

    def _event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(obj, type_, reason, message, component=PROVISIONER)

    async def reconcile(self, key: str) -> Result | None:
        what, _, rest = key.partition("/")
        if what == "claim":
            ns, _, name = rest.partition("/")
            await self._provision(ns, name)
        else:
            await self._reclaim(rest)
        return None

    async def _provision(self, ns: str, name: str) -> None:
        from orchestra.objects import PersistentVolume

        store: Any = self.ctx.store
        claim = store.get_or_none("PersistentVolumeClaim", name, namespace=ns)
        if claim is None or claim.spec.volume_name or \
                claim.metadata.deletion_timestamp is not None or \
                claim.annotations.get(STORAGE_PROVISIONER) != PROVISIONER:
            return
        sc = store.get_or_none("StorageClass", claim.spec.storage_class_name or "",
                               namespace=None)
        if sc is None:
            return
        node = claim.annotations.get(SELECTED_NODE)
        if sc.volume_binding_mode == WAIT_FOR_FIRST_CONSUMER and not node:
            return
        pv_name = f"pvc-{claim.metadata.uid}"
        if store.get_or_none("PersistentVolume", pv_name, namespace=None) is not None:
            return
        self._event(claim, "Normal", "Provisioning",
                    f'External provisioner is provisioning volume for claim "{ns}/{name}"')
        path = os.path.join(self.root, f"{pv_name}_{ns}_{name}")
        await asyncio.to_thread(_make_dir, path)
        spec: dict[str, Any] = {
            "capacity": {"storage": str(requested(claim))},
            "accessModes": list(claim.spec.access_modes or ("ReadWriteOnce",)),
            "persistentVolumeReclaimPolicy": sc.reclaim_policy,
            "storageClassName": sc.metadata.name,
            "volumeMode": claim.spec.volume_mode or "Filesystem",
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": ns, "name": name, "uid": claim.metadata.uid,
                         "resourceVersion": claim.metadata.resource_version},
        }
        if sc.mount_options:
            spec["mountOptions"] = list(sc.mount_options)
        if node:
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}
        pv = PersistentVolume.model_validate({
            "metadata": {"name": pv_name, "annotations": {PROVISIONED_BY: PROVISIONER}},
            "spec": spec})
        try:
            store.create(pv)
        except AlreadyExists:
            return
        self._event(claim, "Normal", "ProvisioningSucceeded",
                    f"Successfully provisioned volume {pv_name}")

    async def _reclaim(self, name: str) -> None:
        store: Any = self.ctx.store
        pv = store.get_or_none("PersistentVolume", name, namespace=None)
        if pv is None or pv.annotations.get(PROVISIONED_BY) != PROVISIONER or \
                pv.spec.persistent_volume_reclaim_policy != "Delete" or \
                (pv.status.phase if pv.status else "") != "Released":
            return
        path = pv.spec.host_path.path if pv.spec.host_path is not None else ""
        if path and os.path.dirname(path) == self.root:
            await asyncio.to_thread(shutil.rmtree, path, True)
        try:
            store.delete("PersistentVolume", name, namespace="")
        except NotFound:
            pass


def _make_dir(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)  # as local-path-provisioner: any container user may write


def setup(ctx: Context) -> list[Runnable]:
    if ctx.options.get("default_storage_class", True):
        try:
            ctx.store.create(default_storage_class())
        except AlreadyExists:
            pass
    if not ctx.state_dir:
        return []
    p = LocalProvisioner(ctx)
    ctx.controllers["local-path-provisioner"] = p.controller
    return [p.controller.run]


__all__ = ["DEFAULT_CLASS", "PROVISIONER", "LocalProvisioner", "default_storage_class",
           "setup"]
