"""core/v1 volume types: every volume source a pod may name, the claim spec of a persistent
volume claim, and the pod's Volume.

A Volume with no source is an ``emptyDir``, and projected file modes default to 0644, as
Kubernetes defaults them. Legacy in-tree sources are accepted and kept as Opaque, never
mounted by orchestra.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from orchestra.objects._core_shared import (
    LocalObjectReference,
    ObjectFieldSelector,
    Opaque,
    ResourceFieldSelector,
    ResourceList,
    TypedLocalObjectReference,
    TypedObjectReference,
)
from orchestra.objects._messages import invalid
from orchestra.objects._meta import LabelSelector, ObjectMeta
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._names import dns1123_label_error
from orchestra.objects._scalars import QuantityValue

DEFAULT_MODE = 0o644  # 420: what Kubernetes defaults every projected file mode to


class KeyToPath(Model):
    key: str
    path: str
    mode: int | None = None
    user: int | None = None


class EmptyDirVolumeSource(Model):
    medium: str | None = None
    size_limit: QuantityValue | None = None
    mode: int | None = None


class HostPathVolumeSource(Model):
    path: str
    type: str = ""


class ConfigMapVolumeSource(Model):
    name: str | None = None
    items: tuple[KeyToPath, ...] | None = None
    default_mode: int = DEFAULT_MODE
    default_user: int | None = None
    optional: bool | None = None


class SecretVolumeSource(Model):
    secret_name: str | None = None
    items: tuple[KeyToPath, ...] | None = None
    default_mode: int = DEFAULT_MODE
    default_user: int | None = None
    optional: bool | None = None


class PersistentVolumeClaimVolumeSource(Model):
    claim_name: str
    read_only: bool | None = None


class DownwardAPIVolumeFile(Model):
    path: str
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = None
    user: int | None = None


class DownwardAPIVolumeSource(Model):
    items: tuple[DownwardAPIVolumeFile, ...] | None = None
    default_mode: int = DEFAULT_MODE
    default_user: int | None = None


class ConfigMapProjection(Model):
    name: str | None = None
    items: tuple[KeyToPath, ...] | None = None
    optional: bool | None = None


class SecretProjection(Model):
    name: str | None = None
    items: tuple[KeyToPath, ...] | None = None
    optional: bool | None = None


class DownwardAPIProjection(Model):
    items: tuple[DownwardAPIVolumeFile, ...] | None = None


class ServiceAccountTokenProjection(Model):
    audience: str | None = None
    expiration_seconds: int = 3600
    path: str
    user: int | None = None


class ClusterTrustBundleProjection(Model):
    name: str | None = None
    signer_name: str | None = None
    label_selector: LabelSelector | None = None
    optional: bool | None = None
    path: str
    user: int | None = None


class PodCertificateProjection(Model):
    signer_name: str
    key_type: str
    max_expiration_seconds: int | None = None
    credential_bundle_path: str | None = None
    key_path: str | None = None
    certificate_chain_path: str | None = None
    user: int | None = None
    user_annotations: FrozenDict[str, str] | None = None


class VolumeProjection(Model):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(None, alias="downwardAPI")
    service_account_token: ServiceAccountTokenProjection | None = None
    cluster_trust_bundle: ClusterTrustBundleProjection | None = None
    pod_certificate: PodCertificateProjection | None = None


class ProjectedVolumeSource(Model):
    sources: tuple[VolumeProjection, ...] | None = None
    default_mode: int = DEFAULT_MODE
    default_user: int | None = None


class NFSVolumeSource(Model):
    server: str
    path: str
    read_only: bool | None = None


class CSIVolumeSource(Model):
    driver: str
    read_only: bool | None = None
    fs_type: str | None = None
    volume_attributes: FrozenDict[str, str] | None = None
    node_publish_secret_ref: LocalObjectReference | None = None


class ISCSIVolumeSource(Model):
    target_portal: str
    iqn: str
    lun: int
    iscsi_interface: str = "default"
    fs_type: str | None = None
    read_only: bool | None = None
    portals: tuple[str, ...] | None = None
    chap_auth_discovery: bool | None = None
    chap_auth_session: bool | None = None
    secret_ref: LocalObjectReference | None = None
    initiator_name: str | None = None


class GitRepoVolumeSource(Model):
    repository: str
    revision: str | None = None
    directory: str | None = None


class AWSElasticBlockStoreVolumeSource(Model):
    volume_id: str = Field(alias="volumeID")
    fs_type: str | None = None
    partition: int | None = None
    read_only: bool | None = None


class GCEPersistentDiskVolumeSource(Model):
    pd_name: str
    fs_type: str | None = None
    partition: int | None = None
    read_only: bool | None = None


class ImageVolumeSource(Model):
    reference: str | None = None
    pull_policy: str | None = None



class VolumeResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class PersistentVolumeClaimSpec(Model):
    """A claim's request; ``volumeMode`` defaults to ``Filesystem`` as in Kubernetes."""

    access_modes: tuple[str, ...] | None = None
    selector: LabelSelector | None = None
    resources: VolumeResourceRequirements | None = None
    volume_name: str | None = None
    storage_class_name: str | None = None
    volume_mode: str = "Filesystem"
    data_source: TypedLocalObjectReference | None = None
    data_source_ref: TypedObjectReference | None = None
    volume_attributes_class_name: str | None = None


class PersistentVolumeClaimTemplate(Model):
    metadata: ObjectMeta | None = None
    spec: PersistentVolumeClaimSpec


class EphemeralVolumeSource(Model):
    volume_claim_template: PersistentVolumeClaimTemplate | None = None


_VOLUME_SOURCES = (
    "empty_dir", "host_path", "config_map", "secret", "persistent_volume_claim",
    "downward_api", "projected", "nfs", "csi", "ephemeral", "iscsi", "git_repo",
    "aws_elastic_block_store", "gce_persistent_disk", "image",
    "azure_disk", "azure_file", "cephfs", "cinder", "fc", "flex_volume", "flocker",
    "glusterfs", "photon_persistent_disk", "portworx_volume", "quobyte", "rbd", "scale_io",
    "storageos", "vsphere_volume",
)


class Volume(Model):
    """A pod volume. With no source given it is an ``emptyDir``, as Kubernetes defaults it."""

    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(None, alias="downwardAPI")
    projected: ProjectedVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    csi: CSIVolumeSource | None = None
    ephemeral: EphemeralVolumeSource | None = None
    iscsi: ISCSIVolumeSource | None = None
    git_repo: GitRepoVolumeSource | None = None
    aws_elastic_block_store: AWSElasticBlockStoreVolumeSource | None = None
    gce_persistent_disk: GCEPersistentDiskVolumeSource | None = None
    image: ImageVolumeSource | None = None
    # Legacy in-tree sources: accepted and kept, never mounted by orchestra.
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

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        err = dns1123_label_error(v)
        if err:
            raise ValueError(invalid(v, err))
        return v

    @model_validator(mode="after")
    def _default_source(self) -> Volume:
        d = self.__dict__
        if all(d[s] is None for s in _VOLUME_SOURCES):
            d["empty_dir"] = EmptyDirVolumeSource()
        return self

    @property
    def source_type(self) -> str:
        """The camelCase name of the volume's source (``emptyDir``, ``configMap``, ...)."""
        d = self.__dict__
        for s in _VOLUME_SOURCES:
            if d[s] is not None:
                return str(type(self).model_fields[s].alias)
        return "emptyDir"
