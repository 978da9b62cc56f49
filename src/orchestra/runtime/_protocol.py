"""The container runtime contract, shared by the ``fake``, ``process`` and ``containerd``
runtimes and relied on by the node agent (``loops/``).

The node agent resolves everything Kubernetes-level before it calls a runtime: env
(``valueFrom``, ``envFrom``, service variables, ``$(VAR)`` expansion), volume host
paths, the pod IP. A runtime only runs what it is given, reports state changes through
its listener, and never reads or writes the store.

Lifecycle: ``start()`` once, then ``create_sandbox`` per pod, ``create_container`` +
``start_container`` per container, ``stop_container``/``remove_container``,
``remove_sandbox``, and ``close()`` which stops and removes everything the runtime made.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from orchestra._errors import OrchestraError

ProbeKind = Literal["liveness", "readiness", "startup", "postStart", "preStop"]
"""What a probe is for: one of the three probes, or a lifecycle hook (``postStart``,
``preStop``) whose exec or httpGet handler the runtime runs as a probe: exec fails on a
non-zero exit, httpGet only when no answer comes (any status is an answer)."""

HOOKS: frozenset[str] = frozenset({"postStart", "preStop"})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a runtime can do, so that callers adapt instead of failing late."""

    exec: bool = False
    logs: bool = False
    metrics: bool = False
    isolation: bool = False  # own filesystem, PID namespace, cgroup limits
    images: bool = False  # runs OCI images (else ``image`` is metadata only)
    simulated: bool = False  # nothing real runs (the fake runtime)


@dataclass(frozen=True, slots=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    sub_path: str | None = None


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """One pod's shared environment."""

    uid: str
    namespace: str
    name: str
    hostname: str
    pod_ip: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    netns_path: str | None = None  # set by an isolating network (bridge)
    hosts_file: str | None = None  # /etc/hosts content path for isolating runtimes
    resolv_conf: str | None = None
    log_dir: str | None = None  # where container logs go; runtime picks one if None


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_request_milli: int = 0
    cpu_limit_milli: int = 0  # 0: unlimited
    memory_request_bytes: int = 0
    memory_limit_bytes: int = 0  # 0: unlimited


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container to run, fully resolved by the node agent.

    ``command``/``args`` are Kubernetes' fields after ``$(VAR)`` expansion: ``command``
    replaces the image entrypoint, ``args`` its cmd; a runtime without images runs
    ``command + args`` directly.
    """

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    image_pull_policy: str = "IfNotPresent"
    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root_filesystem: bool = False
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    attempt: int = 0  # restart count; keeps log files of earlier attempts apart
    init: bool = False  # an ordinary init container (runs to completion), not a sidecar


class State(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    id: str
    name: str
    state: State
    exit_code: int | None = None
    reason: str | None = None  # "Completed", "Error", "OOMKilled", ...
    message: str | None = None
    started_at: float | None = None  # wall time on the runtime's clock
    finished_at: float | None = None
    pid: int | None = None
    image_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """Sent to the listener whenever a container starts or exits."""

    sandbox_id: str
    container_id: str
    status: ContainerStatus


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """One probe's result. ``warning`` marks a success the kubelet reports with a
    ``ProbeWarning`` event (an HTTP probe that stopped at a redirect to another host);
    ``message`` then holds the warning's text."""

    success: bool
    message: str = ""  # e.g. 'HTTP probe failed with statuscode: 500'
    warning: bool = False


@dataclass(frozen=True, slots=True)
class ContainerStats:
    cpu_milli: float  # recent CPU use in millicores
    memory_bytes: int  # working set
    timestamp: float


@dataclass(frozen=True, slots=True)
class ImageInfo:
    ref: str
    id: str  # digest or other stable id
    size: int = 0


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """A sandbox found by ``list_sandboxes`` (for recovery after a restart)."""

    id: str
    uid: str  # pod uid
    namespace: str
    name: str
    containers: tuple[ContainerStatus, ...] = ()


class ImagePullError(OrchestraError):
    """Pulling an image failed; ``str(exc)`` is the message for the pod's event."""


class ContainerCreateError(OrchestraError):
    """The runtime could not create or start the container (reason CreateContainerError
    or RunContainerError in the status); the message says why."""


Listener = Callable[[ContainerEvent], None]


@runtime_checkable
class Runtime(Protocol):
    """An async container runtime. All methods may be called concurrently for
    different containers; calls for one container are serialised by the caller."""

    name: str
    capabilities: Capabilities

    def set_listener(self, listener: Listener) -> None:
        """Called (on the event loop) for every start and exit of a container."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop and remove every container and sandbox this runtime made."""
        ...

    async def pull_image(self, sandbox: SandboxSpec, container: ContainerSpec) -> ImageInfo:
        """Make the image present per ``container.image_pull_policy``; raise
        :class:`ImagePullError` with Kubernetes-style text on failure."""
        ...

    async def create_sandbox(self, spec: SandboxSpec) -> str: ...

    async def remove_sandbox(self, sandbox_id: str) -> None: ...

    async def list_sandboxes(self) -> list[SandboxInfo]: ...

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        """SIGTERM (or the simulated equivalent), SIGKILL after ``grace_period``
        seconds on the runtime's clock; returns once the container has exited."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Forget the container; its logs stay readable until its sandbox is removed."""
        ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> str: ...

    def stream_logs(self, container_id: str, *, tail: int | None = None) -> AsyncIterator[str]:
        """Lines as they are written, until the container exits (follow)."""
        ...

    async def exec(
        self, container_id: str, argv: list[str], *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call limit the runtime enforces
    ) -> ExecResult: ...

    async def probe(
        self,
        sandbox: SandboxSpec,
        container_id: str,
        kind: ProbeKind,
        probe: Any,
    ) -> ProbeOutcome:
        """Run one probe (``orchestra.objects.Probe``): exec, tcpSocket, httpGet or grpc."""
        ...

    async def stats(self, container_id: str) -> ContainerStats: ...


RuntimeFactory = Callable[..., Runtime]
