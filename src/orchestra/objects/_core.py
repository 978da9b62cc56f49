"""core/v1 kinds other than Pod: Node, Namespace, Service, Endpoints, ConfigMap, Secret,
Event, PersistentVolume(Claim), ResourceQuota, LimitRange.

Invariants:

- Defaults are those of the Kubernetes API server's defaulting for each type, applied at
  validation (Service type/ports/policies, Secret type, volume modes, reclaim policy, node
  allocatable, PV/PVC ``Pending`` phase). Values the system allocates (``clusterIP``,
  ``nodePort``, a namespace's phase) stay ``None`` until the store or a loop sets them.
- A Secret's ``stringData`` is merged into ``data`` (base64) at validation and dropped, as
  the API server does on write, so a stored Secret carries only ``data``. Messages never
  contain a Secret's values.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from orchestra.objects._base import (
    FrozenDict,
    IntOrString,
    KubeObject,
    Model,
    Time,
    dns1035_label_error,
    dns1123_label_error,
    register,
)
from orchestra.objects._pod import (
    AWSElasticBlockStoreVolumeSource,
    GCEPersistentDiskVolumeSource,
    HostPathVolumeSource,
    ISCSIVolumeSource,
    NFSVolumeSource,
    NodeSelector,
    Opaque,
    PersistentVolumeClaimSpec,
    ResourceList,
    check_unique_names,
    fail,
)

__all__ = [
    "AttachedVolume",
    "CSIPersistentVolumeSource",
    "ClientIPConfig",
    "ConfigMap",
    "ConfigMapNodeConfigSource",
    "ContainerImage",
    "DaemonEndpoint",
    "EndpointAddress",
    "EndpointPort",
    "EndpointSubset",
    "Endpoints",
    "Event",
    "EventSeries",
    "EventSource",
    "LimitRange",
    "LimitRangeItem",
    "LimitRangeSpec",
    "LoadBalancerIngress",
    "LoadBalancerStatus",
    "LocalVolumeSource",
    "MicroTime",
    "ModifyVolumeStatus",
    "Namespace",
    "NamespaceCondition",
    "NamespaceSpec",
    "NamespaceStatus",
    "Node",
    "NodeAddress",
    "NodeCondition",
    "NodeConfigSource",
    "NodeDaemonEndpoints",
    "NodeFeatures",
    "NodeRuntimeHandler",
    "NodeRuntimeHandlerFeatures",
    "NodeSpec",
    "NodeStatus",
    "NodeSwapStatus",
    "NodeSystemInfo",
    "ObjectReference",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "PersistentVolumeClaimCondition",
    "PersistentVolumeClaimStatus",
    "PersistentVolumeSpec",
    "PersistentVolumeStatus",
    "PortStatus",
    "ResourceQuota",
    "ResourceQuotaSpec",
    "ResourceQuotaStatus",
    "ScopeSelector",
    "ScopedResourceSelectorRequirement",
    "Secret",
    "SecretReference",
    "Service",
    "ServiceCondition",
    "ServicePort",
    "ServiceSpec",
    "ServiceStatus",
    "SessionAffinityConfig",
    "Taint",
    "VolumeNodeAffinity",
]


class ObjectReference(Model):
    """A reference to any object (an event's subject, an endpoint's pod, a PV's claim)."""

    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class SecretReference(Model):
    name: str | None = None
    namespace: str | None = None


def _port_error(v: int) -> str | None:
    if not 1 <= v <= 65535:
        return f"Invalid value: {v}: must be between 1 and 65535, inclusive"
    return None


# ---------------------------------------------------------------------------
# Node


class Taint(Model):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    time_added: Time | None = None


class ConfigMapNodeConfigSource(Model):
    namespace: str
    name: str
    uid: str | None = None
    resource_version: str | None = None
    kubelet_config_key: str


class NodeConfigSource(Model):
    config_map: ConfigMapNodeConfigSource | None = None


class NodeSpec(Model):
    pod_cidr: str | None = Field(None, alias="podCIDR")
    pod_cidrs: tuple[str, ...] | None = Field(None, alias="podCIDRs")
    provider_id: str | None = Field(None, alias="providerID")
    unschedulable: bool | None = None
    taints: tuple[Taint, ...] | None = None
    config_source: NodeConfigSource | None = None
    external_id: str | None = Field(None, alias="externalID")
    pod_preemption_policy: Opaque | None = None


class NodeCondition(Model):
    """One of a node's conditions (``Ready``, ``MemoryPressure``, ``DiskPressure``, ...)."""

    type: str
    status: str
    last_heartbeat_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(Model):
    type: str
    address: str


class DaemonEndpoint(Model):
    port: int = Field(alias="Port")


class NodeDaemonEndpoints(Model):
    kubelet_endpoint: DaemonEndpoint | None = None


class NodeSwapStatus(Model):
    capacity: int | None = None


class NodeSystemInfo(Model):
    machine_id: str = Field("", alias="machineID")
    system_uuid: str = Field("", alias="systemUUID")
    boot_id: str = Field("", alias="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""
    swap: NodeSwapStatus | None = None
    running_in_user_namespace: bool | None = None


class ContainerImage(Model):
    names: tuple[str, ...] | None = None
    size_bytes: int | None = None


class AttachedVolume(Model):
    name: str
    device_path: str


class NodeRuntimeHandlerFeatures(Model):
    recursive_read_only_mounts: bool | None = None
    user_namespaces: bool | None = None


class NodeRuntimeHandler(Model):
    name: str | None = None
    features: NodeRuntimeHandlerFeatures | None = None


class NodeFeatures(Model):
    supplemental_groups_policy: bool | None = None


class NodeStatus(Model):
    """A node's reported state. ``allocatable`` defaults to ``capacity``, as in Kubernetes."""

    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    phase: str | None = None
    conditions: tuple[NodeCondition, ...] | None = None
    addresses: tuple[NodeAddress, ...] | None = None
    daemon_endpoints: NodeDaemonEndpoints | None = None
    node_info: NodeSystemInfo | None = None
    images: tuple[ContainerImage, ...] | None = None
    volumes_in_use: tuple[str, ...] | None = None
    volumes_attached: tuple[AttachedVolume, ...] | None = None
    config: Opaque | None = None
    runtime_handlers: tuple[NodeRuntimeHandler, ...] | None = None
    features: NodeFeatures | None = None
    declared_features: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _default_allocatable(self) -> NodeStatus:
        d = self.__dict__
        if d["allocatable"] is None and d["capacity"] is not None:
            d["allocatable"] = d["capacity"]
        return self

    def condition(self, type_: str) -> NodeCondition | None:
        for c in self.conditions or ():
            if c.type == type_:
                return c
        return None


@register(plural="nodes", short_names=("no",), namespaced=False)
class Node(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Node"] = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None

    def condition(self, type_: str) -> NodeCondition | None:
        """The status condition of that type, if present."""
        return self.status.condition(type_) if self.status is not None else None

    @property
    def is_ready(self) -> bool:
        """The ``Ready`` condition is ``True``."""
        c = self.condition("Ready")
        return c is not None and c.status == "True"

    @property
    def unschedulable(self) -> bool:
        return bool(self.spec.unschedulable)

    @property
    def taints(self) -> tuple[Taint, ...]:
        return self.spec.taints or ()

    @property
    def allocatable(self) -> FrozenDict[str, str]:
        st = self.status
        return (st.allocatable if st is not None else None) or FrozenDict()


# ---------------------------------------------------------------------------
# Namespace


class NamespaceSpec(Model):
    finalizers: tuple[str, ...] | None = None


class NamespaceCondition(Model):
    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NamespaceStatus(Model):
    phase: str | None = None
    conditions: tuple[NamespaceCondition, ...] | None = None


@register(plural="namespaces", short_names=("ns",), namespaced=False,
          name_check=dns1123_label_error)
class Namespace(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Namespace"] = "Namespace"
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None

    @property
    def phase(self) -> str | None:
        return self.status.phase if self.status is not None else None


# ---------------------------------------------------------------------------
# Service


class ServicePort(Model):
    """One service port; ``targetPort`` defaults to ``port``, ``protocol`` to TCP."""

    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None
    port: int
    target_port: IntOrString | None = None
    node_port: int | None = None

    @field_validator("port", "node_port")
    @classmethod
    def _check_port(cls, v: int | None) -> int | None:
        if v is not None:
            err = _port_error(v)
            if err:
                raise ValueError(err)
        return v

    @field_validator("target_port")
    @classmethod
    def _check_target_port(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int):
            err = _port_error(v)
            if err:
                raise ValueError(err)
        return v

    @model_validator(mode="after")
    def _default_target_port(self) -> ServicePort:
        d = self.__dict__
        if d["target_port"] is None:
            d["target_port"] = d["port"]
        return self


class ClientIPConfig(Model):
    timeout_seconds: int | None = None


class SessionAffinityConfig(Model):
    client_ip: ClientIPConfig | None = Field(None, alias="clientIP")


_DEFAULT_AFFINITY_CONFIG = SessionAffinityConfig.model_validate(
    {"clientIP": {"timeoutSeconds": 10800}}
)
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


class ServiceSpec(Model):
    ports: tuple[ServicePort, ...] | None = None
    selector: FrozenDict[str, str] | None = None
    cluster_ip: str | None = Field(None, alias="clusterIP")
    cluster_ips: tuple[str, ...] | None = Field(None, alias="clusterIPs")
    type: str = "ClusterIP"
    external_ips: tuple[str, ...] | None = Field(None, alias="externalIPs")
    session_affinity: Literal["None", "ClientIP"] = "None"
    load_balancer_ip: str | None = Field(None, alias="loadBalancerIP")
    load_balancer_source_ranges: tuple[str, ...] | None = None
    external_name: str | None = None
    external_traffic_policy: str | None = None
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool | None = None
    session_affinity_config: SessionAffinityConfig | None = None
    ip_families: tuple[str, ...] | None = None
    ip_family_policy: str | None = None
    allocate_load_balancer_node_ports: bool | None = None
    load_balancer_class: str | None = None
    internal_traffic_policy: str | None = None
    traffic_distribution: str | None = None

    @field_validator("type")
    @classmethod
    def _check_type(cls, v: str) -> str:
        if v not in _SERVICE_TYPES:
            raise ValueError(
                f'Unsupported value: "{v}": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"'
            )
        return v

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, v: tuple[ServicePort, ...] | None) -> tuple[ServicePort, ...] | None:
        if v and len(v) > 1:
            missing = [((i, "name"), "Required value") for i, p in enumerate(v) if not p.name]
            if missing:
                fail(missing)
            check_unique_names(v)
        return v

    @model_validator(mode="after")
    def _defaults(self) -> ServiceSpec:
        # SetDefaults_Service, plus the required-ports and externalName rules of validation.
        d = self.__dict__
        kind = d["type"]
        if kind == "ExternalName":
            if not d["external_name"]:
                fail([(("externalName",), "Required value")])
        else:
            if not d["ports"] and d["cluster_ip"] != "None":
                fail([(("ports",), "Required value")])
            if d["internal_traffic_policy"] is None:
                d["internal_traffic_policy"] = "Cluster"
        if kind in ("NodePort", "LoadBalancer") and d["external_traffic_policy"] is None:
            d["external_traffic_policy"] = "Cluster"
        if kind == "LoadBalancer" and d["allocate_load_balancer_node_ports"] is None:
            d["allocate_load_balancer_node_ports"] = True
        if d["session_affinity"] == "ClientIP":
            cfg = d["session_affinity_config"]
            if cfg is None or cfg.client_ip is None or cfg.client_ip.timeout_seconds is None:
                d["session_affinity_config"] = _DEFAULT_AFFINITY_CONFIG
        return self

    @property
    def is_headless(self) -> bool:
        return self.cluster_ip == "None"


class PortStatus(Model):
    port: int
    protocol: str
    error: str | None = None


class LoadBalancerIngress(Model):
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: tuple[PortStatus, ...] | None = None


class LoadBalancerStatus(Model):
    ingress: tuple[LoadBalancerIngress, ...] | None = None


class ServiceCondition(Model):
    type: str
    status: str
    observed_generation: int | None = None
    last_transition_time: Time
    reason: str
    message: str


class ServiceStatus(Model):
    load_balancer: LoadBalancerStatus | None = None
    conditions: tuple[ServiceCondition, ...] | None = None


@register(plural="services", short_names=("svc",), namespaced=True,
          name_check=dns1035_label_error)
class Service(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Service"] = "Service"
    spec: ServiceSpec
    status: ServiceStatus | None = None

    def port(self, port_or_name: int | str) -> ServicePort | None:
        """The service port with that number or name."""
        for p in self.spec.ports or ():
            if p.port == port_or_name or (p.name is not None and p.name == port_or_name):
                return p
        return None


# ---------------------------------------------------------------------------
# Endpoints


class EndpointAddress(Model):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(Model):
    name: str | None = None
    port: int
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSubset(Model):
    addresses: tuple[EndpointAddress, ...] | None = None
    not_ready_addresses: tuple[EndpointAddress, ...] | None = None
    ports: tuple[EndpointPort, ...] | None = None


@register(plural="endpoints", short_names=("ep",), namespaced=True)
class Endpoints(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Endpoints"] = "Endpoints"
    subsets: tuple[EndpointSubset, ...] | None = None


# ---------------------------------------------------------------------------
# ConfigMap and Secret

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _config_key_error(key: str) -> str | None:
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not _CONFIG_KEY.match(key):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')"
        )
    if key in (".", ".."):
        return "must not be '.' or '..'"
    return None


def _check_keys(v: FrozenDict[str, Any] | None) -> None:
    if v:
        errors: list[tuple[tuple[int | str, ...], str]] = []
        for key in v:
            err = _config_key_error(key)
            if err:
                errors.append(((key,), f'Invalid value: "{key}": {err}'))
        if errors:
            fail(errors)


def _check_base64(v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
    """Check base64 values; line breaks are dropped, as Go's decoder ignores them."""
    if not v:
        return v
    _check_keys(v)
    bad: list[tuple[tuple[int | str, ...], str]] = []
    out: dict[str, str] | None = None
    for key, value in v.items():
        if "\n" in value or "\r" in value:
            out = out if out is not None else dict(v)
            value = out[key] = value.replace("\n", "").replace("\r", "")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            bad.append(((key,), "Invalid value: illegal base64 data"))
    if bad:
        fail(bad)
    return v if out is None else FrozenDict(out)


@register(plural="configmaps", short_names=("cm",), namespaced=True)
class ConfigMap(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["ConfigMap"] = "ConfigMap"
    data: FrozenDict[str, str] | None = None
    binary_data: FrozenDict[str, str] | None = None
    immutable: bool | None = None

    @field_validator("data")
    @classmethod
    def _check_data(cls, v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
        _check_keys(v)
        return v

    @field_validator("binary_data")
    @classmethod
    def _check_binary_data(
        cls, v: FrozenDict[str, str] | None, info: Any
    ) -> FrozenDict[str, str] | None:
        v = _check_base64(v)
        data = info.data.get("data")
        if v and data:
            dup = [((k,), f'Invalid value: "{k}": duplicate of key present in data')
                   for k in v if k in data]
            if dup:
                fail(dup)
        return v

    def binary(self, key: str) -> bytes | None:
        """The decoded bytes of ``binaryData[key]``."""
        raw = self.binary_data.get(key) if self.binary_data else None
        return None if raw is None else base64.b64decode(raw)


_SECRET_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


@register(plural="secrets", namespaced=True)
class Secret(KubeObject):
    """A secret. ``data`` values are base64; ``stringData`` is folded into ``data``."""

    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Secret"] = "Secret"
    data: FrozenDict[str, str] | None = None
    string_data: FrozenDict[str, str] | None = None
    type: str = "Opaque"
    immutable: bool | None = None

    @field_validator("data")
    @classmethod
    def _check_data(cls, v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
        return _check_base64(v)

    @field_validator("string_data")
    @classmethod
    def _check_string_data(
        cls, v: FrozenDict[str, str] | None
    ) -> FrozenDict[str, str] | None:
        _check_keys(v)
        return v

    @model_validator(mode="after")
    def _merge_string_data(self) -> Secret:
        d = self.__dict__
        sd = d["string_data"]
        if sd is not None:
            merged = dict(d["data"] or {})
            for k, v in sd.items():
                merged[k] = base64.b64encode(v.encode()).decode("ascii")
            d["data"] = FrozenDict(merged)
            d["string_data"] = None
        need = _SECRET_REQUIRED_KEYS.get(d["type"])
        if need:
            data = d["data"] or {}
            missing = [(("data", k), "Required value") for k in need if k not in data]
            if missing:
                fail(missing)
        if d["type"] == "kubernetes.io/basic-auth":
            data = d["data"] or {}
            if "username" not in data and "password" not in data:
                fail([(("data",), 'Required value: one of "username" or "password"')])
        return self

    def decoded(self, key: str) -> bytes | None:
        """The decoded bytes of ``data[key]``, or ``None``."""
        raw = self.data.get(key) if self.data else None
        return None if raw is None else base64.b64decode(raw)

    def __repr__(self) -> str:  # never show the data
        ns = f"{self.metadata.namespace}/" if self.metadata.namespace else ""
        return f"<Secret {ns}{self.metadata.name} type={self.type} keys={len(self.data or ())}>"

    def __str__(self) -> str:
        return repr(self)


# ---------------------------------------------------------------------------
# Event


def _to_micro_time(v: Any) -> Any:
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.UTC)
        return v.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v


MicroTime = Annotated[str, BeforeValidator(_to_micro_time)]
"""``metav1.MicroTime``: RFC 3339 with microseconds (``2024-05-01T10:00:02.123456Z``)."""


class EventSource(Model):
    component: str | None = None
    host: str | None = None


class EventSeries(Model):
    count: int | None = None
    last_observed_time: MicroTime | None = None


def _any_name(name: str) -> str | None:
    """Event names are free form (``<object>.<hex>`` by convention)."""
    return None if name else "Required value"


@register(plural="events", short_names=("ev",), namespaced=True, name_check=_any_name)
class Event(KubeObject):
    """A core/v1 Event: something that happened to ``involvedObject``."""

    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Event"] = "Event"
    involved_object: ObjectReference
    reason: str | None = None
    message: str | None = None
    source: EventSource | None = None
    first_timestamp: Time | None = None
    last_timestamp: Time | None = None
    count: int | None = None
    type: str | None = None
    event_time: MicroTime | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None


# ---------------------------------------------------------------------------
# Persistent volumes


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


@register(plural="persistentvolumes", short_names=("pv",), namespaced=False)
class PersistentVolume(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["PersistentVolume"] = "PersistentVolume"
    spec: PersistentVolumeSpec = Field(default_factory=PersistentVolumeSpec)
    status: PersistentVolumeStatus = Field(default_factory=PersistentVolumeStatus)


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


@register(plural="persistentvolumeclaims", short_names=("pvc",), namespaced=True)
class PersistentVolumeClaim(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["PersistentVolumeClaim"] = "PersistentVolumeClaim"
    spec: PersistentVolumeClaimSpec = Field(default_factory=PersistentVolumeClaimSpec)
    status: PersistentVolumeClaimStatus = Field(default_factory=PersistentVolumeClaimStatus)


# ---------------------------------------------------------------------------
# ResourceQuota and LimitRange


class ScopedResourceSelectorRequirement(Model):
    scope_name: str
    operator: str
    values: tuple[str, ...] | None = None


class ScopeSelector(Model):
    match_expressions: tuple[ScopedResourceSelectorRequirement, ...] | None = None


class ResourceQuotaSpec(Model):
    hard: ResourceList | None = None
    scopes: tuple[str, ...] | None = None
    scope_selector: ScopeSelector | None = None


class ResourceQuotaStatus(Model):
    hard: ResourceList | None = None
    used: ResourceList | None = None


@register(plural="resourcequotas", short_names=("quota",), namespaced=True)
class ResourceQuota(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["ResourceQuota"] = "ResourceQuota"
    spec: ResourceQuotaSpec = Field(default_factory=ResourceQuotaSpec)
    status: ResourceQuotaStatus | None = None


class LimitRangeItem(Model):
    type: Literal["Container", "Pod", "PersistentVolumeClaim"]
    max: ResourceList | None = None
    min: ResourceList | None = None
    default: ResourceList | None = None
    default_request: ResourceList | None = None
    max_limit_request_ratio: ResourceList | None = None


class LimitRangeSpec(Model):
    limits: tuple[LimitRangeItem, ...]


@register(plural="limitranges", short_names=("limits",), namespaced=True)
class LimitRange(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["LimitRange"] = "LimitRange"
    spec: LimitRangeSpec

