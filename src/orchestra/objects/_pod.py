"""core/v1 Pod types: the pod spec (containers, volumes, scheduling), its status, the Pod kind.

Invariants:

- Defaults are applied at validation exactly where the Kubernetes API server's defaulting
  applies them (``SetDefaults_PodSpec``, ``SetDefaults_Container``, probes, ports, volume
  sources), so a validated object reads as ``kubectl get -o yaml`` would show it. Fields the
  system fills (``spec.nodeName``, ``status.podIP``) stay ``None`` until set.
  Only a Pod (not a pod template) gets its missing requests from its limits, as in
  ``SetDefaults_Pod``; ``enableServiceLinks`` is left unset (``None`` means true).
- ``PodSpec`` is shared by Pods and every pod template (Deployments, Jobs, ...), so its
  validation runs on each of them with the template's path in front. Validators never
  change a model they did not just build: a pod stamped from a template's spec instance
  gets a copy where it differs.
- Semantic checks (names, ports, required image, one probe handler) run after a container
  decodes, like Kubernetes validating after decoding: a value that cannot be decoded (a bad
  quantity) is reported without that container's semantic errors.
- The hot path (one container, labels, requests, a port) makes one Python validator call
  per container and two per pod; everything else is pydantic-core defaults and checks,
  since the store validates tens of thousands of pods a second.

The types live in modules by job and are re-exported here: ``_core_shared`` (field-error
helpers, Opaque, ResourceList, references), ``_container``, ``_volume``, ``_pod_spec`` (with
the scheduling types) and ``_pod_status``. This module holds the Pod kind and its QoS class.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from orchestra.objects._base import KubeObject, register
from orchestra.objects._container import (
    AppArmorProfile,
    Capabilities,
    ConfigMapEnvSource,
    ConfigMapKeySelector,
    Container,
    ContainerPort,
    ContainerResizePolicy,
    EnvFromSource,
    EnvVar,
    EnvVarSource,
    EphemeralContainer,
    ExecAction,
    FileKeySelector,
    GRPCAction,
    HTTPGetAction,
    HTTPHeader,
    Lifecycle,
    LifecycleHandler,
    PodSecurityContext,
    Probe,
    ResourceClaim,
    ResourceRequirements,
    SeccompProfile,
    SecretEnvSource,
    SecretKeySelector,
    SecurityContext,
    SELinuxOptions,
    SleepAction,
    Sysctl,
    TCPSocketAction,
    VolumeDevice,
    VolumeMount,
    WindowsSecurityContextOptions,
)
from orchestra.objects._core_shared import (
    LocalObjectReference,
    ObjectFieldSelector,
    Opaque,
    ResourceFieldSelector,
    ResourceList,
    TypedLocalObjectReference,
    TypedObjectReference,
    check_unique_names,
)
from orchestra.objects._field_errors import fail
from orchestra.objects._model import FrozenDict
from orchestra.objects._pod_spec import (
    Affinity,
    HostAlias,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodAffinity,
    PodAffinityTerm,
    PodAntiAffinity,
    PodDNSConfig,
    PodDNSConfigOption,
    PodOS,
    PodReadinessGate,
    PodResourceClaim,
    PodSchedulingGate,
    PodSpec,
    PodTemplateSpec,
    PreferredSchedulingTerm,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from orchestra.objects._pod_status import (
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    ContainerUser,
    HostIP,
    LinuxContainerUser,
    PodCondition,
    PodIP,
    PodResourceClaimStatus,
    PodStatus,
    ResourceHealth,
    ResourceStatus,
    VolumeMountStatus,
)
from orchestra.objects._quantity import Quantity
from orchestra.objects._volume import DEFAULT_MODE as DEFAULT_MODE
from orchestra.objects._volume import (
    AWSElasticBlockStoreVolumeSource,
    ClusterTrustBundleProjection,
    ConfigMapProjection,
    ConfigMapVolumeSource,
    CSIVolumeSource,
    DownwardAPIProjection,
    DownwardAPIVolumeFile,
    DownwardAPIVolumeSource,
    EmptyDirVolumeSource,
    EphemeralVolumeSource,
    GCEPersistentDiskVolumeSource,
    GitRepoVolumeSource,
    HostPathVolumeSource,
    ImageVolumeSource,
    ISCSIVolumeSource,
    KeyToPath,
    NFSVolumeSource,
    PersistentVolumeClaimSpec,
    PersistentVolumeClaimTemplate,
    PersistentVolumeClaimVolumeSource,
    PodCertificateProjection,
    ProjectedVolumeSource,
    SecretProjection,
    SecretVolumeSource,
    ServiceAccountTokenProjection,
    Volume,
    VolumeProjection,
    VolumeResourceRequirements,
)

__all__ = [
    "AWSElasticBlockStoreVolumeSource",
    "Affinity",
    "AppArmorProfile",
    "CSIVolumeSource",
    "Capabilities",
    "ClusterTrustBundleProjection",
    "ConfigMapEnvSource",
    "ConfigMapKeySelector",
    "ConfigMapProjection",
    "ConfigMapVolumeSource",
    "Container",
    "ContainerPort",
    "ContainerResizePolicy",
    "ContainerState",
    "ContainerStateRunning",
    "ContainerStateTerminated",
    "ContainerStateWaiting",
    "ContainerStatus",
    "ContainerUser",
    "DownwardAPIProjection",
    "DownwardAPIVolumeFile",
    "DownwardAPIVolumeSource",
    "EmptyDirVolumeSource",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "EphemeralContainer",
    "EphemeralVolumeSource",
    "ExecAction",
    "FileKeySelector",
    "GCEPersistentDiskVolumeSource",
    "GRPCAction",
    "GitRepoVolumeSource",
    "HTTPGetAction",
    "HTTPHeader",
    "HostAlias",
    "HostIP",
    "HostPathVolumeSource",
    "ISCSIVolumeSource",
    "ImageVolumeSource",
    "KeyToPath",
    "Lifecycle",
    "LifecycleHandler",
    "LinuxContainerUser",
    "LocalObjectReference",
    "NFSVolumeSource",
    "NodeAffinity",
    "NodeSelector",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "ObjectFieldSelector",
    "Opaque",
    "PersistentVolumeClaimSpec",
    "PersistentVolumeClaimTemplate",
    "PersistentVolumeClaimVolumeSource",
    "Pod",
    "PodAffinity",
    "PodAffinityTerm",
    "PodAntiAffinity",
    "PodCertificateProjection",
    "PodCondition",
    "PodDNSConfig",
    "PodDNSConfigOption",
    "PodIP",
    "PodOS",
    "PodReadinessGate",
    "PodResourceClaim",
    "PodResourceClaimStatus",
    "PodSchedulingGate",
    "PodSecurityContext",
    "PodSpec",
    "PodStatus",
    "PodTemplateSpec",
    "PreferredSchedulingTerm",
    "Probe",
    "ProjectedVolumeSource",
    "ResourceClaim",
    "ResourceFieldSelector",
    "ResourceHealth",
    "ResourceList",
    "ResourceRequirements",
    "ResourceStatus",
    "SELinuxOptions",
    "SeccompProfile",
    "SecretEnvSource",
    "SecretKeySelector",
    "SecretProjection",
    "SecretVolumeSource",
    "SecurityContext",
    "ServiceAccountTokenProjection",
    "SleepAction",
    "Sysctl",
    "TCPSocketAction",
    "Toleration",
    "TopologySpreadConstraint",
    "TypedLocalObjectReference",
    "TypedObjectReference",
    "Volume",
    "VolumeDevice",
    "VolumeMount",
    "VolumeMountStatus",
    "VolumeProjection",
    "VolumeResourceRequirements",
    "WeightedPodAffinityTerm",
    "WindowsSecurityContextOptions",
    "check_unique_names",
    "fail",
    "pod_qos_class",
]

# ---------------------------------------------------------------------------
# The Pod kind


@register(plural="pods", short_names=("po",), namespaced=True)
class Pod(KubeObject):
    """A pod. ``status`` is written by the scheduler and the node agent, never by users."""

    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["Pod"] = "Pod"
    spec: PodSpec
    status: PodStatus | None = None

    @model_validator(mode="after")
    def _default_requests_from_limits(self) -> Pod:
        # SetDefaults_Pod: a container's limit stands in for its missing request. Only
        # pods, not pod templates, are defaulted this way (as in Kubernetes).
        spec = self.spec
        if _needs_requests(spec.containers) or (
            spec.init_containers and _needs_requests(spec.init_containers)
        ):
            update: dict[str, Any] = {"containers": _with_requests(spec.containers)}
            if spec.init_containers:
                update["init_containers"] = _with_requests(spec.init_containers)
            self.__dict__["spec"] = spec.model_copy(update=update)
        return self

    @property
    def phase(self) -> str:
        """``status.phase``; ``Pending`` until the status is written, as Kubernetes creates it."""
        st = self.status
        return (st.phase if st is not None else None) or "Pending"

    @property
    def node_name(self) -> str | None:
        return self.spec.node_name

    def condition(self, type_: str) -> PodCondition | None:
        """The status condition of that type, if present."""
        st = self.status
        if st is None or not st.conditions:
            return None
        for c in st.conditions:
            if c.type == type_:
                return c
        return None

    @property
    def is_ready(self) -> bool:
        """The ``Ready`` condition is ``True``."""
        c = self.condition("Ready")
        return c is not None and c.status == "True"

    @property
    def is_terminal(self) -> bool:
        """``Succeeded`` or ``Failed``: no container of this pod will run again."""
        return self.phase in ("Succeeded", "Failed")

    @property
    def pod_ip(self) -> str | None:
        st = self.status
        return st.pod_ip if st is not None else None


def _needs_requests(containers: tuple[Container, ...]) -> bool:
    for c in containers:
        res = c.resources
        if res is not None and res.limits:
            if not res.requests:
                return True
            for name in res.limits:
                if name not in res.requests:
                    return True
    return False


def _with_requests(containers: tuple[Container, ...]) -> tuple[Container, ...]:
    out = []
    for c in containers:
        res = c.resources
        if res is not None and res.limits:
            requests = dict(res.limits)
            requests.update(res.requests or {})
            if len(requests) != len(res.requests or ()):
                res = res.model_copy(update={"requests": FrozenDict(requests)})
                c = c.model_copy(update={"resources": res})
        out.append(c)
    return tuple(out)


def pod_qos_class(spec: PodSpec) -> str:
    """Kubernetes' QoS class of a pod: ``Guaranteed``, ``Burstable`` or ``BestEffort``.

    Guaranteed: every container sets cpu and memory limits, and requests (when given) equal
    them. BestEffort: no container sets any cpu/memory request or limit. Otherwise Burstable.
    Like Kubernetes, it looks at regular and init containers.
    """
    any_set = False
    guaranteed = True
    for c in spec.all_containers:
        res = c.resources
        limits: dict[str, str] = (res.limits if res else None) or {}
        requests: dict[str, str] = (res.requests if res else None) or {}
        for name in ("cpu", "memory"):
            lim = limits.get(name)
            req = requests.get(name)
            if lim is not None or req is not None:
                any_set = True
            if lim is None or (req is not None and req != lim and not _same_quantity(req, lim)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _same_quantity(a: str, b: str) -> bool:
    return Quantity(a) == Quantity(b)
