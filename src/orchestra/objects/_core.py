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

The kinds are defined here, in the order they are registered. Their nested spec and status
types live in ``_node_types``, ``_service_types`` and ``_storage_types`` (object
references in ``_core_shared``) and are re-exported here; the checks of ConfigMap and
Secret data are in ``_config_data``.
"""

from __future__ import annotations

import base64
import datetime as _dt
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from orchestra.objects._base import KubeObject, register
from orchestra.objects._config_data import _check_base64, _check_keys
from orchestra.objects._core_shared import ObjectReference, SecretReference
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._names import dns1035_label_error, dns1123_label_error
from orchestra.objects._node_types import (
    AttachedVolume,
    ConfigMapNodeConfigSource,
    ContainerImage,
    DaemonEndpoint,
    NamespaceCondition,
    NamespaceSpec,
    NamespaceStatus,
    NodeAddress,
    NodeCondition,
    NodeConfigSource,
    NodeDaemonEndpoints,
    NodeFeatures,
    NodeRuntimeHandler,
    NodeRuntimeHandlerFeatures,
    NodeSpec,
    NodeStatus,
    NodeSwapStatus,
    NodeSystemInfo,
    Taint,
)

# Through _pod, as before the split: Pod is registered first, then the kinds below (KINDS
# keeps registration order, which the namespace controller deletes in).
from orchestra.objects._pod import PersistentVolumeClaimSpec, ResourceList, fail
from orchestra.objects._scalars import Time
from orchestra.objects._service_types import (
    ClientIPConfig,
    EndpointAddress,
    EndpointPort,
    EndpointSubset,
    LoadBalancerIngress,
    LoadBalancerStatus,
    PortStatus,
    ServiceCondition,
    ServicePort,
    ServiceSpec,
    ServiceStatus,
    SessionAffinityConfig,
)
from orchestra.objects._storage_types import (
    CSIPersistentVolumeSource,
    LocalVolumeSource,
    ModifyVolumeStatus,
    PersistentVolumeClaimCondition,
    PersistentVolumeClaimStatus,
    PersistentVolumeSpec,
    PersistentVolumeStatus,
    VolumeNodeAffinity,
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


# ---------------------------------------------------------------------------
# Node


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


@register(plural="endpoints", short_names=("ep",), namespaced=True)
class Endpoints(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Endpoints"] = "Endpoints"
    subsets: tuple[EndpointSubset, ...] | None = None


# ---------------------------------------------------------------------------
# ConfigMap and Secret


MAX_DATA_SIZE = 1024 * 1024
"""Kubernetes' MaxSecretSize: the most data a ConfigMap or a Secret holds (1 MiB)."""


def _decoded_size(b64: str) -> int:
    """Bytes that a base64 value decodes to (without decoding it)."""
    return len(b64) * 3 // 4 - b64[-2:].count("=")


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

    @model_validator(mode="after")
    def _check_size(self) -> ConfigMap:
        """ValidateConfigMap: data and binaryData (decoded) together at most 1 MiB, an
        error about the whole object (the path ``[]``)."""
        d = self.__dict__
        total = sum(len(v.encode("utf-8", "surrogatepass"))
                    for v in (d["data"] or {}).values())
        total += sum(_decoded_size(v) for v in (d["binary_data"] or {}).values())
        if total > MAX_DATA_SIZE:
            fail([(("[]",), f"Too long: may not be more than {MAX_DATA_SIZE} bytes")])
        return self

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
        if sum(_decoded_size(v) for v in (d["data"] or {}).values()) > MAX_DATA_SIZE:
            fail([(("data",), f"Too long: may not be more than {MAX_DATA_SIZE} bytes")])
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


@register(plural="persistentvolumes", short_names=("pv",), namespaced=False)
class PersistentVolume(KubeObject):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["PersistentVolume"] = "PersistentVolume"
    spec: PersistentVolumeSpec = Field(default_factory=PersistentVolumeSpec)
    status: PersistentVolumeStatus = Field(default_factory=PersistentVolumeStatus)


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
