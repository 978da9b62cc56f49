"""core/v1 container types: environment, ports and resources, mounts, probes and lifecycle
hooks, security contexts, and the Container itself.

A container's semantic checks (a DNS-1123 name, a required image, port numbers, resources
within their limits, exactly one probe or hook handler) and its ``imagePullPolicy`` default
run after it decodes, in one validator call per container: the store validates every
container of every pod it admits (see ``_pod`` for the invariants).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from orchestra.objects._core_shared import (
    ObjectFieldSelector,
    Opaque,
    ResourceFieldSelector,
    ResourceList,
)
from orchestra.objects._field_errors import fail
from orchestra.objects._messages import port_number_error, unsupported
from orchestra.objects._model import Model
from orchestra.objects._names import dns1123_label_error
from orchestra.objects._quantity import Quantity
from orchestra.objects._scalars import IntOrString

# ---------------------------------------------------------------------------
# Environment


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


_PROTOCOLS = ("SCTP", "TCP", "UDP")  # (in Kubernetes' order in its message)


class ResourceClaim(Model):
    name: str
    request: str | None = None


class ResourceRequirements(Model):
    limits: ResourceList | None = None
    requests: ResourceList | None = None
    claims: tuple[ResourceClaim, ...] | None = None


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
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] = "File"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
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
                err = port_number_error(p.container_port)
                if err:
                    errors.append(((("ports", i, "containerPort")), err))
                err = port_number_error(p.host_port) if p.host_port else None
                if err:
                    errors.append(((("ports", i, "hostPort")), err))
                if p.protocol not in _PROTOCOLS:
                    errors.append(((("ports", i, "protocol")),
                                   unsupported(p.protocol, _PROTOCOLS)))
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
