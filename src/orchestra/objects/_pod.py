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
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal, NoReturn

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from orchestra.objects._base import (
    FrozenDict,
    IntOrString,
    KubeObject,
    LabelSelector,
    Model,
    ObjectMeta,
    QuantityValue,
    Time,
    dns1123_label_error,
    register,
)
from orchestra.objects._quantity import Quantity

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

def fail(errors: Iterable[tuple[tuple[int | str, ...], str]]) -> NoReturn:
    """Raise field errors at paths relative to the value being validated.

    Raised inside a validator, pydantic re-roots each error under that value's location, so
    ``fail([((1, "name"), 'Duplicate value: "web"')])`` in the ``containers`` validator of a
    pod spec reports ``spec.containers[1].name``.
    """
    raise ValidationError.from_exception_data(
        "orchestra",
        [
            {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(msg)}}
            for loc, msg in errors
        ],
    )


def check_unique_names(
    items: Iterable[Any], seen: set[str] | None = None, field: str = "name"
) -> None:
    """Fail with ``[i].name: Duplicate value`` for each repeated ``name``."""
    seen = set() if seen is None else seen
    dups: list[tuple[tuple[int | str, ...], str]] = []
    for i, item in enumerate(items):
        name = getattr(item, field)
        if name in seen:
            dups.append(((i, field), f'Duplicate value: "{name}"'))
        seen.add(name)
    if dups:
        fail(dups)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return FrozenDict({k: _freeze(x) for k, x in v.items()})
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    return v


Opaque = Annotated[FrozenDict[str, Any], AfterValidator(_freeze)]
"""A structure orchestra carries but never interprets (legacy in-tree volume sources, alpha
fields): any JSON object, deeply frozen (nested maps are FrozenDicts, lists tuples)."""

ResourceList = FrozenDict[str, QuantityValue]
"""Resource name -> quantity (``{"cpu": "500m", "memory": "128Mi"}``)."""

DEFAULT_MODE = 0o644  # 420: what Kubernetes defaults every projected file mode to


# ---------------------------------------------------------------------------
# References and selectors


class LocalObjectReference(Model):
    name: str | None = None


class TypedLocalObjectReference(Model):
    api_group: str | None = None
    kind: str
    name: str


class TypedObjectReference(Model):
    api_group: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class ObjectFieldSelector(Model):
    api_version: str = "v1"
    field_path: str


class ResourceFieldSelector(Model):
    container_name: str | None = None
    resource: str
    divisor: QuantityValue | None = None


class ConfigMapKeySelector(Model):
    name: str | None = None
    key: str
    optional: bool | None = None


class SecretKeySelector(Model):
    name: str | None = None
    key: str
    optional: bool | None = None


class FileKeySelector(Model):
    volume_name: str
    path: str
    key: str
    optional: bool | None = None


# ---------------------------------------------------------------------------
# Environment


class EnvVarSource(Model):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None
    file_key_ref: FileKeySelector | None = None


class EnvVar(Model):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ConfigMapEnvSource(Model):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(Model):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(Model):
    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


# ---------------------------------------------------------------------------
# Ports, resources, mounts


class ContainerPort(Model):
    name: str | None = None
    container_port: int
    host_port: int | None = None
    protocol: str = "TCP"
    host_ip: str | None = Field(None, alias="hostIP")
    # Port numbers are checked by Container (one validator call per container, not per port).


def _port_number_error(v: int) -> str:
    return f"Invalid value: {v}: must be between 1 and 65535, inclusive"


class ResourceClaim(Model):
    name: str
    request: str | None = None


class ResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None
    claims: tuple[ResourceClaim, ...] | None = None


class VolumeResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class VolumeMount(Model):
    name: str
    mount_path: str
    read_only: bool | None = None
    recursive_read_only: str | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: str | None = None
    bind_mount_options: tuple[str, ...] | None = None


class VolumeDevice(Model):
    name: str
    device_path: str


class ContainerResizePolicy(Model):
    resource_name: str
    restart_policy: str


# ---------------------------------------------------------------------------
# Probes and lifecycle hooks


class ExecAction(Model):
    command: tuple[str, ...] | None = None


class HTTPHeader(Model):
    name: str
    value: str


class HTTPGetAction(Model):
    path: str = "/"
    port: IntOrString
    host: str | None = None
    scheme: str = "HTTP"
    http_headers: tuple[HTTPHeader, ...] | None = None
    protocol: str | None = None


class TCPSocketAction(Model):
    port: IntOrString
    host: str | None = None


class GRPCAction(Model):
    port: int
    service: str | None = None
    mode: str | None = None


class SleepAction(Model):
    seconds: int


def _check_handler(d: dict[str, Any], kinds: tuple[str, ...]) -> None:
    given = [k for k in kinds if d[k] is not None]
    if not given:
        fail([((), "Required value: must specify a handler type")])
    if len(given) > 1:
        fail([((_HANDLER_ALIASES.get(k, k),), "Forbidden: may not specify more than 1 handler type")
              for k in given[1:]])


_HANDLER_ALIASES = {"http_get": "httpGet", "tcp_socket": "tcpSocket"}


_PROBE_HANDLERS = ("exec", "http_get", "tcp_socket", "grpc")
_HOOK_HANDLERS = ("exec", "http_get", "tcp_socket", "sleep")


class Probe(Model):
    """A probe: exactly one handler; Kubernetes' timing defaults (1s, 10s, 1, 3)."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: int | None = None
    timeout_seconds: int = 1
    period_seconds: int = 10
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period_seconds: int | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        _check_handler(self.__dict__, _PROBE_HANDLERS)
        return self


class LifecycleHandler(Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    sleep: SleepAction | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> LifecycleHandler:
        _check_handler(self.__dict__, _HOOK_HANDLERS)
        return self


class Lifecycle(Model):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None
    stop_signal: str | None = None


# ---------------------------------------------------------------------------
# Security


class Capabilities(Model):
    add: tuple[str, ...] | None = None
    drop: tuple[str, ...] | None = None


class SELinuxOptions(Model):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class SeccompProfile(Model):
    type: str
    localhost_profile: str | None = None


class AppArmorProfile(Model):
    type: str
    localhost_profile: str | None = None


class WindowsSecurityContextOptions(Model):
    gmsa_credential_spec_name: str | None = None
    gmsa_credential_spec: str | None = None
    run_as_user_name: str | None = None
    host_process: bool | None = None


class SecurityContext(Model):
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    se_linux_options: SELinuxOptions | None = None
    windows_options: WindowsSecurityContextOptions | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    proc_mount: str | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None


class Sysctl(Model):
    name: str
    value: str


class PodSecurityContext(Model):
    se_linux_options: SELinuxOptions | None = None
    windows_options: WindowsSecurityContextOptions | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: tuple[int, ...] | None = None
    supplemental_groups_policy: str | None = None
    fs_group: int | None = None
    sysctls: tuple[Sysctl, ...] | None = None
    fs_group_change_policy: str | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None
    se_linux_change_policy: str | None = None


# One shared instance: objects are immutable, and a shared default skips a validation (and
# the deep copy pydantic makes of instance defaults) on every pod.
_EMPTY_POD_SECURITY = PodSecurityContext()


# ---------------------------------------------------------------------------
# Containers


def _check_resources(
    res: ResourceRequirements, errors: list[tuple[tuple[int | str, ...], str]]
) -> None:
    """No negative quantities, no request above its limit (ValidateResourceRequirements)."""
    limits = res.limits
    requests = res.requests
    for field, values in (("limits", limits), ("requests", requests)):
        if values:
            for name, q in values.items():
                if q.startswith("-") and Quantity(q).sign() < 0:
                    errors.append((("resources", field, name),
                                   f'Invalid value: "{q}": must be greater than or equal to 0'))
    if limits and requests:
        for name, q in requests.items():
            lim = limits.get(name)
            if lim is not None and lim != q and Quantity(q) > Quantity(lim):
                errors.append((
                    ("resources", "requests", name),
                    f'Invalid value: "{q}": must be less than or equal to {name} limit of {lim}',
                ))


_VALID_NAMES: set[str] = set()  # container names already found to be DNS-1123 labels
_PULL_POLICIES: dict[str, str] = {}  # image -> its default pull policy


def _default_pull_policy(image: str | None) -> str:
    """``Always`` for ``:latest`` or an untagged image without a digest, else ``IfNotPresent``."""
    if not image:
        return "IfNotPresent"
    if "@" in image:
        return "IfNotPresent"
    last = image.rpartition("/")[2]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


class Container(Model):
    """A container of a pod. ``imagePullPolicy`` defaults from the image's tag."""

    name: str
    image: str | None = None
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    working_dir: str | None = None
    ports: tuple[ContainerPort, ...] | None = None
    env_from: tuple[EnvFromSource, ...] | None = None
    env: tuple[EnvVar, ...] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: tuple[ContainerResizePolicy, ...] | None = None
    restart_policy: str | None = None
    restart_policy_rules: tuple[Opaque, ...] | None = None
    volume_mounts: tuple[VolumeMount, ...] | None = None
    volume_devices: tuple[VolumeDevice, ...] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: str = "File"
    image_pull_policy: str | None = None
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None

    @model_validator(mode="after")
    def _check_and_default(self) -> Container:
        # One validator for the whole container: this runs for every container of every
        # pod the store admits, and each Python call costs.
        d = self.__dict__
        errors: list[tuple[tuple[int | str, ...], str]] = []
        name = d["name"]
        if name not in _VALID_NAMES:
            err = dns1123_label_error(name)
            if err:
                errors.append((("name",), f'Invalid value: "{name}": {err}'))
            elif len(_VALID_NAMES) < 4096:
                _VALID_NAMES.add(name)
        image = d["image"]
        if not image:
            errors.append((("image",), "Required value"))
        ports = d["ports"]
        if ports:
            for i, p in enumerate(ports):
                if not 0 < p.container_port <= 65535:
                    errors.append(((("ports", i, "containerPort")),
                                   _port_number_error(p.container_port)))
                hp = p.host_port
                if hp and not 0 < hp <= 65535:
                    errors.append(((("ports", i, "hostPort")), _port_number_error(hp)))
        res = d["resources"]
        if res is not None:
            _check_resources(res, errors)
        if errors:
            fail(errors)
        if d["image_pull_policy"] is None:
            policy = _PULL_POLICIES.get(image)
            if policy is None:
                policy = _default_pull_policy(image)
                if len(_PULL_POLICIES) < 4096:
                    _PULL_POLICIES[image] = policy
            d["image_pull_policy"] = policy
        return self


class EphemeralContainer(Container):
    target_container_name: str | None = None


# ---------------------------------------------------------------------------
# Volumes


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
            raise ValueError(f"Invalid value: {v!r}: {err}")
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
    preemption_policy: str | None = None
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
            raise ValueError(
                f'Unsupported value: "{v}": supported values: "Always", "OnFailure", "Never"'
            )
        return v

    @field_validator("dns_policy")
    @classmethod
    def _check_dns_policy(cls, v: str) -> str:
        if v not in _DNS_POLICIES:
            raise ValueError(
                f'Unsupported value: "{v}": supported values: "ClusterFirstWithHostNet", '
                '"ClusterFirst", "Default", "None"'
            )
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


class PodTemplateSpec(Model):
    """The pod a workload stamps out: metadata (labels) and spec."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


# ---------------------------------------------------------------------------
# Status


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
