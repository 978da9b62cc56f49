"""core/v1 Node and Namespace spec and status types (the kinds themselves are in ``_core``).

A NodeStatus's ``allocatable`` defaults to its ``capacity``, as in Kubernetes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from orchestra.objects._core_shared import Opaque, ResourceList
from orchestra.objects._model import Model
from orchestra.objects._scalars import Time

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
