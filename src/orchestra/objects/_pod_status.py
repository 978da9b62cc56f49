"""core/v1 pod status types: conditions, IPs, container states and statuses, and the
PodStatus the scheduler and the node agent write (never users).
"""

from __future__ import annotations

from pydantic import Field

from orchestra.objects._container import ResourceRequirements
from orchestra.objects._core_shared import Opaque, ResourceList
from orchestra.objects._model import Model
from orchestra.objects._scalars import Time


class PodCondition(Model):
    """One of a pod's conditions (``PodScheduled``, ``Initialized``, ``ContainersReady``,
    ``Ready``, ``DisruptionTarget``, ...)."""

    type: str
    status: str
    observed_generation: int | None = None
    last_probe_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class PodIP(Model):
    ip: str


class HostIP(Model):
    ip: str


class ContainerStateWaiting(Model):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(Model):
    started_at: Time | None = None


class ContainerStateTerminated(Model):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    container_id: str | None = Field(None, alias="containerID")


class ContainerState(Model):
    """At most one of waiting, running, terminated is set; none means waiting."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class LinuxContainerUser(Model):
    uid: int
    gid: int
    supplemental_groups: tuple[int, ...] | None = None


class ContainerUser(Model):
    linux: LinuxContainerUser | None = None


class ResourceHealth(Model):
    resource_id: str = Field(alias="resourceID")
    health: str | None = None
    message: str | None = None


class ResourceStatus(Model):
    name: str
    resources: tuple[ResourceHealth, ...] | None = None


class VolumeMountStatus(Model):
    name: str
    mount_path: str
    read_only: bool | None = None
    recursive_read_only: str | None = None
    volume_status: Opaque | None = None


class ContainerStatus(Model):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = Field("", alias="imageID")
    container_id: str | None = Field(None, alias="containerID")
    started: bool | None = None
    allocated_resources: ResourceList | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: tuple[VolumeMountStatus, ...] | None = None
    user: ContainerUser | None = None
    allocated_resources_status: tuple[ResourceStatus, ...] | None = None
    stop_signal: str | None = None


class PodResourceClaimStatus(Model):
    name: str
    resource_claim_name: str | None = None


class PodStatus(Model):
    observed_generation: int | None = None
    phase: str | None = None
    conditions: tuple[PodCondition, ...] | None = None
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(None, alias="hostIP")
    host_ips: tuple[HostIP, ...] | None = Field(None, alias="hostIPs")
    pod_ip: str | None = Field(None, alias="podIP")
    pod_ips: tuple[PodIP, ...] | None = Field(None, alias="podIPs")
    start_time: Time | None = None
    init_container_statuses: tuple[ContainerStatus, ...] | None = None
    container_statuses: tuple[ContainerStatus, ...] | None = None
    qos_class: str | None = None
    ephemeral_container_statuses: tuple[ContainerStatus, ...] | None = None
    resize: str | None = None
    resource_claim_statuses: tuple[PodResourceClaimStatus, ...] | None = None
    allocated_resources: ResourceList | None = None
    resources: ResourceRequirements | None = None
    extended_resource_claim_status: Opaque | None = None
    node_allocatable_resource_claim_statuses: tuple[Opaque, ...] | None = None
    volume_health: tuple[Opaque, ...] | None = None

    def condition(self, type_: str) -> PodCondition | None:
        for c in self.conditions or ():
            if c.type == type_:
                return c
        return None
