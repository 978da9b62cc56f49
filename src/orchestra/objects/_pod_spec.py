"""core/v1 pod spec: what a pod runs and where.

The scheduling constraints a spec carries (node selectors, affinity, tolerations, topology
spread), its DNS, host and gate settings, and the PodSpec and PodTemplateSpec themselves,
shared by Pods and every pod template (Deployments, Jobs, ...). PodSpec checks that
container names are unique across init and regular containers and that every volume mount
names a volume of the pod.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from orchestra.objects._container import (
    Container,
    EphemeralContainer,
    PodSecurityContext,
    ResourceRequirements,
)
from orchestra.objects._core_shared import (
    LocalObjectReference,
    Opaque,
    ResourceList,
    check_unique_names,
)
from orchestra.objects._field_errors import fail
from orchestra.objects._messages import unsupported
from orchestra.objects._meta import LabelSelector, ObjectMeta, check_labels
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._volume import Volume

# ---------------------------------------------------------------------------
# Scheduling


class NodeSelectorRequirement(Model):
    key: str
    operator: str
    values: tuple[str, ...] | None = None


class NodeSelectorTerm(Model):
    match_expressions: tuple[NodeSelectorRequirement, ...] | None = None
    match_fields: tuple[NodeSelectorRequirement, ...] | None = None


class NodeSelector(Model):
    node_selector_terms: tuple[NodeSelectorTerm, ...]


class PreferredSchedulingTerm(Model):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(Model):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: (
        tuple[PreferredSchedulingTerm, ...] | None
    ) = None


class PodAffinityTerm(Model):
    label_selector: LabelSelector | None = None
    namespaces: tuple[str, ...] | None = None
    topology_key: str
    namespace_selector: LabelSelector | None = None
    match_label_keys: tuple[str, ...] | None = None
    mismatch_label_keys: tuple[str, ...] | None = None


class WeightedPodAffinityTerm(Model):
    weight: int
    pod_affinity_term: PodAffinityTerm


class PodAffinity(Model):
    required_during_scheduling_ignored_during_execution: tuple[PodAffinityTerm, ...] | None = None
    preferred_during_scheduling_ignored_during_execution: (
        tuple[WeightedPodAffinityTerm, ...] | None
    ) = None


class PodAntiAffinity(Model):
    required_during_scheduling_ignored_during_execution: tuple[PodAffinityTerm, ...] | None = None
    preferred_during_scheduling_ignored_during_execution: (
        tuple[WeightedPodAffinityTerm, ...] | None
    ) = None


class Affinity(Model):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAntiAffinity | None = None


class Toleration(Model):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def tolerates(self, key: str, value: str | None, effect: str) -> bool:
        """Whether this toleration tolerates a taint (Kubernetes' ``ToleratesTaint``)."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        op = self.operator or "Equal"
        if op == "Exists":
            return True
        if op == "Equal":
            return (self.value or "") == (value or "")
        return False


class TopologySpreadConstraint(Model):
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    label_selector: LabelSelector | None = None
    min_domains: int | None = None
    node_affinity_policy: str | None = None
    node_taints_policy: str | None = None
    match_label_keys: tuple[str, ...] | None = None


class HostAlias(Model):
    ip: str
    hostnames: tuple[str, ...] | None = None


class PodDNSConfigOption(Model):
    name: str | None = None
    value: str | None = None


class PodDNSConfig(Model):
    nameservers: tuple[str, ...] | None = None
    searches: tuple[str, ...] | None = None
    options: tuple[PodDNSConfigOption, ...] | None = None


class PodReadinessGate(Model):
    condition_type: str


class PodOS(Model):
    name: str


class PodSchedulingGate(Model):
    name: str


class PodResourceClaim(Model):
    name: str
    resource_claim_name: str | None = None
    resource_claim_template_name: str | None = None


# ---------------------------------------------------------------------------
# The pod spec


_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")

# One shared instance: objects are immutable, and a shared default skips a validation (and
# the deep copy pydantic makes of instance defaults) on every pod.
_EMPTY_POD_SECURITY = PodSecurityContext()


def _check_mounts(containers: tuple[Container, ...], data: dict[str, Any]) -> None:
    """Each volume mount names a volume of the pod (skipped if the volumes were invalid)."""
    if "volumes" not in data:
        return
    names: set[str] | None = None
    errors: list[tuple[tuple[int | str, ...], str]] = []
    for i, c in enumerate(containers):
        if c.volume_mounts:
            if names is None:
                names = {vol.name for vol in data["volumes"] or ()}
            for j, m in enumerate(c.volume_mounts):
                if m.name not in names:
                    errors.append(((i, "volumeMounts", j, "name"), f'Not found: "{m.name}"'))
    if errors:
        fail(errors)


class PodSpec(Model):
    """What a pod runs and where. Shared by Pods and all pod templates."""

    volumes: tuple[Volume, ...] | None = None
    init_containers: tuple[Container, ...] | None = None
    containers: tuple[Container, ...]
    ephemeral_containers: tuple[EphemeralContainer, ...] | None = None
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    termination_grace_period_seconds: int = 30
    active_deadline_seconds: int | None = None
    dns_policy: str = "ClusterFirst"
    node_selector: FrozenDict[str, str] | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    node_name: str | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(None, alias="hostPID")
    host_ipc: bool | None = Field(None, alias="hostIPC")
    share_process_namespace: bool | None = None
    security_context: PodSecurityContext = Field(default_factory=lambda: _EMPTY_POD_SECURITY)
    image_pull_secrets: tuple[LocalObjectReference, ...] | None = None
    hostname: str | None = None
    subdomain: str | None = None
    affinity: Affinity | None = None
    scheduler_name: str = "default-scheduler"
    tolerations: tuple[Toleration, ...] | None = None
    host_aliases: tuple[HostAlias, ...] | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    dns_config: PodDNSConfig | None = None
    readiness_gates: tuple[PodReadinessGate, ...] | None = None
    runtime_class_name: str | None = None
    enable_service_links: bool | None = None
    preemption_policy: Literal["Never", "PreemptLowerPriority"] | None = None
    overhead: ResourceList | None = None
    topology_spread_constraints: tuple[TopologySpreadConstraint, ...] | None = None
    set_hostname_as_fqdn: bool | None = Field(None, alias="setHostnameAsFQDN")
    os: PodOS | None = None
    host_users: bool | None = None
    scheduling_gates: tuple[PodSchedulingGate, ...] | None = None
    resource_claims: tuple[PodResourceClaim, ...] | None = None
    resources: ResourceRequirements | None = None
    hostname_override: str | None = None
    eviction_responders: tuple[Opaque, ...] | None = None
    scheduling_group: Opaque | None = None

    @field_validator("restart_policy", mode="before")
    @classmethod
    def _check_restart_policy(cls, v: Any) -> Any:
        if v not in _RESTART_POLICIES:
            raise ValueError(unsupported(v, _RESTART_POLICIES))
        return v

    @field_validator("node_selector")
    @classmethod
    def _check_node_selector(cls, v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
        return check_labels(v)  # (as Kubernetes validates it: a label map)

    @field_validator("dns_policy")
    @classmethod
    def _check_dns_policy(cls, v: str) -> str:
        if v not in _DNS_POLICIES:
            raise ValueError(unsupported(v, _DNS_POLICIES))
        return v

    @field_validator("containers")
    @classmethod
    def _check_containers(cls, v: tuple[Container, ...], info: Any) -> tuple[Container, ...]:
        if not v:
            raise ValueError("Required value")
        data = info.data
        init = data.get("init_containers")
        if len(v) > 1 or init:
            check_unique_names(v, {c.name for c in init} if init else set())
        _check_mounts(v, data)
        forbidden = [((i, "restartPolicy"), "Forbidden: may not be set for non-init containers")
                     for i, c in enumerate(v) if c.restart_policy is not None]
        if forbidden:
            fail(forbidden)
        return v

    @field_validator("init_containers")
    @classmethod
    def _check_init_containers(
        cls, v: tuple[Container, ...] | None, info: Any
    ) -> tuple[Container, ...] | None:
        if v:
            if len(v) > 1:
                check_unique_names(v)
            _check_mounts(v, info.data)
            _check_init_restart_policies(v)
        return v

    @field_validator("volumes")
    @classmethod
    def _check_volumes(cls, v: tuple[Volume, ...] | None) -> tuple[Volume, ...] | None:
        if v and len(v) > 1:
            check_unique_names(v)
        return v

    @property
    def all_containers(self) -> tuple[Container, ...]:
        """Init containers then regular containers, in order."""
        init = self.init_containers
        return init + self.containers if init else self.containers

    def container(self, name: str) -> Container | None:
        """The regular or init container called ``name``."""
        for c in self.all_containers:
            if c.name == name:
                return c
        return None


_INIT_ONLY_WITH_ALWAYS = (("lifecycle", "lifecycle"), ("liveness_probe", "livenessProbe"),
                          ("readiness_probe", "readinessProbe"),
                          ("startup_probe", "startupProbe"))


def _check_init_restart_policies(inits: tuple[Container, ...]) -> None:
    """An init container's ``restartPolicy`` is unset (runs to completion) or
    ``Always`` (a sidecar); only a sidecar may have probes or lifecycle hooks."""
    errors: list[tuple[tuple[int | str, ...], str]] = []
    for i, c in enumerate(inits):
        policy = c.restart_policy
        if policy is None:
            errors.extend(((i, wire), "Forbidden: may not be set for init containers "
                           "without restartPolicy=Always")
                          for attr, wire in _INIT_ONLY_WITH_ALWAYS
                          if getattr(c, attr) is not None)
        elif policy != "Always":
            errors.append(((i, "restartPolicy"), unsupported(policy, ["Always"])))
    if errors:
        fail(errors)


class PodTemplateSpec(Model):
    """The pod a workload stamps out: metadata (labels) and spec."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec
