"""core/v1 PersistentVolume and PersistentVolumeClaim spec and status types (the kinds
themselves are in ``_core``).

Defaults are Kubernetes': reclaim policy ``Retain``, volume mode ``Filesystem``, phase
``Pending``. Legacy in-tree volume sources are accepted and kept as Opaque, never
provisioned by orchestra.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._core_shared import (
    ObjectReference,
    Opaque,
    ResourceList,
    SecretReference,
)
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._pod_spec import NodeSelector
from orchestra.objects._scalars import Time
from orchestra.objects._volume import (
    AWSElasticBlockStoreVolumeSource,
    GCEPersistentDiskVolumeSource,
    HostPathVolumeSource,
    ISCSIVolumeSource,
    NFSVolumeSource,
)

# ---------------------------------------------------------------------------
# PersistentVolume


class LocalVolumeSource(Model):
    path: str
    fs_type: str | None = None


class CSIPersistentVolumeSource(Model):
    driver: str
    volume_handle: str
    read_only: bool | None = None
    fs_type: str | None = None
    volume_attributes: FrozenDict[str, str] | None = None
    controller_publish_secret_ref: SecretReference | None = None
    node_stage_secret_ref: SecretReference | None = None
    node_publish_secret_ref: SecretReference | None = None
    controller_expand_secret_ref: SecretReference | None = None
    node_expand_secret_ref: SecretReference | None = None


class VolumeNodeAffinity(Model):
    required: NodeSelector | None = None


class PersistentVolumeSpec(Model):
    capacity: ResourceList | None = None
    access_modes: tuple[str, ...] | None = None
    claim_ref: ObjectReference | None = None
    persistent_volume_reclaim_policy: Literal["Retain", "Delete", "Recycle"] = "Retain"
    storage_class_name: str | None = None
    mount_options: tuple[str, ...] | None = None
    volume_mode: str = "Filesystem"
    node_affinity: VolumeNodeAffinity | None = None
    volume_attributes_class_name: str | None = None
    host_path: HostPathVolumeSource | None = None
    local: LocalVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    csi: CSIPersistentVolumeSource | None = None
    iscsi: ISCSIVolumeSource | None = None
    aws_elastic_block_store: AWSElasticBlockStoreVolumeSource | None = None
    gce_persistent_disk: GCEPersistentDiskVolumeSource | None = None
    # Legacy in-tree sources: accepted and kept, never provisioned by orchestra.
    azure_disk: Opaque | None = None
    azure_file: Opaque | None = None
    cephfs: Opaque | None = None
    cinder: Opaque | None = None
    fc: Opaque | None = None
    flex_volume: Opaque | None = None
    flocker: Opaque | None = None
    glusterfs: Opaque | None = None
    photon_persistent_disk: Opaque | None = None
    portworx_volume: Opaque | None = None
    quobyte: Opaque | None = None
    rbd: Opaque | None = None
    scale_io: Opaque | None = Field(None, alias="scaleIO")
    storageos: Opaque | None = None
    vsphere_volume: Opaque | None = None


class PersistentVolumeStatus(Model):
    phase: str = "Pending"
    message: str | None = None
    reason: str | None = None
    last_phase_transition_time: Time | None = None


# ---------------------------------------------------------------------------
# PersistentVolumeClaim


class PersistentVolumeClaimCondition(Model):
    type: str
    status: str
    last_probe_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class ModifyVolumeStatus(Model):
    target_volume_attributes_class_name: str | None = None
    status: str


class PersistentVolumeClaimStatus(Model):
    phase: str = "Pending"
    access_modes: tuple[str, ...] | None = None
    capacity: ResourceList | None = None
    conditions: tuple[PersistentVolumeClaimCondition, ...] | None = None
    allocated_resources: ResourceList | None = None
    allocated_resource_statuses: FrozenDict[str, str] | None = None
    current_volume_attributes_class_name: str | None = None
    modify_volume_status: ModifyVolumeStatus | None = None
    health_status: Opaque | None = None
